import numpy as np
import pytest
import tensorflow as tf
import keras

from prectr_tf.metrics import RelevanceMacroF1, log_loss, relevance_accuracy
from prectr_tf.metrics.predictions import log_loss as np_log_loss
from prectr_tf.metrics.predictions import macro_f1


def test_log_loss_matches_numpy_with_masks_weights_and_batches():
    rng = np.random.default_rng(0)
    labels = rng.integers(-1, 2, 300)
    probs = rng.uniform(0, 1, 300).astype("float32")
    m = log_loss()
    for chunk in np.array_split(np.arange(300), 3):
        m.update_state(labels[chunk], probs[chunk])
    assert float(m.result()) == pytest.approx(np_log_loss(labels, probs), rel=1e-4)
    weights = rng.uniform(0.1, 2, 300).astype("float32")
    weighted = log_loss()
    weighted.update_state({"labels": labels}, probs[:, None], sample_weight=weights)
    keep = labels >= 0
    p = np.clip(probs, 1e-7, 1 - 1e-7)
    per_row = -(labels * np.log(p) + (1 - labels) * np.log1p(-p))
    expected = np.sum(per_row[keep] * weights[keep]) / np.sum(weights[keep])
    assert float(weighted.result()) == pytest.approx(expected, rel=1e-4)


def test_log_loss_of_hard_probabilities_is_finite():
    m = log_loss()
    m.update_state([1, 0, 1], [0.0, 1.0, 1.0])  # clipped at 1e-7 (in float32)
    assert np.isfinite(float(m.result())) and float(m.result()) > 10


def test_relevance_accuracy_masks_unlabelled():
    m = relevance_accuracy()
    probs = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]], "float32")
    m.update_state([1, 1, -1], probs)
    assert float(m.result()) == 0.5  # the -1 row is neither right nor wrong
    assert m.name == "relevance_accuracy"


@pytest.mark.parametrize("seed", range(3))
def test_macro_f1_matches_numpy(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(-1, 4, 400)
    labels[labels == 3] = 2  # level 3 never labelled ...
    logits = rng.normal(size=(400, 4)).astype("float32")
    logits[:, 3] -= 10  # ... and never predicted: excluded from the macro mean
    m = RelevanceMacroF1(num_levels=4)
    for chunk in np.array_split(np.arange(400), 4):
        m.update_state(labels[chunk], logits[chunk])
    assert float(m.result()) == pytest.approx(macro_f1(labels, logits.argmax(-1)), rel=1e-6)


def test_macro_f1_weights_empty_and_xla():
    m = RelevanceMacroF1(num_levels=3)
    assert float(m.result()) == 0.0
    # weight 0 on the wrong row -> perfect
    probs = np.eye(3, dtype="float32")[[0, 1, 2, 0]]
    m.update_state([0, 1, 2, 2], probs, sample_weight=[1, 1, 1, 0])
    assert float(m.result()) == pytest.approx(1.0)
    xla = RelevanceMacroF1(num_levels=3)
    tf.function(lambda y, p: xla.update_state(y, p), jit_compile=True)(
        np.array([0, 1, 2, 2]), probs)
    assert float(xla.result()) == pytest.approx(macro_f1([0, 1, 2, 2], [0, 1, 2, 0]))


def test_serialization_round_trip():
    for m in (RelevanceMacroF1(num_levels=5, label_key="relevance"), log_loss(name="ll"),
              relevance_accuracy()):
        restored = keras.metrics.deserialize(keras.metrics.serialize(m))
        assert type(restored) is type(m) and restored.name == m.name
    assert restored.get_config()["metric"]["config"]["name"] == "relevance_accuracy"
    f1 = keras.metrics.deserialize(keras.metrics.serialize(RelevanceMacroF1(num_levels=5)))
    assert f1.num_levels == 5
