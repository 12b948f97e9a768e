"""Grouped metrics off the training step: `evaluate` collects every row and
computes GAUC / NDCG / MRR once; the values equal the numpy metrics of the
model's own predictions, for any batching, and a second `evaluate` starts
afresh."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from prectr_tf.data.activity import ACTIVITY_BUCKETS
from prectr_tf.data.pipeline import make_dataset
from prectr_tf.metrics.predictions import evaluate_predictions
from prectr_tf.models.config import EncoderConfig, preset
from prectr_tf.models.dcn import DCNv2Baseline
from prectr_tf.models.evaluation_rows import GROUPED_METRICS, EvaluationRows
from prectr_tf.models.prectr_model import PRECTRModel

TINY_ENCODER = EncoderConfig(max_length=16, num_layers=1, hidden_dim=16, num_heads=2,
                             intermediate_dim=32)


@pytest.fixture(scope="module")
def models(tiny_dataset):
    data_dir, vocabulary = tiny_dataset
    keras.utils.set_random_seed(0)
    v2 = PRECTRModel.from_dataset(data_dir, preset("prectr_v2", embedding_dim=8,
                                                   hidden_units=(16,), encoder=TINY_ENCODER),
                                  wordpiece_vocabulary=vocabulary)
    dcn = DCNv2Baseline.from_dataset(data_dir)
    for model in (v2, dcn):
        model.build()
        model.compile(optimizer=keras.optimizers.Adam(3e-3))
        model.fit(make_dataset(data_dir, "train", batch_size=128, seed=0), epochs=1, verbose=0)
    return {"prectr_v2": v2, "dcn_v2": dcn}


def _reference(model, data_dir):
    """The numpy metrics of the model's predictions over the eval split."""
    columns = {k: [] for k in ("score", "click", "user_id", "query_id", "request_id",
                               "user_event_count")}
    for features, labels in make_dataset(data_dir, "eval", batch_size=97, shuffle=False):
        columns["score"].append(model(features, training=False)["score"].numpy())
        columns["click"].append(labels["click"].numpy())
        for key in ("user_id", "query_id", "request_id", "user_event_count"):
            columns[key].append(features[key].numpy().reshape(-1))
    return evaluate_predictions({k: np.concatenate(v) for k, v in columns.items()},
                                rank_label_key="click")


@pytest.mark.parametrize("name", ["prectr_v2", "dcn_v2"])
def test_evaluate_equals_the_numpy_metrics_of_its_predictions_for_any_batching(
        models, tiny_dataset, name):
    data_dir, _ = tiny_dataset
    model = models[name]
    expected = _reference(model, data_dir)
    names = list(GROUPED_METRICS) + [f"{m}/{b}" for m in GROUPED_METRICS
                                     for b in ACTIVITY_BUCKETS]
    for batch_size in (16, 1000):  # lists and users span batches at 16
        got = model.evaluate(make_dataset(data_dir, "eval", batch_size=batch_size),
                             return_dict=True, verbose=0)
        for key in names:
            assert got[key] == pytest.approx(expected[key], abs=1e-9, nan_ok=True), key
        assert 0.3 < got["gauc_user"] < 1.0 and np.isfinite(got["ndcg_at_10"])
    assert len(model.evaluation_rows) == 0  # released after evaluate


def test_a_second_evaluate_does_not_see_the_first_ones_rows(models, tiny_dataset):
    data_dir, _ = tiny_dataset
    model = models["prectr_v2"]
    full = model.evaluate(make_dataset(data_dir, "eval", batch_size=64), return_dict=True,
                          verbose=0)
    part = model.evaluate(make_dataset(data_dir, "eval", batch_size=64).take(2),
                          return_dict=True, verbose=0)
    again = model.evaluate(make_dataset(data_dir, "eval", batch_size=64), return_dict=True,
                           verbose=0)
    assert part["gauc_user"] != pytest.approx(full["gauc_user"])
    assert again["gauc_user"] == pytest.approx(full["gauc_user"], abs=1e-12)
    values = model.evaluate(make_dataset(data_dir, "eval", batch_size=64), verbose=0)
    assert values[list(again).index("mrr")] == pytest.approx(again["mrr"], abs=1e-12)


def test_fit_validation_reports_the_grouped_metrics(models, tiny_dataset):
    data_dir, _ = tiny_dataset
    model = models["dcn_v2"]
    history = model.fit(make_dataset(data_dir, "train", batch_size=128, seed=1).take(2),
                        validation_data=make_dataset(data_dir, "eval", batch_size=128),
                        epochs=1, verbose=0).history
    assert 0.0 < history["val_gauc_user"][0] < 1.0 and "gauc_user" not in history


def test_weighted_rows_count_as_repeated_rows(models, tiny_dataset):
    """GAUC and the streaming AUC with weight 2 on some rows equal the same
    rows given twice."""
    data_dir, _ = tiny_dataset
    model = models["dcn_v2"]
    features, labels = next(iter(make_dataset(data_dir, "eval", batch_size=400, shuffle=False)))
    weight = np.where(np.arange(len(labels["click"])) % 3 == 0, 2.0, 1.0).astype("float32")
    repeat = np.repeat(np.arange(len(weight)), weight.astype(int))
    weighted = model.evaluate(tf.data.Dataset.from_tensors((features, labels, weight)),
                              return_dict=True, verbose=0)
    repeated = model.evaluate(tf.data.Dataset.from_tensors(tf.nest.map_structure(
        lambda t: tf.gather(t, repeat), (features, labels))), return_dict=True, verbose=0)
    for key in ("gauc_user", "gauc_query", "auc", "log_loss", "loss"):
        assert weighted[key] == pytest.approx(repeated[key], abs=1e-5), key


def test_rows_store_concatenates_and_resets():
    rows = EvaluationRows()
    for _ in range(3):
        rows.append(*[np.arange(4)] * 7)
    assert len(rows) == 12 and rows.columns()["user_id"].tolist() == list(range(4)) * 3
    rows.reset()
    assert len(rows) == 0 and rows.columns()["score"].size == 0
