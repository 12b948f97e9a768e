"""The SavedModel export: versioned and atomic, the `rank` signature, parity
with in-process `model.predict` after loading in a fresh process (with
`tf.saved_model.load` and with `saved_model_cli run`), exact = split, and
nothing training-only inside."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from prectr_tf.data.pipeline import read_split_columns
from prectr_tf.data.schema import EVENT_FIELDS
from prectr_tf.evaluation.full_space import request_contexts
from prectr_tf.models.config import preset
from prectr_tf.models.prectr_model import PRECTRModel
from prectr_tf.serving.client import export_info
from prectr_tf.serving.export import export_model, versions
from prectr_tf.serving.signature import OUTPUTS

def _events(data_dir):
    names = ["user_id", "item_title", "item_features", *[f.name for f in EVENT_FIELDS]]
    parts = [pd.DataFrame({k: list(v) if v.ndim > 1 else v
                           for k, v in read_split_columns(data_dir, s, names).items()})
             for s in ("train", "eval")]
    return pd.concat(parts, ignore_index=True)


def _requests(data_dir, events, num_requests=12, seed=0):
    """Eval requests with candidates: known items (some with their fields
    left out), one unknown item with a title, different counts (padded)."""
    rng = np.random.default_rng(seed)
    contexts = request_contexts(data_dir, "eval")
    num_requests = min(num_requests, len(contexts["request_id"]))
    pick = rng.choice(len(contexts["request_id"]), num_requests, replace=False)
    known = events["item_id"].unique()
    counts = rng.integers(1, 9, num_requests)
    width = int(counts.max())
    out = {name: contexts[name][pick] for name in
           ("user_id", "query", "user_event_count", "user_history_length",
            *[f"user_history_{f.name}" for f in EVENT_FIELDS])}
    out["item_id"] = np.full((num_requests, width), b"", object)
    out["item_title"] = np.full((num_requests, width), b"", object)
    out["item_category"] = np.full((num_requests, width), b"", object)
    out["item_features"] = np.full((num_requests, width, 2), np.nan, np.float32)
    for r, n in enumerate(counts):
        items = rng.choice(known, n, replace=False)
        out["item_id"][r, :n] = [i.encode() for i in items]
        out["item_id"][r, n - 1] = f"new-item-{r}".encode()
        out["item_title"][r, n - 1] = "cordless drill with two batteries".encode()
        out["item_features"][r, n - 1] = [0.5, -1.0]
    out["num_candidates"] = counts.astype(np.int64)
    return out


def _reference_features(request, events, schema):
    """The feature rows of every real candidate, assembled in numpy from the
    dataset's events (independently of the serving graph)."""
    by_time = events.sort_values("timestamp", kind="stable")
    latest = by_time.groupby("item_id").last()
    rows = {}
    length = schema.context_length
    for r in range(len(request["num_candidates"])):
        user = request["user_id"][r].decode()
        qid = int(request["query_id"][r])
        ctx = by_time[(by_time["query_id"] == qid) & (by_time["user_id"] != user)].tail(length)
        for c in range(request["num_candidates"][r]):
            item = request["item_id"][r, c].decode()
            row = {name: request[name][r] for name in
                   ("user_id", "query", "query_id", "user_event_count", "user_history_length",
                    *[f"user_history_{f.name}" for f in EVENT_FIELDS])}
            if item in latest.index:
                info = latest.loc[item]
                title, category = info["item_title"], info["item_category"]
                features = np.asarray(info["item_features"], np.float32)
            else:
                title = request["item_title"][r, c].decode()
                category = request["item_category"][r, c].decode()
                features = np.nan_to_num(request["item_features"][r, c])
            row.update(item_id=item.encode(), item_title=title.encode(),
                       item_category=category.encode(), item_features=features)
            for f in EVENT_FIELDS:
                pad = schema.padding_value(f.dtype)
                values = list(ctx[f.name]) + [pad] * (length - len(ctx))
                if f.dtype == "string":
                    values = [v.encode() if isinstance(v, str) else v for v in values]
                row[f"query_context_{f.name}"] = np.array(values, dtype=object
                                                          if f.dtype == "string" else np.int64)
            row["query_context_length"] = len(ctx)
            for k, v in row.items():
                rows.setdefault(k, []).append(v)
    return {k: np.stack(v) if isinstance(v[0], np.ndarray)
            else np.array(v, dtype=object if isinstance(v[0], bytes) else None)
            for k, v in rows.items()}


