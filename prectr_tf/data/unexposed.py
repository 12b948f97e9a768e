"""Unexposed hard negatives: the `unexposed` debias variant's data (DESIGN §4.8).

Where a log records each request's coarse-ranking candidate set (the
simulator does; `candidates.parquet`), the candidates the logging policy did
not show are the real exposure-biased part of the space: serving ranks them,
training never saw them. `attach_unexposed_negatives` gives each clicked
impression one of them, drawn uniformly from its own request, with the
teacher's relevance level for (query, its title) — the label reconstructed
by the teacher, since nobody judged an item nobody saw. The model scores the
negative with the anchor's user and query and ranks it below the anchor by
the debias pair loss.

The columns are `schema.NEGATIVE_FIELDS`; build with
`DataSchema(unexposed_negatives=True)`. Only the training step reads them.
"""

import numpy as np
import pandas as pd

from prectr_tf.data.schema import NEGATIVE_PREFIX


def attach_unexposed_negatives(log, candidates, items, teacher, seed=0, clicked_only=True):
    """The log with one unshown candidate of its request per impression.

    Args:
        log: an impression log in the contract's form (`request_id`, `query`,
            `click` nullable, ...).
        candidates: one row per (request, candidate): `request_id`, `item_id`,
            `shown` (bool).
        items: the catalogue: `item_id`, `item_title`, `item_category` and,
            when the log has them, `item_features`.
        teacher: a `prectr_tf.distill.TeacherLogits` of (query, title) pairs;
            its argmax level is the negative's `negative_relevance`. A pair it
            did not label gets none (and forms no debias pair).
        seed: int (default 0), the draw of the negatives.
        clicked_only: bool (default True): only clicked impressions — the
            only possible anchors — get a negative; the others' are empty.

    Returns:
        `(frame, stats)`: `log` plus the `negative_*` columns (empty string,
        zeros and null where a row has no negative), and counts:
        `rows_with_negative`, `rows_with_teacher_level`,
        `requests_without_unshown`, `teacher_level_counts`.

    Example:
    >>> from prectr_tf.distill import SimulatedJudge, judge_pairs, teacher_pairs
    >>> teacher = judge_pairs(teacher_pairs(sim.log, sim.candidates, sim.items),
    ...                       SimulatedJudge(seed=0))
    >>> frame, stats = attach_unexposed_negatives(sim.log, sim.candidates, sim.items, teacher)
    >>> bool(frame["negative_relevance"].dropna().between(0, 3).all())
    True
    >>> stats["rows_with_negative"] == int((frame["negative_item_id"] != "").sum())
    True
    """
    missing = [c for c in ("request_id", "item_id", "shown") if c not in candidates]
    if missing:
        raise ValueError(f"the candidates frame lacks column(s) {missing}")
    unshown = candidates[~candidates["shown"].to_numpy().astype(bool)]
    requests, code = np.unique(unshown["request_id"].astype(str).to_numpy(), return_inverse=True)
    order = np.argsort(code, kind="stable")
    unshown_items = unshown["item_id"].astype(str).to_numpy()[order]
    count = np.bincount(code, minlength=len(requests))
    start = np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.int64)

    row_request = pd.Index(requests).get_indexer(log["request_id"].astype(str).to_numpy())
    available = np.where(row_request >= 0, count[np.maximum(row_request, 0)], 0)
    wanted = np.ones(len(log), bool)
    if clicked_only:
        wanted = pd.array(log["click"], dtype="Int64").fillna(0).to_numpy() == 1
    has = wanted & (available > 0)
    draw = np.random.default_rng(seed).random(len(log))
    pick = start[np.maximum(row_request, 0)] + np.floor(draw * available).astype(np.int64)
    negative = np.full(len(log), "", dtype=object)
    negative[has] = unshown_items[pick[has]]

    catalogue = items.set_index(items["item_id"].astype(str))
    rows = catalogue.index.get_indexer(negative[has])
    if np.any(rows < 0):
        raise ValueError(f"candidate item {negative[has][rows < 0][0]!r} is not in the items frame")
    out = log.copy()
    out[NEGATIVE_PREFIX + "item_id"] = negative
    for name in ("item_title", "item_category"):
        column = np.full(len(log), "", dtype=object)
        column[has] = catalogue[name].astype(str).to_numpy()[rows]
        out[NEGATIVE_PREFIX + name] = column
    if "item_features" in log.columns:
        width = len(np.asarray(log["item_features"].iloc[0])) if len(log) else 0
        features = [np.zeros(width, np.float32)] * len(log)
        for i, j in zip(np.flatnonzero(has), rows):
            features[i] = np.asarray(catalogue["item_features"].iloc[j], np.float32)
        out[NEGATIVE_PREFIX + "item_features"] = pd.Series(features, index=log.index,
                                                           dtype=object)

    level = np.full(len(log), -1, np.int64)
    labelled = pd.MultiIndex.from_arrays([teacher.query, teacher.title]).get_indexer(
        pd.MultiIndex.from_arrays([log["query"].astype(str).to_numpy()[has],
                                   out[NEGATIVE_PREFIX + "item_title"].to_numpy()[has]]))
    level[np.flatnonzero(has)[labelled >= 0]] = np.argmax(teacher.logits[labelled[labelled >= 0]],
                                                          axis=1)
    out[NEGATIVE_PREFIX + "relevance"] = pd.array(np.where(level < 0, None, level), dtype="Int64")
    stats = {"rows_with_negative": int(has.sum()),
             "rows_with_teacher_level": int((level >= 0).sum()),
             "requests_without_unshown": int(pd.Series(log["request_id"].astype(str))[
                 row_request < 0].nunique()),
             "teacher_level_counts": {int(k): int(v) for k, v in zip(
                 *np.unique(level[level >= 0], return_counts=True))}}
    return out, stats
