import numpy as np
import pytest
import keras

from prectr_tf.data.activity import activity_bucket
from prectr_tf.metrics import (GroupAUC, RelevanceMacroF1, SlicedMetric, activity_bucket_tensor,
                               evaluate_predictions, log_loss, masked_auc, ndcg)


def random_log(seed, n=600):
    rng = np.random.default_rng(seed)
    return {
        "labels": rng.integers(-1, 2, n),
        "user_id": rng.integers(0, 50, n),
        "request_id": rng.integers(0, 80, n),
        "user_event_count": rng.choice([0, 0, 1, 7, 50, 51, 300], n),
    }, rng.random(n).astype("float32")


def test_bucket_tensor_matches_the_data_definition():
    counts = np.array([0, 1, 2, 49, 50, 51, 10_000])
    np.testing.assert_array_equal(activity_bucket_tensor(counts), activity_bucket(counts))
    np.testing.assert_array_equal(activity_bucket_tensor(counts, low_max=5),
                                  activity_bucket(counts, low_max=5))


def test_sliced_gauc_ndcg_and_log_loss_match_reference():
    y_true, scores = random_log(0)
    metrics = [SlicedMetric(GroupAUC("user_id", name="gauc_user")),
               SlicedMetric(ndcg(k=10)), SlicedMetric(log_loss())]
    for chunk in np.array_split(np.arange(len(scores)), 3):
        for m in metrics:
            m.update_state({k: v[chunk] for k, v in y_true.items()}, scores[chunk])
    got = {}
    for m in metrics:
        got.update({k: float(v) for k, v in m.result().items()})
    frame = {"click": y_true["labels"], "score": scores, "user_id": y_true["user_id"],
             "request_id": y_true["request_id"], "user_event_count": y_true["user_event_count"]}
    ref = evaluate_predictions(frame)
    for bucket in ("cold", "low", "high"):
        assert got[f"gauc_user/{bucket}"] == pytest.approx(ref[f"gauc_user/{bucket}"], abs=1e-6)
        assert got[f"ndcg_at_10/{bucket}"] == pytest.approx(ref[f"ndcg_at_10/{bucket}"], rel=1e-5)
        assert got[f"log_loss/{bucket}"] == pytest.approx(ref[f"log_loss/{bucket}"], rel=1e-4)
    assert got["gauc_user/cold"] != pytest.approx(got["gauc_user/high"])


def test_sample_weights_and_relevance_metric_pass_through():
    m = SlicedMetric(RelevanceMacroF1(num_levels=2), buckets=("cold",))
    y_true = {"labels": [0, 1, 1], "user_event_count": [0, 0, 0]}
    m.update_state(y_true, np.eye(2, dtype="float32")[[0, 1, 0]], sample_weight=[1.0, 1.0, 0.0])
    assert list(m.result()) == ["relevance_macro_f1/cold"]
    assert float(m.result()["relevance_macro_f1/cold"]) == pytest.approx(1.0)


class TaskModel(keras.Model):
    """A task-style model: `y` is a dict of columns, the model owns its metric."""

    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(1, activation="sigmoid")
        self.auc_by_activity = SlicedMetric(masked_auc())

    def call(self, x):
        return self.dense(x)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return keras.ops.mean(keras.ops.square(keras.ops.squeeze(y_pred, -1) - y["labels"]))

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        self.auc_by_activity.update_state(y, y_pred, sample_weight)
        return self.auc_by_activity.result()


def test_model_evaluate_logs_each_bucket():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3)).astype("float32")
    y = {"labels": (x[:, 0] > 0).astype("float32"),
         "user_event_count": rng.choice([0, 5, 90], 120).astype("int64")}
    model = TaskModel()
    model.compile(optimizer="adam")
    logs = model.evaluate(x, y, batch_size=40, verbose=0, return_dict=True)
    assert {"auc/cold", "auc/low", "auc/high"} <= set(logs)
    again = model.evaluate(x, y, batch_size=40, verbose=0, return_dict=True)
    assert again["auc/cold"] == pytest.approx(logs["auc/cold"])  # state reset between runs


def test_serialization_round_trip_and_validation():
    m = SlicedMetric(GroupAUC("query_id", name="gauc_query"), buckets=("cold", "high"), low_max=10)
    restored = keras.metrics.deserialize(keras.metrics.serialize(m))
    assert isinstance(restored, SlicedMetric) and restored.get_config() == m.get_config()
    assert [s.name for s in restored.sliced] == ["gauc_query/cold", "gauc_query/high"]
    with pytest.raises(ValueError):
        SlicedMetric(log_loss(), buckets=("warm",))
    with pytest.raises(ValueError, match="user_event_count"):
        m.update_state({"labels": [1]}, [0.5])


def test_supports_jit_flags_follow_the_wrapped_metric():
    assert SlicedMetric(masked_auc()).supports_jit
    assert not SlicedMetric(GroupAUC("user_id")).supports_jit
    assert not ndcg().supports_jit and not GroupAUC("user_id").supports_jit
