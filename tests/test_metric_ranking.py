import numpy as np
import pytest
import tensorflow as tf
import keras
import keras_rs

from prectr_tf.metrics import ListwiseMetric, mrr, ndcg, pad_lists
from prectr_tf.metrics.reference import mrr as np_mrr
from prectr_tf.metrics.reference import ndcg_at_k


def random_requests(seed, n=240, lists=30):
    rng = np.random.default_rng(seed)
    request = rng.integers(0, lists, n)
    labels = rng.integers(0, 4, n) * (rng.random(n) < 0.4)
    labels[request == 4] = 0  # a request without positives
    labels[rng.random(n) < 0.05] = -1
    scores = (rng.permutation(n) / n).astype("float32")  # no ties
    return request, labels, scores


def test_pad_lists_keeps_order_and_masks():
    (labels, scores), mask = pad_lists(
        tf.constant(["q1", "q2", "q1", "q3", "q1"]),
        [tf.constant([1, 2, 3, 4, 5]), tf.constant([0.1, 0.2, 0.3, 0.4, 0.5])], pad_values=[-1, 0.0])
    np.testing.assert_array_equal(labels, [[1, 3, 5], [2, -1, -1], [4, -1, -1]])
    np.testing.assert_array_equal(mask, [[1, 1, 1], [1, 0, 0], [1, 0, 0]])
    np.testing.assert_allclose(scores[0], [0.1, 0.3, 0.5])


def test_hand_computed():
    y_true = {"labels": [0, 1, 1, 0, 0, 0], "request_id": [7, 7, 8, 8, 9, 9]}
    scores = [0.9, 0.1, 0.8, 0.3, 0.5, 0.4]
    m = ndcg(k=2)
    m.update_state(y_true, scores)
    # list 9 has no positive: skipped (keras-rs alone would average in a 0)
    assert float(m.result()) == pytest.approx((1 / np.log2(3) + 1) / 2, rel=1e-6)
    r = mrr()
    r.update_state(y_true, scores)
    assert float(r.result()) == pytest.approx(0.75, rel=1e-6)
    assert (m.name, r.name) == ("ndcg_at_2", "mrr")


@pytest.mark.parametrize("seed", range(3))
def test_matches_numpy_reference_across_batches(seed):
    request, labels, scores = random_requests(seed)
    metrics = [ndcg(k=10), ndcg(k=3), mrr()]
    for chunk in np.array_split(np.arange(len(request)), 6):  # requests span batches
        for m in metrics:
            m.update_state({"labels": labels[chunk], "request_id": request[chunk]}, scores[chunk])
    assert float(metrics[0].result()) == pytest.approx(ndcg_at_k(request, labels, scores, k=10), rel=1e-5)
    assert float(metrics[1].result()) == pytest.approx(ndcg_at_k(request, labels, scores, k=3), rel=1e-5)
    assert float(metrics[2].result()) == pytest.approx(np_mrr(request, labels, scores), rel=1e-5)


def test_per_batch_mode_equals_exact_when_lists_are_whole():
    request, labels, scores = random_requests(4)
    order = np.argsort(request, kind="stable")
    request, labels, scores = request[order], labels[order], scores[order]
    cut = np.searchsorted(request, 15)  # a batch boundary between requests
    exact, per_batch = ndcg(k=5), ndcg(k=5, exact=False)
    for part in (slice(0, cut), slice(cut, None)):
        for m in (exact, per_batch):
            m.update_state({"labels": labels[part], "request_id": request[part]}, scores[part])
    assert float(per_batch.result()) == pytest.approx(float(exact.result()), rel=1e-5)
    per_batch.update_state({"labels": [-1], "request_id": [99]}, [0.5])  # nothing left: no-op
    per_batch.reset_state()
    assert float(per_batch.result()) == 0.0


def test_empty_and_reset():
    m = mrr()
    assert float(m.result()) == 0.0
    m.update_state({"labels": [1, 0], "request_id": ["a", "a"]}, [0.2, 0.9])
    assert float(m.result()) == pytest.approx(0.5)
    m.reset_state()
    assert float(m.result()) == 0.0


def test_in_tf_function():
    request, labels, scores = random_requests(2)
    m = ndcg(k=10, list_key="query_id")

    @tf.function
    def step(y, q, s):
        m.update_state({"labels": y, "query_id": q}, s)
        return m.result()

    for chunk in np.array_split(np.arange(len(request)), 3):
        value = step(labels[chunk], request[chunk], scores[chunk])
    assert float(value) == pytest.approx(ndcg_at_k(request, labels, scores, k=10), rel=1e-5)


def test_serialization_round_trip():
    m = ListwiseMetric(keras_rs.metrics.NDCG(k=5, name="ndcg_at_5"), list_key="query_id",
                       exact=False)
    restored = keras.metrics.deserialize(keras.metrics.serialize(m))
    assert isinstance(restored, ListwiseMetric) and restored.name == "ndcg_at_5"
    assert restored.list_key == "query_id" and not restored.exact
    assert restored.metric.k == 5
    with pytest.raises(ValueError, match="query_id"):
        restored.update_state({"labels": [1]}, [0.3])
