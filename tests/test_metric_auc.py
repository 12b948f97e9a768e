import numpy as np
import pytest
import tensorflow as tf
import keras

from prectr_tf.metrics import MaskedMetric, masked_auc
from prectr_tf.metrics.predictions import auc


def test_masked_rows_are_left_out():
    m = masked_auc()
    m.update_state({"labels": [1, 0, -1, -1]}, [0.9, 0.1, 0.0, 1.0])
    assert float(m.result()) == pytest.approx(1.0, abs=1e-3)
    unmasked = keras.metrics.AUC(num_thresholds=1000)
    unmasked.update_state([1, 0, 0, 0], [0.9, 0.1, 0.0, 1.0])  # -1 read as 0 would differ
    assert float(unmasked.result()) < 0.9


@pytest.mark.parametrize("seed", range(2))
def test_streaming_close_to_exact_reference(seed):
    rng = np.random.default_rng(seed)
    n = 2000
    labels = rng.integers(-1, 2, n)
    scores = np.clip(rng.normal(0.5 + 0.2 * (labels == 1), 0.2), 0, 1).astype("float32")
    weights = rng.uniform(0.2, 2, n).astype("float32")
    m = masked_auc(num_thresholds=2000)
    for chunk in np.array_split(np.arange(n), 4):
        m.update_state(labels[chunk][:, None], scores[chunk][:, None], sample_weight=weights[chunk])
    assert float(m.result()) == pytest.approx(auc(labels, scores, weights), abs=2e-3)


def test_runs_under_xla():
    m = masked_auc()
    step = tf.function(lambda y, s: m.update_state(y, s), jit_compile=True)
    step(np.array([1, 0, -1, 1]), np.array([0.8, 0.2, 0.9, 0.7], "float32"))
    assert float(m.result()) == pytest.approx(1.0, abs=1e-3)


def test_fit_logs_masked_auc():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 3)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    y[::4] = -1
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(inputs))
    model.compile(optimizer="adam", loss=lambda t, p: keras.ops.mean(keras.ops.square(p)),
                  metrics=[masked_auc()])
    logs = model.fit(x, y, epochs=1, batch_size=32, verbose=0).history
    assert 0.0 <= logs["auc"][0] <= 1.0


def test_serialization_round_trip_and_reset():
    m = masked_auc(name="click_auc", num_thresholds=300)
    restored = keras.metrics.deserialize(keras.metrics.serialize(m))
    assert isinstance(restored, MaskedMetric) and restored.name == "click_auc"
    assert restored.metric.num_thresholds == 300
    restored.update_state([1, 0], [0.9, 0.1])
    restored.reset_state()
    assert float(restored.result()) == 0.0
    with pytest.raises(TypeError):
        MaskedMetric("auc")
