"""Rank requests against an export in this process: what `prectr rank` and
the demo's fresh-process check run (TF Serving runs the same signature)."""

import json

import numpy as np

from prectr_tf.serving.client import RankingRequest, request_arrays, schema_of_export


def read_requests(path):
    """`RankingRequest`s from a JSON file: one object or a list of them, with
    the `RankingRequest` fields (`user_id`, `query`, `candidates`, ...)."""
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    items = data if isinstance(data, list) else [data]
    fields = set(RankingRequest.__dataclass_fields__)
    requests = []
    for i, item in enumerate(items):
        unknown = set(item) - fields
        missing = {"user_id", "query", "candidates"} - set(item)
        if unknown or missing:
            raise ValueError(f"{path}: request {i}: " + "; ".join(
                filter(None, [f"unknown fields {sorted(unknown)}" if unknown else "",
                              f"missing fields {sorted(missing)}" if missing else ""])))
        requests.append(RankingRequest(**item))
    return requests


def rank_requests(export_dir, requests):
    """Score `requests` with the export's `rank` signature; one dict per
    request (`score` `[n]`, `relevance_probs`, `click_given_relevance`)."""
    import tensorflow as tf  # noqa: PLC0415
    import tensorflow_text  # noqa: F401, PLC0415 (the export's tokenizer ops)

    rank = tf.saved_model.load(export_dir).signatures["rank"]
    arrays = request_arrays(requests, schema_of_export(export_dir))
    out = {k: v.numpy() for k, v in rank(**{k: tf.constant(v) for k, v in arrays.items()}).items()}
    return [{k: v[i, :len(r.candidates)] for k, v in out.items()}
            for i, r in enumerate(requests)]


def format_top(request, result, top=10):
    """A text table of the request's `top` candidates by score."""
    order = np.argsort(-result["score"], kind="stable")[:top]
    probs = result["relevance_probs"]
    expected = probs @ np.arange(probs.shape[1])
    lines = [f"user {request.user_id!r}, query {request.query!r}: top {len(order)} of "
             f"{len(request.candidates)}",
             f"{'rank':>4}  {'item':<16} {'P(click)':>9} {'E[level]':>9} {'level':>6}  title"]
    for rank, i in enumerate(order, 1):
        title = (request.titles[i] if request.titles else "") or ""
        lines.append(f"{rank:>4}  {str(request.candidates[i]):<16} {result['score'][i]:>9.4f} "
                     f"{expected[i]:>9.2f} {int(probs[i].argmax()):>6}  {title[:48]}")
    return "\n".join(lines)
