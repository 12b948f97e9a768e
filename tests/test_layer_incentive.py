"""`RelevanceIncentive`: gate, experts, Gumbel-softmax in training only."""

import keras
import numpy as np
import pytest

from prectr_tf.layers.incentive import RelevanceIncentive

RNG = np.random.default_rng(0)
R = RNG.normal(size=(5, 6)).astype("float32")
R_PREF = RNG.normal(size=(5, 6)).astype("float32")


def _softplus(x):
    return np.logaddexp(0.0, x)


def _mlp(layers, x):
    for layer in layers[:-1]:
        x = np.maximum(x @ layer.kernel.numpy() + layer.bias.numpy(), 0.0)
    return x @ layers[-1].kernel.numpy() + layers[-1].bias.numpy()


def test_inference_matches_numpy_reference_and_is_deterministic():
    layer = RelevanceIncentive(hidden_units=(4,), seed=1)
    tau, gate = layer(R, R_PREF)
    assert tau.shape == (5, 1) and gate.shape == (5, 3)
    u = np.concatenate([R, R_PREF, R - R_PREF, R * R_PREF], axis=-1)
    logits = _mlp(layer.gate_layers, u)
    expected_gate = np.exp(logits - logits.max(-1, keepdims=True))
    expected_gate /= expected_gate.sum(-1, keepdims=True)
    positive = _softplus(_mlp(layer.positive_layers, u))
    negative = -_softplus(_mlp(layer.negative_layers, u))
    expected_tau = expected_gate[:, :1] * positive + expected_gate[:, 1:2] * negative
    np.testing.assert_allclose(gate, expected_gate, atol=1e-5)
    np.testing.assert_allclose(tau, expected_tau, atol=1e-5)
    tau2, gate2 = layer(R, R_PREF, training=False)
    np.testing.assert_array_equal(tau2, tau)
    np.testing.assert_array_equal(gate2, gate)


def test_training_is_stochastic_and_gates_sum_to_one():
    layer = RelevanceIncentive(seed=2, temperature=0.5)
    (tau1, gate1), (tau2, gate2) = layer(R, R_PREF, training=True), layer(R, R_PREF,
                                                                            training=True)
    assert not np.allclose(gate1, gate2)
    assert not np.allclose(tau1, tau2)
    for gate in (gate1, gate2, layer(R, R_PREF)[1]):
        np.testing.assert_allclose(np.sum(gate, axis=-1), 1.0, atol=1e-5)
        assert (np.asarray(gate) >= 0).all()


def test_low_temperature_gumbel_samples_are_near_one_hot_and_follow_the_gate():
    layer = RelevanceIncentive(seed=3, temperature=0.01)
    r = np.repeat(R[:1], 4000, axis=0)
    r_pref = np.repeat(R_PREF[:1], 4000, axis=0)
    soft = np.asarray(layer(r[:1], r_pref[:1])[1])[0]
    samples = np.asarray(layer(r, r_pref, training=True)[1])
    assert (samples.max(axis=-1) > 0.99).mean() > 0.95
    # Gumbel-max: the sampled expert frequencies are the softmax probabilities.
    frequencies = np.bincount(samples.argmax(-1), minlength=3) / len(samples)
    np.testing.assert_allclose(frequencies, soft, atol=0.03)


def test_expert_signs():
    layer = RelevanceIncentive(seed=0)
    layer(R, R_PREF)
    bias = layer.gate_layers[-1].bias
    for expert, sign in ((0, 1.0), (1, -1.0), (2, 0.0)):
        bias.assign(np.where(np.arange(3) == expert, 50.0, -50.0).astype("float32"))
        tau, gate = layer(R, R_PREF)
        np.testing.assert_allclose(np.asarray(gate)[:, expert], 1.0, atol=1e-6)
        assert (np.sign(np.round(np.asarray(tau), 6)) == sign).all()


def test_config_round_trip_and_validation():
    layer = RelevanceIncentive(hidden_units=(8, 4), activation="tanh", temperature=0.3, seed=7)
    config = layer.get_config()
    assert RelevanceIncentive.from_config(config).get_config() == config
    with pytest.raises(ValueError):
        RelevanceIncentive(temperature=0.0)


def _model(layer):
    r = keras.Input(shape=(6,), name="r")
    r_pref = keras.Input(shape=(6,), name="r_pref")
    tau, gate = layer(r, r_pref)
    return keras.Model([r, r_pref], {"tau": tau, "gate": gate})


def test_keras_save_load(tmp_path):
    model = _model(RelevanceIncentive(seed=4))
    expected = model([R, R_PREF])
    model.save(tmp_path / "incentive.keras")
    loaded = keras.models.load_model(tmp_path / "incentive.keras")
    got = loaded([R, R_PREF])
    for key in ("tau", "gate"):
        np.testing.assert_allclose(got[key], expected[key], atol=1e-6)


def test_fit_learns_a_signed_incentive():
    # τ must come out positive when r agrees with r_pref and negative when
    # it opposes it: only the mixture of signed experts can do both.
    keras.utils.set_random_seed(0)
    r = RNG.normal(size=(512, 6)).astype("float32")
    sign = np.where(RNG.random(512) < 0.5, 1.0, -1.0).astype("float32")[:, None]
    r_pref = sign * r
    r_in = keras.Input(shape=(6,))
    p_in = keras.Input(shape=(6,))
    tau, _ = RelevanceIncentive(hidden_units=(16,), seed=5)(r_in, p_in)
    model = keras.Model([r_in, p_in], tau)
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="mse", jit_compile=False)
    model.fit([r, r_pref], 2.0 * sign, epochs=8, batch_size=64, verbose=0)
    predicted = np.asarray(model([r, r_pref]))
    assert (np.sign(predicted) == sign).mean() > 0.9
