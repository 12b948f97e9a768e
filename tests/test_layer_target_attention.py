import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from prectr_tf.layers.target_attention import (  # noqa: E402
    TargetAttention, lengths_to_mask, masked_softmax)

RNG = np.random.default_rng(0)


def np_masked_softmax(scores, mask):
    out = np.zeros_like(scores)
    for index in np.ndindex(scores.shape[:-1]):
        valid = mask[index]
        if valid.any():
            e = np.exp(scores[index][valid] - scores[index][valid].max())
            out[index][valid] = e / e.sum()
    return out


def np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def tiny_case(d=4, e=4, batch=3, length=5):
    query = RNG.normal(size=(batch, d)).astype("float32")
    keys = RNG.normal(size=(batch, length, e)).astype("float32")
    mask = np.array([[True] * length, [True, True, False, False, False], [False] * length])
    return query, keys, mask[:batch]


def test_lengths_to_mask():
    np.testing.assert_array_equal(lengths_to_mask(tf.constant([0, 2, 5]), 4).numpy(),
                                  [[0, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]])


def test_masked_softmax_reference_and_empty_rows():
    scores = RNG.normal(size=(4, 6)).astype("float32") * 5
    mask = RNG.random((4, 6)) < 0.5
    mask[0] = False
    mask[1] = True
    out = masked_softmax(tf.constant(scores), tf.constant(mask)).numpy()
    np.testing.assert_allclose(out, np_masked_softmax(scores, mask), atol=1e-6)
    assert np.all(out[0] == 0.0) and np.all(out[~mask] == 0.0)
    np.testing.assert_allclose(out[1:][mask[1:].any(-1)].sum(-1), 1.0, atol=1e-6)


@pytest.mark.parametrize("d", [4, 3])
def test_dot_score_numpy_reference(d):
    query, keys, mask = tiny_case(d=d)
    layer = TargetAttention(score="dot")
    out, weights = layer(query, keys, padding_mask=mask, return_attention_scores=True)
    q = query if d == 4 else query @ layer.query_projection.kernel.numpy()
    scores = np.einsum("bd,bld->bl", q, keys) / np.sqrt(4)
    expected_w = np_masked_softmax(scores, mask)
    np.testing.assert_allclose(weights.numpy(), expected_w, atol=1e-6)
    np.testing.assert_allclose(out.numpy(), np.einsum("bl,ble->be", expected_w, keys), atol=1e-5)
    assert (d == 4) == (len(layer.weights) == 0)  # parameter-free when d == e


def test_mlp_score_numpy_reference_and_separate_values():
    query, keys, mask = tiny_case()
    values = RNG.normal(size=(3, 5, 2)).astype("float32")
    layer = TargetAttention(score="mlp", hidden_units=(6,), activation="sigmoid")
    out, weights = layer(query, keys, padding_mask=mask, values=values,
                         return_attention_scores=True)
    hidden, score_out = layer.score_layers
    q = np.broadcast_to(query[:, None, :], keys.shape)
    x = np.concatenate([q, keys, q - keys, q * keys], axis=-1)
    h = np_sigmoid(x @ hidden.kernel.numpy() + hidden.bias.numpy())
    scores = (h @ score_out.kernel.numpy() + score_out.bias.numpy())[..., 0]
    expected_w = np_masked_softmax(scores, mask)
    np.testing.assert_allclose(weights.numpy(), expected_w, atol=1e-6)
    np.testing.assert_allclose(out.numpy(), np.einsum("bl,blv->bv", expected_w, values),
                               atol=1e-5)
    assert out.shape == (3, 2)


@pytest.mark.parametrize("score", ["mlp", "dot"])
def test_padding_does_not_change_output(score):
    query, keys, mask = tiny_case()
    layer = TargetAttention(score=score)
    base = layer(query, keys, padding_mask=mask).numpy()
    garbage = RNG.normal(size=keys.shape).astype("float32") * 100
    noisy = np.where(mask[..., None], keys, garbage)
    np.testing.assert_allclose(layer(query, noisy, padding_mask=mask).numpy(), base, atol=1e-6)
    longer = np.concatenate([keys, garbage[:, :2]], axis=1)
    longer_mask = np.concatenate([mask, np.zeros((3, 2), bool)], axis=1)
    np.testing.assert_allclose(layer(query, longer, padding_mask=longer_mask).numpy(), base,
                               atol=1e-6)


@pytest.mark.parametrize("score", ["mlp", "dot"])
def test_all_masked_rows_are_zero_with_finite_gradients(score):
    query, keys, mask = tiny_case()
    layer = TargetAttention(score=score)
    keys = tf.constant(keys)
    with tf.GradientTape() as tape:
        tape.watch(keys)
        out = layer(query, keys, padding_mask=mask)
        loss = tf.reduce_sum(out)
    grads = tape.gradient(loss, [keys] + layer.trainable_variables)
    assert np.all(out.numpy()[2] == 0.0)
    assert all(np.all(np.isfinite(g.numpy())) for g in grads)


def test_bad_score():
    with pytest.raises(ValueError, match="score"):
        TargetAttention(score="cosine")


def test_config_round_trip_and_keras_save_load(tmp_path):
    layer = TargetAttention(score="mlp", hidden_units=(8, 4), activation="relu", dropout=0.1)
    clone = TargetAttention.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()

    q = keras.Input((3,))
    k = keras.Input((5, 4))
    m = keras.Input((5,), dtype="bool")
    model = keras.Model([q, k, m], layer(q, k, padding_mask=m))
    query, keys, mask = tiny_case(d=3)
    expected = model.predict([query, keys, mask], verbose=0)
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(restored.predict([query, keys, mask], verbose=0), expected,
                               atol=0, rtol=0)


def test_fit_learns_to_attend_to_the_matching_key():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(1)
    # Keys are one-hot item ids; values carry the answer only at the slot
    # whose key equals the target: attention must learn to pick it.
    n, length, items = 512, 6, 8
    target = rng.integers(0, items, n)
    key_ids = rng.integers(0, items, (n, length))
    key_ids[np.arange(n), rng.integers(0, length, n)] = target
    keys = np.eye(items, dtype="float32")[key_ids]
    values = rng.normal(size=(n, length, 1)).astype("float32")
    match = key_ids == target[:, None]
    y = (values[..., 0] * match).sum(1) / match.sum(1)
    q_in, k_in, v_in = keras.Input((items,)), keras.Input((length, items)), keras.Input((length, 1))
    out = TargetAttention(score="mlp", hidden_units=(16,))(q_in, k_in, values=v_in)
    model = keras.Model([q_in, k_in, v_in], out)
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="mse")
    x = [np.eye(items, dtype="float32")[target], keys, values]
    before = float(model.evaluate(x, y, verbose=0))
    model.fit(x, y, epochs=4, batch_size=64, verbose=0, shuffle=False)
    after = float(model.evaluate(x, y, verbose=0))
    assert after < 0.5 * before