def _fresh_process(script, *args):
    done = subprocess.run([sys.executable, "-c", script, *map(str, args)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


LOAD_AND_RANK = """
import sys, numpy as np, tensorflow as tf
import tensorflow_text  # the export tokenises with TF Text ops
request = dict(np.load(sys.argv[2], allow_pickle=True))
rank = tf.saved_model.load(sys.argv[1]).signatures["rank"]
out = rank(**{k: tf.constant(v) for k, v in request.items()})
np.savez(sys.argv[3], **{k: v.numpy() for k, v in out.items()})
"""


def test_versions_are_numbered_and_a_used_one_is_refused(exported, tiny_dataset):
    model, data_dir, base, exact, split = exported
    assert versions(base) == [1, 2] and exact.endswith("1") and split.endswith("2")
    assert not [n for n in os.listdir(base) if n.startswith(".")]  # no staging left
    with pytest.raises(FileExistsError, match="not empty"):
        export_model(model, base, data_dir, version=2)
    # A failure after staging leaves nothing behind: no version, no staging.
    with pytest.raises(FileNotFoundError):
        export_model(model, base, os.path.join(data_dir, "missing"))
    assert sorted(os.listdir(base)) == ["1", "2"]
    with pytest.raises(ValueError, match="split encoder"):
        joint = PRECTRModel.from_dataset(data_dir, preset("prectr_v2"),
                                         wordpiece_vocabulary=tiny_dataset[1])
        joint.build()
        export_model(joint, base, data_dir, mode="split")
    assert sorted(os.listdir(base)) == ["1", "2"]


def test_fresh_process_scores_equal_model_predict(exported, tmp_path):
    model, data_dir, _, exact, split = exported
    events = _events(data_dir)
    request = _requests(data_dir, events, num_requests=100)
    assert len(request["num_candidates"]) == 100
    np.savez(tmp_path / "request.npz", **request)
    contexts = request_contexts(data_dir, "eval")
    by_user_query = {(u, q): i for i, (u, q) in enumerate(zip(contexts["user_id"],
                                                              contexts["query"]))}
    request_ids = [by_user_query[(u, q)] for u, q in zip(request["user_id"], request["query"])]
    reference = _reference_features({**request, "query_id": contexts["query_id"][request_ids]},
                                    events, model.schema)
    expected = model.predict(tf.data.Dataset.from_tensor_slices(reference).batch(256), verbose=0)
    valid = np.arange(request["item_id"].shape[1])[None, :] < request["num_candidates"][:, None]
    for path in (exact, split):
        out = tmp_path / f"out-{os.path.basename(path)}.npz"
        _fresh_process(LOAD_AND_RANK, path, tmp_path / "request.npz", out)
        got = dict(np.load(out))
        assert set(got) == set(OUTPUTS)
        for name in OUTPUTS:
            np.testing.assert_allclose(got[name][valid], expected[name], atol=1e-5,
                                       err_msg=f"{path}: {name}")
        assert np.all(got["score"][~valid] == 0)


def test_saved_model_cli_shows_and_runs_the_signature(exported, tmp_path):
    _, data_dir, _, exact, split = exported
    request = _requests(data_dir, _events(data_dir), num_requests=3, seed=1)
    np.savez(tmp_path / "request.npz", **request)
    cli = [sys.executable, "-m", "prectr_tf.serving.saved_model_cli"]
    shown = subprocess.run([*cli, "show", "--dir", split, "--all"], capture_output=True,
                           text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr[-2000:]
    for name in ("signature_def['rank']", "signature_def['serving_default']",
                 "inputs['num_candidates']", "outputs['click_given_relevance']"):
        assert name in shown.stdout
    inputs = ";".join(f"{k}={tmp_path / 'request.npz'}[{k}]" for k in request)
    ran = subprocess.run([*cli, "run", "--dir", split, "--tag_set", "serve", "--signature_def",
                          "rank", "--inputs", inputs, "--outdir", str(tmp_path / "cli")],
                         capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-2000:]
    _fresh_process(LOAD_AND_RANK, exact, tmp_path / "request.npz", tmp_path / "loaded.npz")
    loaded = np.load(tmp_path / "loaded.npz")
    for name in OUTPUTS:
        np.testing.assert_allclose(np.load(tmp_path / "cli" / f"{name}.npy"), loaded[name],
                                   atol=1e-5)


def test_no_training_only_state_in_the_export(exported):
    model, _, _, exact, split = exported
    for path in (exact, split):
        loaded = tf.saved_model.load(path)
        names = [v.name.lower() for v in loaded.variables]
        for word in ("adam", "optimizer", "iteration", "momentum", "velocity", "auc",
                     "total", "count", "hard_negative", "loss"):
            assert not [n for n in names if word in n], (word, names)
        graph = loaded.signatures["rank"].graph.as_graph_def()
        ops = {node.op for f in graph.library.function for node in f.node_def}
        ops |= {node.op for node in graph.node}
        assert not {op for op in ops if "Random" in op}, "noise (twins, Gumbel, dropout)"


def _request(schema, items, titles=None, features=None, user="someone-new", query="drill",
             num_candidates=None):
    """One request of an (unseen, by default) user with an empty history."""
    n, length = len(items), schema.history_length
    req = {"user_id": [user], "query": [query], "user_event_count": [0],
           "user_history_length": [0], "num_candidates": [len(items) if num_candidates is None
                                                          else num_candidates]}
    for f in EVENT_FIELDS:
        req[f"user_history_{f.name}"] = np.full((1, length), schema.padding_value(f.dtype),
                                                object if f.dtype == "string" else np.int64)
    req["item_id"] = np.array([items], dtype=object).reshape(1, n)
    req["item_title"] = np.array([titles or [""] * n], dtype=object).reshape(1, n)
    req["item_category"] = np.full((1, n), "", object)
    req["item_features"] = (np.full((1, n, 2), np.nan, np.float32) if features is None
                            else np.asarray(features, np.float32).reshape(1, n, 2))
    ints = ("user_event_count", "user_history_length", "num_candidates")
    return {k: tf.constant(v, tf.int64 if k in ints else None) for k, v in req.items()}


def test_bad_requests_have_defined_behaviour(exported):
    model, data_dir, base, _, split = exported
    schema = model.schema
    rank = tf.saved_model.load(split).signatures["rank"]
    catalogue = _events(data_dir).sort_values("timestamp", kind="stable").groupby("item_id").last()
    known = list(catalogue.index[:3])

    def scores(**kwargs):
        return rank(**_request(schema, **kwargs))["score"].numpy()

    assert rank(**_request(schema, []))["score"].shape == (1, 0)  # zero candidates
    baseline = scores(items=known)
    assert baseline.shape == (1, 3) and np.all((baseline > 0) & (baseline < 1))
    # Unknown user, unknown / empty / very long / non-ASCII query: scored.
    for query in ("a query nobody typed", "", "drill " * 500, "perceuse sans fil 電動ドリル"):
        s = scores(items=known, query=query)
        assert np.all(np.isfinite(s) & (s > 0) & (s < 1)), query
    # An unknown item is scored from the title the request sends ...
    titled = scores(items=["never-seen"], titles=["cordless drill"])
    assert np.isfinite(titled).all() and not np.allclose(
        titled, scores(items=["never-seen"], titles=["oak dining table"]))
    # ... NaN features mean "the catalogue's" for a known item, 0 for an unknown one.
    explicit = np.stack(catalogue.loc[known, "item_features"].to_numpy())
    np.testing.assert_allclose(scores(items=known, features=explicit), baseline, atol=1e-6)
    np.testing.assert_allclose(scores(items=["never-seen"], titles=["cordless drill"],
                                      features=np.zeros((1, 2))), titled, atol=1e-6)
    # Missing optional fields = sending the catalogue's values.
    titles = list(catalogue.loc[known, "item_title"])
    np.testing.assert_allclose(scores(items=known, titles=titles), baseline, atol=1e-5)
    # Errors from the signature, not a crash: counts, dtypes, shapes.
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_candidates exceeds"):
        scores(items=known, num_candidates=4)
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_candidates must be >= 0"):
        scores(items=known, num_candidates=-1)
    bad = _request(schema, known)
    with pytest.raises(tf.errors.InvalidArgumentError, match="expected to be a string tensor"):
        rank(**{**bad, "user_id": tf.constant([7], tf.int64)})
    with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError)):
        rank(**{**bad, "user_history_item_id": tf.constant([[""] * (schema.history_length + 1)])})
    with pytest.raises(tf.errors.InvalidArgumentError, match="one row per request"):
        rank(**{**bad, "query": tf.constant(["drill", "saw"])})
    small = export_model(model, base.parent / "small", data_dir, mode="split", max_candidates=2)
    small = tf.saved_model.load(small).signatures["rank"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="at most 2 candidates"):
        small(**_request(schema, known))


def test_warmup_records_read_back_and_run(exported):
    from prectr_tf.serving.warmup import read_warmup

    pytest.importorskip("tensorflow_serving.apis.prediction_log_pb2")
    model, data_dir, base, exact, split = exported
    for path in (exact, split):
        requests = read_warmup(path)
        assert len(requests) == export_info(path)["warmup_requests"] == 3
        rank = tf.saved_model.load(path).signatures["rank"]
        sizes = []
        for request in requests:
            assert request.model_spec.signature_name == "rank"
            inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
            out = rank(**{k: tf.constant(v) for k, v in inputs.items()})
            sizes.append(int(inputs["num_candidates"][0]))
            assert np.all(np.isfinite(out["score"].numpy()))
        assert sizes == [10, 100, 1000]


def test_cli_export_of_a_saved_model_scores_the_same(exported, tmp_path, capsys):
    from prectr_tf.cli import main

    model, data_dir, _, _, split = exported
    model.save(tmp_path / "model.keras")
    args = ["export", "--model", str(tmp_path / "model.keras"), "--data", str(data_dir),
            "--base", str(tmp_path / "cli"), "--mode", "split"]
    assert main(args) == 0
    assert f"exported {tmp_path / 'cli' / '1'} (split mode)" in capsys.readouterr().out
    request = _request(model.schema, ["never-seen"], titles=["cordless drill"])
    for path in (split, tmp_path / "cli" / "1"):
        rank = tf.saved_model.load(str(path)).signatures["rank"]
        scores = rank(**request)["score"].numpy()
        if path == split:
            expected = scores
    np.testing.assert_allclose(scores, expected, atol=1e-6)
    assert main([*args[:2], str(tmp_path / "missing.keras"), *args[3:]]) == 2
    assert "no such model file" in capsys.readouterr().err


def test_an_item_feed_sets_the_catalogue(exported, tmp_path):
    model, data_dir, _, _, split = exported
    latest = _events(data_dir).sort_values("timestamp", kind="stable").groupby("item_id").last()
    feed = pd.DataFrame({"item_id": [*latest.index[:5], "feed-only"],
                         "item_title": [*latest["item_title"][:5], "cordless drill"],
                         "item_category": [*latest["item_category"][:5], "tools"],
                         "item_features": [*latest["item_features"][:5], [0.5, -1.0]]})
    path = export_model(model, tmp_path / "feed", data_dir, mode="split", items=feed)
    assert export_info(path)["num_items"] == 6
    from_feed = tf.saved_model.load(path).signatures["rank"]
    sent = tf.saved_model.load(split).signatures["rank"]
    request = _request(model.schema, ["feed-only"])
    explicit = {**_request(model.schema, ["feed-only"], titles=["cordless drill"],
                           features=[[0.5, -1.0]]),
                "item_category": tf.constant([["tools"]])}
    np.testing.assert_allclose(from_feed(**request)["score"], sent(**explicit)["score"],
                               atol=1e-6)
    for bad, match in ((feed.drop(columns="item_title"), "lacks the columns"),
                       (pd.concat([feed, feed.iloc[:1]]), "duplicate item_id"),
                       (feed.assign(item_features=[[0.0]] * 6), "width 1")):
        with pytest.raises(ValueError, match=match):
            export_model(model, tmp_path / "bad", data_dir, items=bad)
    assert not os.listdir(tmp_path / "bad")


def test_rank_command_reads_requests_and_names_bad_fields(exported, tmp_path, capsys):
    from prectr_tf.cli import main

    model, data_dir, _, _, split = exported
    known = list(_events(data_dir)["item_id"].unique()[:4])
    good = [{"user_id": "u1", "query": "drill", "candidates": known},
            {"user_id": "u2", "query": "saw", "candidates": ["new"], "titles": ["hand saw"]}]
    (tmp_path / "r.json").write_text(json.dumps(good))
    assert main(["rank", "--export", split, "--request", str(tmp_path / "r.json"),
                 "--top", "3"]) == 0
    printed = capsys.readouterr().out
    assert "user 'u1', query 'drill': top 3 of 4" in printed
    assert "user 'u2', query 'saw': top 1 of 1" in printed and "hand saw" in printed
    (tmp_path / "bad.json").write_text(json.dumps({"user": "u1", "query": "drill"}))
    assert main(["rank", "--export", split, "--request", str(tmp_path / "bad.json")]) == 2
    err = capsys.readouterr().err
    assert "request 0: unknown fields ['user']; missing fields ['candidates', 'user_id']" in err
