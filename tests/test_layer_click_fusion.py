"""`ConditionalClickFusion`: P(click) = Σ_k σ(b_k + τ)·p_k against numpy, in log space."""

import keras
import numpy as np
import tensorflow as tf

from prectr_tf.layers.click_fusion import ConditionalClickFusion

RNG = np.random.default_rng(0)
B = RNG.normal(scale=2.0, size=(8, 4)).astype("float32")
TAU = RNG.normal(size=(8, 1)).astype("float32")
Z = RNG.normal(scale=2.0, size=(8, 4)).astype("float32")


def _reference(b, tau, z):
    """Float64 reference: the direct sum, and log-space versions of both sides."""
    b, tau, z = (np.asarray(x, dtype=np.float64) for x in (b, tau, z))
    x = b + tau
    log_p = z - np.logaddexp.reduce(z, axis=-1, keepdims=True)
    log_sig = -np.logaddexp(0.0, -x)
    log_sig_neg = -np.logaddexp(0.0, x)
    p = np.exp(log_p)
    direct = np.sum(p / (1.0 + np.exp(-x)), axis=-1, keepdims=True)
    return (direct, np.logaddexp.reduce(log_sig + log_p, axis=-1, keepdims=True),
            np.logaddexp.reduce(log_sig_neg + log_p, axis=-1, keepdims=True))


def test_matches_numpy_reference():
    out = ConditionalClickFusion()(B, TAU, Z)
    direct, log_click, log_no_click = _reference(B, TAU, Z)
    for key in ("p_click", "log_p_click", "log_p_no_click"):
        assert out[key].shape == (8, 1)
    np.testing.assert_allclose(out["p_click"], direct, rtol=1e-5)
    np.testing.assert_allclose(out["log_p_click"], log_click, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["log_p_no_click"], log_no_click, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.exp(out["log_p_click"]) + np.exp(out["log_p_no_click"]),
                               1.0, atol=1e-6)


def test_tau_shifts_every_level_and_none_means_zero():
    fusion = ConditionalClickFusion()
    np.testing.assert_allclose(fusion(B, None, Z)["p_click"],
                               fusion(B, np.zeros_like(TAU), Z)["p_click"])
    np.testing.assert_allclose(fusion(B, TAU, Z)["p_click"],
                               fusion(B + TAU, None, Z)["p_click"], rtol=1e-6)
    # A positive incentive can only raise P(click).
    assert (np.asarray(fusion(B, TAU + 1.0, Z)["p_click"])
            > np.asarray(fusion(B, TAU, Z)["p_click"])).all()


def test_extreme_logits_stay_finite_and_exact():
    b = np.array([[50.0, -50.0, 50.0, -50.0], [-50.0, -50.0, -50.0, -50.0],
                  [50.0, 50.0, 50.0, 50.0], [-50.0, 50.0, 0.0, 3.0]], dtype="float32")
    z = np.array([[50.0, -50.0, -50.0, -50.0], [-50.0, 50.0, 0.0, 0.0],
                  [0.0, 0.0, 0.0, -50.0], [50.0, -50.0, 0.0, 0.0]], dtype="float32")
    tau = np.array([[0.0], [-50.0], [50.0], [0.0]], dtype="float32")
    b_var = tf.Variable(b)
    with tf.GradientTape() as tape:
        out = ConditionalClickFusion()(b_var, tau, z)
        loss = -tf.reduce_sum(out["log_p_click"]) - tf.reduce_sum(out["log_p_no_click"])
    grad = tape.gradient(loss, b_var)
    for value in list(out.values()) + [grad]:
        assert np.isfinite(np.asarray(value)).all()
    _, log_click, log_no_click = _reference(b, tau, z)
    np.testing.assert_allclose(out["log_p_click"], log_click, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["log_p_no_click"], log_no_click, rtol=1e-5, atol=1e-6)
    # Row 1: every σ(b + τ) = σ(-100): log P(click) ≈ -100, not -inf.
    assert -101.0 < float(out["log_p_click"][1, 0]) < -99.0
    np.testing.assert_allclose(out["p_click"] + np.exp(out["log_p_no_click"]), 1.0, atol=1e-6)


def test_keras_save_load_and_config(tmp_path):
    fusion = ConditionalClickFusion(name="fusion")
    assert ConditionalClickFusion.from_config(fusion.get_config()).name == "fusion"
    b = keras.Input(shape=(4,), name="b")
    tau = keras.Input(shape=(1,), name="tau")
    z = keras.Input(shape=(4,), name="z")
    model = keras.Model([b, tau, z], fusion(b, tau, z))
    expected = model([B, TAU, Z])
    model.save(tmp_path / "fusion.keras")
    loaded = keras.models.load_model(tmp_path / "fusion.keras")
    got = loaded([B, TAU, Z])
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], atol=1e-7)


def test_fit_through_the_fusion_learns_clicks():
    # Trainable per-level click logits and relevance logits from features;
    # the log-space BCE through the fusion must lower the loss.
    keras.utils.set_random_seed(0)
    x = RNG.normal(size=(512, 4)).astype("float32")
    clicks = (RNG.random(512) < 1 / (1 + np.exp(-2 * x[:, 0]))).astype("float32")[:, None]
    inputs = keras.Input(shape=(4,))
    out = ConditionalClickFusion()(keras.layers.Dense(4)(inputs), None,
                                   keras.layers.Dense(4)(inputs))
    model = keras.Model(inputs, out["p_click"])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="binary_crossentropy",
                  jit_compile=False)
    history = model.fit(x, clicks, epochs=10, batch_size=128, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0] - 0.1
