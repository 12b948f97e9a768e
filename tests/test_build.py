"""`build_dataset` + `make_dataset`: what goes into the TFRecords comes back
out of the tf.data pipeline, leakage-free, with vocabularies and an atomic
output directory."""

import json
import os

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from prectr_tf.data.build import BuildConfig, build_dataset, read_dataset_info, split_by_time
from prectr_tf.data.examples import ExampleBuilder
from prectr_tf.data.pipeline import dataset_schema, make_dataset
from prectr_tf.data.schema import DataSchema
from prectr_tf.data.simulator import SimulatorConfig, simulate
from prectr_tf.data.tfrecord import parse_batch, serialize_columns
from prectr_tf.data.validation import validate_log

from hand_log import hand_log

SCHEMA = DataSchema(history_length=2, context_length=3)


@pytest.fixture(scope="module")
def sim():
    return simulate(SimulatorConfig(num_users=60, num_requests=600, num_items=300,
                                    num_queries=40, num_candidates=20, page_size=5,
                                    num_item_features=2, seed=3))


@pytest.fixture(scope="module")
def sim_dataset(sim, tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "dataset"
    log_path = out.parent / "log.parquet"
    sim.log.to_parquet(log_path)
    schema = DataSchema(history_length=4, context_length=6, num_item_features=2)
    build_dataset(log_path, out, schema, BuildConfig(num_shards=3, chunk_size=700,
                                                     eval_fraction=0.2), progress=False)
    return out, schema


def _all(ds):
    feats, labels = zip(*list(ds))
    return ({k: np.concatenate([f[k].numpy() for f in feats]) for k in feats[0]},
            {k: np.concatenate([lab[k].numpy() for lab in labels]) for k in labels[0]})


def test_serialization_matches_protobuf_reference():
    """The batched encoder writes what tf.train.Example would, value for value."""
    frame, _ = validate_log(hand_log(), SCHEMA, "hand")
    columns = ExampleBuilder(frame, SCHEMA).columns(np.arange(len(frame)))
    records = serialize_columns(columns, SCHEMA).numpy()
    for i, record in enumerate(records):
        feature = tf.train.Example.FromString(record).features.feature
        for name in ("impression_id", "query", "item_title"):
            assert feature[name].bytes_list.value == [columns[name][i].encode()]
        assert feature["query_id"].int64_list.value == [columns["query_id"][i]]
        assert feature["relevance"].int64_list.value == [columns["relevance"][i]]
        n = columns["query_context_length"][i]
        assert list(feature["query_context_item_id"].bytes_list.value) == [
            v.encode() for v in columns["query_context_item_id"][i][:n]]
        assert list(feature["query_context_timestamp"].int64_list.value) == list(
            columns["query_context_timestamp"][i][:n])
    features, labels = parse_batch(records, SCHEMA)
    assert features["query_context_item_id"].shape == (len(frame), 3)
    np.testing.assert_array_equal(labels["relevance"].numpy(), columns["relevance"])
    np.testing.assert_array_equal(features["user_history_relevance"].numpy(),
                                  columns["user_history_relevance"])


def test_pipeline_round_trip_and_leakage(sim, sim_dataset):
    out, schema = sim_dataset
    info = read_dataset_info(out)
    assert dataset_schema(out) == schema
    assert len(info["splits"]["train"]["files"]) == 3
    train_f, train_l = _all(make_dataset(out, "train", batch_size=64, shuffle=False))
    eval_f, eval_l = _all(make_dataset(out, "eval", batch_size=64))
    n_train, n_eval = len(train_l["click"]), len(eval_l["click"])
    assert n_train + n_eval == len(sim.log) == info["num_impressions"]
    assert (n_train, n_eval) == (info["splits"]["train"]["num_examples"],
                                 info["splits"]["eval"]["num_examples"])
    assert train_f["timestamp"].max() < eval_f["timestamp"].min()  # split by time
    for f, lab in ((train_f, train_l), (eval_f, eval_l)):
        assert set(np.unique(lab["click"])) <= {0, 1}
        assert set(np.unique(lab["relevance"])) <= {-1, 0, 1, 2, 3}
        assert f["item_features"].shape[1] == 2
        for name, length in (("user_history", 4), ("query_context", 6)):
            ts = f[f"{name}_timestamp"]
            assert ts.shape[1] == length
            valid = np.arange(length)[None, :] < f[f"{name}_length"][:, None]
            # no event at or after the impression's time; padding is padding
            assert np.all(np.where(valid, ts, -np.inf) < f["timestamp"][:, None])
            assert np.all(f[f"{name}_item_id"][~valid] == b"")
            assert np.all(f[f"{name}_click"][~valid] == -1)
            assert np.all(np.diff(np.where(valid, ts, np.iinfo(np.int64).max), axis=1) >= 0)
        assert np.all(f["user_history_click"][f["user_history_click"] >= 0] == 1)  # clicked only
    # No own events in the cross-user context: no context event shares the
    # impression's user (checked via the log, item+time+query identify rows).
    log = sim.log.set_index(["item_id", "timestamp"])["user_id"]
    lookup = {k: v for k, v in log.items()}
    for i in range(0, n_train, 7):
        for j in range(train_f["query_context_length"][i]):
            key = (train_f["query_context_item_id"][i, j].decode(),
                   train_f["query_context_timestamp"][i, j])
            assert lookup[key] != train_f["user_id"][i].decode()


def test_shuffled_pipeline_is_a_permutation(sim_dataset):
    out, _ = sim_dataset
    ordered, _ = _all(make_dataset(out, "train", batch_size=50, shuffle=False))
    shuffled, _ = _all(make_dataset(out, "train", batch_size=50, shuffle=True, seed=1))
    assert sorted(ordered["impression_id"]) == sorted(shuffled["impression_id"])
    assert list(ordered["impression_id"]) != list(shuffled["impression_id"])
    batches = list(make_dataset(out, "train", batch_size=50, drop_remainder=True))
    assert all(b[0]["query"].shape[0] == 50 for b in batches)


def test_vocabularies_come_from_train_by_count(sim, sim_dataset):
    out, _ = sim_dataset
    info = read_dataset_info(out)
    items = (out / "vocab" / "item_id.txt").read_text().split("\n")[:-1]
    train_end = info["splits"]["train"]["time_range"][1]
    counts = sim.log[sim.log["timestamp"] <= train_end]["item_id"].value_counts()
    assert set(items) == set(counts.index)
    assert [counts[t] for t in items] == sorted(counts.to_numpy(), reverse=True)
    queries = (out / "vocab" / "query.txt").read_text().split("\n")[:-1]
    assert all(q == " ".join(q.lower().split()) for q in queries)
    assert info["vocab_sizes"]["item_id"] == len(items)


def test_split_by_time():
    ts = np.array([1, 1, 2, 3, 3, 4, 5, 5, 6, 7])
    assert split_by_time(ts, 0.0).sum() == 0
    np.testing.assert_array_equal(split_by_time(ts, 0.3), ts >= 6)  # round(0.3 * 7) = 2 latest times
    np.testing.assert_array_equal(split_by_time(ts, 0.01), ts == 7)  # never empty
    with pytest.raises(ValueError, match="eval_fraction"):
        BuildConfig(eval_fraction=1.0)


def test_output_is_atomic_and_not_overwritten(tmp_path, monkeypatch):
    log_path = tmp_path / "log.csv"
    hand_log().to_csv(log_path, index=False)
    out = tmp_path / "ds"
    import prectr_tf.data.build as build_module

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(build_module, "_write_vocabularies", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        build_dataset(log_path, out, SCHEMA, BuildConfig(eval_fraction=0), progress=False)
    assert os.listdir(tmp_path) == ["log.csv"]  # no half-built dataset, no staging dir
    monkeypatch.undo()
    build_dataset(log_path, out, SCHEMA, BuildConfig(eval_fraction=0), progress=False)
    with pytest.raises(FileExistsError, match="overwrite"):
        build_dataset(log_path, out, SCHEMA, progress=False)


def test_rejects_are_written_and_counted(tmp_path):
    frame = hand_log().astype(object)
    frame.loc[0, "relevance"] = 7
    frame.to_csv(tmp_path / "log.csv", index=False)
    info = build_dataset(tmp_path / "log.csv", tmp_path / "ds", SCHEMA,
                         BuildConfig(eval_fraction=0), progress=False)
    assert info["num_rejected"] == 1 and info["num_impressions"] == len(frame) - 1
    rejects = pd.read_csv(tmp_path / "ds" / "rejects.csv")
    assert rejects[["row", "field"]].values.tolist() == [[1, "relevance"]]
    with open(tmp_path / "ds" / "dataset.json") as fh:
        assert json.load(fh)["rejects_by_reason"] == {"relevance: out of range [0, 3]": 1}


def test_raw_frame_is_validated_and_missing_labels_stay_missing(sim, tmp_path):
    """A frame with nullable labels (the simulator's) is checked like a file:
    missing relevance becomes -1, never an arbitrary integer."""
    schema = DataSchema(history_length=2, context_length=2, num_item_features=2)
    build_dataset(sim.log, tmp_path / "ds", schema, BuildConfig(eval_fraction=0), progress=False)
    _, labels = _all(make_dataset(tmp_path / "ds", "train", batch_size=256, shuffle=False))
    assert set(np.unique(labels["relevance"])) <= {-1, 0, 1, 2, 3}
    assert (labels["relevance"] == -1).sum() == sim.log["relevance"].isna().sum()


def test_a_log_without_clicks_builds_with_empty_histories(tmp_path):
    """No clicked event at all (the Beam builder's groups hit this per user):
    every history is padding, not an index error."""
    log = hand_log()
    log["click"] = 0
    build_dataset(log, tmp_path / "ds", SCHEMA, BuildConfig(eval_fraction=0.0), progress=False)
    frame, _ = validate_log(log, SCHEMA, "hand")
    columns = ExampleBuilder(frame, SCHEMA).columns(np.arange(len(frame)))
    assert (columns["user_history_length"] == 0).all()
    assert (columns["user_history_item_id"] == SCHEMA.padding_value("string")).all()
    assert (columns["query_context_length"] > 0).any()  # context keeps unclicked events
