import numpy as np
import pytest
import tensorflow as tf
import keras

from prectr_tf.losses import LoadBalanceLoss, load_balance


def numpy_balance(gates, weights=None, mode="kl"):
    gates = np.asarray(gates, float)
    w = np.ones(len(gates)) if weights is None else np.asarray(weights, float)
    m = (gates * w[:, None]).sum(0) / w.sum()
    e = gates.shape[-1]
    if mode == "squared":
        return e * (m ** 2).sum()
    nz = m > 0
    return (m[nz] * np.log(e * m[nz])).sum()


@pytest.mark.parametrize("mode,balanced,collapsed", [("kl", 0.0, np.log(3)), ("squared", 1.0, 3.0)])
def test_balanced_and_collapsed(mode, balanced, collapsed):
    uniform = np.full((5, 3), 1 / 3, "float32")
    one_expert = np.tile(np.eye(3, dtype="float32")[:1], (5, 1))
    assert float(load_balance(uniform, mode=mode)) == pytest.approx(balanced, abs=1e-6)
    assert float(load_balance(one_expert, mode=mode)) == pytest.approx(collapsed, rel=1e-6)
    # Sharp but diverse gates are balanced: only the batch mean counts.
    assert float(load_balance(np.eye(3, dtype="float32"), mode=mode)) == pytest.approx(balanced, abs=1e-6)


@pytest.mark.parametrize("mode", ["kl", "squared"])
def test_random_matches_numpy_with_weights(mode):
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (32, 3))
    gates = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype("float32")
    w = rng.uniform(0, 2, 32).astype("float32")
    loss = LoadBalanceLoss(mode=mode)
    assert float(loss(None, gates)) == pytest.approx(numpy_balance(gates, mode=mode), rel=1e-5)
    assert float(loss(None, gates, sample_weight=w)) == pytest.approx(
        numpy_balance(gates, w, mode=mode), rel=1e-5)


def test_zero_weights_and_extreme_gates_are_finite():
    gates = tf.Variable(np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]], "float32"))
    with tf.GradientTape() as tape:
        loss = LoadBalanceLoss()(None, gates, sample_weight=[0.0, 0.0])
    assert float(loss) == 0.0
    grad = tape.gradient(loss, gates)
    assert grad is None or np.all(np.isfinite(grad))
    logits = tf.Variable(np.array([[60.0, -60.0, -60.0]] * 4, "float32"))
    with tf.GradientTape() as tape:
        loss = LoadBalanceLoss()(None, tf.nn.softmax(logits))
    assert np.isfinite(float(loss)) and np.all(np.isfinite(tape.gradient(loss, logits)))


def test_fit_spreads_a_collapsed_gate():
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(128, 3)).astype("float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(
        3, activation="softmax", bias_initializer=keras.initializers.Constant([4.0, 0.0, 0.0]))])
    model.compile(optimizer=keras.optimizers.Adam(0.1), loss=LoadBalanceLoss())
    history = model.fit(x, np.zeros(128), batch_size=32, epochs=5, verbose=0)
    assert history.history["loss"][-1] < 0.2 * history.history["loss"][0]


def test_serialization_round_trip_and_bad_mode():
    loss = LoadBalanceLoss(mode="squared", name="bal")
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, LoadBalanceLoss) and restored.get_config() == loss.get_config()
    assert restored.mode == "squared"
    with pytest.raises(ValueError):
        LoadBalanceLoss(mode="entropy")
