"""`PRECTRModel`: presets build what they claim, gradients reach the encoder
only when fine-tuning, training-only parts are absent at inference, `fit`
learns, and `.keras` files round-trip."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from prectr_tf.data.pipeline import make_dataset
from prectr_tf.metrics.predictions import auc
from prectr_tf.models.config import PRESETS, preset
from prectr_tf.models.prectr_model import PRECTRModel

# Parts (sublayer attributes) each preset must have, and must not. The
# default debias (`noise_title_embedding`) re-uses the encoder and has no
# layer of its own, so it shows as the twins' outputs in training instead.
PARTS = ("encoder", "relevance_head", "personal_preference", "global_preference",
         "incentive")
EXPECTED = {
    "dnn": set(),
    "prectr_v1": {"encoder", "relevance_head", "personal_preference", "incentive"},
    "prectr_v2": set(PARTS),
    "v2_no_cross": set(PARTS) - {"global_preference"},
    "v2_no_debias": set(PARTS),
    "v2_frozen_encoder": set(PARTS),
}
DEBIASED = {"prectr_v2", "v2_no_cross", "v2_frozen_encoder"}


def _model(tiny_dataset, name, encoder_dropout=0.1, **overrides):
    data_dir, vocab = tiny_dataset
    config = preset(name, embedding_dim=8, hidden_units=(16,), **overrides)
    config = config.__class__(**{**config.__dict__, "encoder": config.encoder.__class__(
        max_length=16, num_layers=2, hidden_dim=16, num_heads=2,
        intermediate_dim=32, dropout=encoder_dropout)})
    model = PRECTRModel.from_dataset(data_dir, config, wordpiece_vocabulary=vocab)
    model.build()
    return model


def _batch(tiny_dataset, size=64):
    return next(iter(make_dataset(tiny_dataset[0], "train", batch_size=size, shuffle=False)))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_build_exactly_their_parts(tiny_dataset, name):
    model = _model(tiny_dataset, name)
    present = {p for p in PARTS if hasattr(model, p)}
    assert present == EXPECTED[name]
    weights = {w.path.split("/")[1] for w in model.weights}
    assert ("global_preference" in weights) == ("global_preference" in EXPECTED[name])
    assert ("encoder" in weights) == ("encoder" in EXPECTED[name])
    features, _ = _batch(tiny_dataset, size=8)
    twins = "negative_log_p_click" in model(features, training=True)
    assert twins == (name in DEBIASED)


@pytest.mark.parametrize("name", ["prectr_v2", "prectr_v1"])
def test_no_random_or_hard_negative_op_at_inference(tiny_dataset, name):
    model = _model(tiny_dataset, name)
    features, _ = _batch(tiny_dataset)

    def ops_of(training):
        fn = tf.function(lambda f: model(f, training=training))
        graph = fn.get_concrete_function(features).graph
        return {op.type for op in graph.get_operations()}, graph

    inference_ops, graph = ops_of(False)
    assert not any(t.startswith(("Random", "StatelessRandom")) for t in inference_ops)
    assert not any("hard_negative" in op.name for op in graph.get_operations())
    outputs = model(features, training=False)
    assert "negative_log_p_click" not in outputs
    if name == "prectr_v2":
        training_ops, _ = ops_of(True)
        assert any(t.startswith(("Random", "StatelessRandom")) for t in training_ops)
        assert "negative_log_p_click" in model(features, training=True)


@pytest.mark.parametrize("name,reaches", [("prectr_v2", True), ("v2_frozen_encoder", False),
                                         ("prectr_v1", False)])
def test_gradients_reach_the_encoder_only_when_finetuning(tiny_dataset, name, reaches):
    model = _model(tiny_dataset, name)
    features, labels = _batch(tiny_dataset)
    with tf.GradientTape() as tape:
        loss = model.compute_loss(features, labels, model(features, training=True))
    encoder_weights = model.encoder.weights
    grads = tape.gradient(loss, encoder_weights)
    nonzero = [g is not None and float(tf.reduce_sum(tf.abs(g))) > 0 for g in grads]
    assert any(nonzero) == reaches
    assert bool(model.encoder.trainable_weights) == reaches


def test_outputs_are_consistent_probabilities(tiny_dataset):
    model = _model(tiny_dataset, "prectr_v2")
    features, _ = _batch(tiny_dataset)
    out = {k: v.numpy() for k, v in model(features, training=False).items()}
    np.testing.assert_allclose(out["relevance_probs"].sum(1), 1.0, rtol=1e-5)
    # P(click) = sum_k sigma(b_k + tau) p_k
    expected = (out["click_given_relevance"] * out["relevance_probs"]).sum(1)
    np.testing.assert_allclose(out["score"], expected, rtol=1e-5)
    np.testing.assert_allclose(np.exp(out["log_p_click"]) + np.exp(out["log_p_no_click"]), 1.0,
                               rtol=1e-5)


@pytest.mark.parametrize("name", ["dnn", "prectr_v2"])
def test_fit_lowers_loss_and_beats_a_constant(tiny_dataset, name):
    data_dir, _ = tiny_dataset
    keras.utils.set_random_seed(0)
    model = _model(tiny_dataset, name)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    train = make_dataset(data_dir, "train", batch_size=128, seed=0)
    history = model.fit(train, epochs=4, verbose=0)
    assert history.history["click_loss"][-1] < history.history["click_loss"][0]
    scores, clicks = [], []
    for features, labels in make_dataset(data_dir, "train", batch_size=256, shuffle=False):
        scores.append(model(features, training=False)["score"].numpy())
        clicks.append(labels["click"].numpy())
    # a constant predictor has AUC 0.5
    assert auc(np.concatenate(clicks), np.concatenate(scores)) > 0.6


def test_keras_round_trip_gives_identical_predictions(tiny_dataset, tmp_path):
    model = _model(tiny_dataset, "prectr_v2")
    features, _ = _batch(tiny_dataset)
    before = model.predict(features, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    after = loaded.predict(features, verbose=0)
    for key in ("score", "relevance_probs", "click_given_relevance"):
        np.testing.assert_allclose(before[key], after[key], rtol=1e-6, atol=1e-7)
    assert loaded.config == model.config


def test_evaluate_reports_every_term_and_grouped_metrics(tiny_dataset):
    data_dir, _ = tiny_dataset
    model = _model(tiny_dataset, "prectr_v2")
    model.compile(optimizer="adam")
    results = model.evaluate(make_dataset(data_dir, "eval", batch_size=256), return_dict=True,
                             verbose=0)
    for key in ("loss", "click_loss", "relevance_loss", "consistency_loss", "load_balance_loss",
                "debias_loss", "auc", "gauc_user", "gauc_query", "ndcg_at_10", "mrr",
                "relevance_accuracy", "relevance_macro_f1", "gauc_user/cold"):
        assert key in results, key
    assert results["debias_loss"] == 0.0  # no hard negatives at evaluation


def _bce(clicks, p):
    p = np.clip(np.asarray(p, np.float64), 1e-7, 1 - 1e-7)
    return float(np.mean(-(clicks * np.log(p) + (1 - clicks) * np.log(1 - p))))


def test_evaluated_loss_is_the_mean_over_every_row(tiny_dataset):
    """Several batches, the last one short: the reported click loss is the
    numpy BCE over all rows, not lowered by the step that finds the data
    exhausted (it used to count as one more batch of loss 0)."""
    data_dir, _ = tiny_dataset
    model = _model(tiny_dataset, "dnn")
    model.compile(optimizer="adam")
    data = make_dataset(data_dir, "eval", batch_size=64, shuffle=False)
    clicks, scores = [], []
    for x, y in data:
        clicks.append(y["click"].numpy().ravel())
        scores.append(model(x, training=False)["score"].numpy())
    clicks, scores = np.concatenate(clicks), np.concatenate(scores)
    assert len(clicks) % 64 and len(clicks) > 128 and set(np.unique(clicks)) == {0, 1}
    results = model.evaluate(data, return_dict=True, verbose=0)
    want = _bce(clicks, scores)
    assert results["click_loss"] == pytest.approx(want, rel=1e-4)
    assert results["loss"] == pytest.approx(want, rel=1e-4)


@pytest.mark.parametrize("name", ["prectr_v1", "prectr_v2"])
def test_weight_two_equals_the_row_twice(tiny_dataset, name):
    """Every term of the objective and its gradients: a batch where some rows
    have sample weight 2 equals the batch with those rows repeated."""
    model = _model(tiny_dataset, name)
    features, labels = _batch(tiny_dataset, 64)
    weight = np.where(np.arange(64) % 3 == 0, 2.0, 1.0).astype("float32")
    repeat = np.repeat(np.arange(64), weight.astype(int))

    def objective(x, y, w):
        with tf.GradientTape() as tape:
            loss = model.compute_loss(x, y, model(x, training=False), w, training=False)
        terms = {t.name: float(t.loss_tracker.result()) for t in model.tasks}
        for task in model.tasks:
            task.loss_tracker.reset_state()
        grads = tape.gradient(loss, model.trainable_variables)
        return float(loss), terms, grads

    weighted = objective(features, labels, weight)
    repeated = objective(*tf.nest.map_structure(lambda t: tf.gather(t, repeat),
                                                (features, labels)), None)
    unweighted = objective(features, labels, None)
    # float32 sums in another order: ~1e-5 relative on the small terms
    assert weighted[0] == pytest.approx(repeated[0], rel=1e-4, abs=1e-6)
    assert weighted[1] == pytest.approx(repeated[1], rel=1e-4, abs=1e-6)
    assert weighted[0] != pytest.approx(unweighted[0], rel=1e-5)  # the weights matter
    for a, b in zip(weighted[2], repeated[2]):
        if a is not None:
            np.testing.assert_allclose(tf.convert_to_tensor(a), tf.convert_to_tensor(b),
                                       rtol=1e-4, atol=1e-6)


def test_dedup_of_repeated_pairs_changes_no_prediction(tiny_dataset):
    """Each distinct (query, title) of a batch is encoded once: predictions
    equal the row-by-row encoding (1e-5) on a batch full of repeats."""
    import dataclasses

    model = _model(tiny_dataset, "prectr_v2")
    features, _ = _batch(tiny_dataset, 32)
    order = np.r_[np.arange(32), np.arange(32)[::-1], np.arange(0, 32, 3)]
    features = tf.nest.map_structure(lambda t: tf.gather(t, order), features)
    keys = [f"{q}|{t}" for q, t in zip(features["query"].numpy().ravel(),
                                       features["item_title"].numpy().ravel())]
    assert len(set(keys)) < len(keys) / 2  # mostly repeats
    deduped = model(features, training=False)
    model.config = dataclasses.replace(model.config, dedup_pairs=False)
    plain = model(features, training=False)
    for key in ("score", "relevance_probs", "click_given_relevance"):
        np.testing.assert_allclose(deduped[key], plain[key], atol=1e-5)


def test_every_layer_size_comes_from_the_config_and_round_trips(tiny_dataset, tmp_path):
    """Each size `prectr_model.py` used to fix is a `PRECTRConfig` /
    `EncoderConfig` field: a non-default value reaches its layer, and the
    `.keras` file and the config dict give it back."""
    import dataclasses

    from prectr_tf.config import dataclass_from_dict
    from prectr_tf.models.config import EncoderConfig, PRECTRConfig

    data_dir, vocab = tiny_dataset
    encoder = EncoderConfig(max_length=24, query_length=8, title_length=14,
                            pad_to_longest=False, num_layers=1, hidden_dim=16, num_heads=2,
                            intermediate_dim=32)
    config = preset("prectr_v2", embedding_dim=8, hidden_units=(16,), encoder=encoder,
                    query_id_buckets=997, relevance_head_units=(12, 6),
                    attention_hidden_units=(10,), event_relevance_dim=5, event_click_dim=3,
                    preference_similarity_scale=2.5, preference_hidden_units=(7,),
                    cross_user_num_heads=2, cross_user_gate_units=(9,),
                    incentive_hidden_units=(11,))
    model = PRECTRModel.from_dataset(data_dir, config, wordpiece_vocabulary=vocab)
    model.build()
    assert model.query_embedding.num_buckets == 997
    assert model.relevance_head.hidden_units == (12, 6)
    assert model.ctr_tower.attention_hidden_units == (10,)
    assert (model.event_encoder.relevance_dim, model.event_encoder.click_dim) == (5, 3)
    assert model.personal_preference.similarity_scale == 2.5
    assert model.personal_preference.hidden_units == (7,)
    assert model.global_preference.num_heads == 2
    assert model.global_preference.gate_hidden_units == (9,)
    assert model.incentive.hidden_units == (11,)
    assert (model.tokenizer.max_length, model.tokenizer.query_length,
            model.tokenizer.title_length, model.tokenizer.pad_to_longest) == (24, 8, 14, False)
    assert dataclass_from_dict(PRECTRConfig, dataclasses.asdict(config), "test") == config
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    # from_dataset resolves the default relevance_id_features (the data has titles)
    assert restored.config == dataclasses.replace(config, relevance_id_features=False)
    features, _ = _batch(tiny_dataset, 16)
    np.testing.assert_allclose(restored(features)["score"], model(features)["score"], atol=1e-6)


@pytest.mark.parametrize("debias", ["noise_r", "noise_title_embedding"])
def test_twins_over_anchor_rows_only_equal_the_all_rows_pass(tiny_dataset, debias):
    """The noisy twins are scored over the anchor rows alone and scattered
    back: anchors get exactly the all-rows pass's outputs, other rows 0, and
    the debias loss is unchanged (noise 0, no encoder dropout and no Gumbel
    gate make the pass deterministic)."""
    from prectr_tf.layers.hard_negative import hard_negative_anchor_mask
    from prectr_tf.models.tasks import DebiasTask

    model = _model(tiny_dataset, "prectr_v2", encoder_dropout=0.0, use_incentive=False,
                   debias=debias, debias_noise_scale=0.0)
    features, labels = _batch(tiny_dataset, size=128)
    r = model._encode_pairs(features["query"], features["item_title"], training=False)
    preference = model._preference(features, r, training=False)
    context = model.ctr_tower.context(features, training=False)
    out = model._heads(context, r, preference, training=False)
    anchors = hard_negative_anchor_mask(labels["click"], labels["relevance"])
    assert 0 < int(tf.reduce_sum(tf.cast(anchors, tf.int32))) < 128
    pairs = (features["query"], features["item_title"])
    every = model._over_rows(None, model._twins, context, r, preference, pairs)
    only = model._over_rows(anchors, model._twins, context, r, preference, pairs)
    keep = anchors.numpy()
    for name in ("negative_log_p_click", "negative_relevance_logits"):
        assert only[name].shape == every[name].shape
        np.testing.assert_allclose(only[name].numpy()[keep], every[name].numpy()[keep],
                                   rtol=1e-6, atol=1e-6)
        assert not only[name].numpy()[~keep].any()
    # With noise 0 the twin of a row is the row itself.
    np.testing.assert_allclose(every["negative_log_p_click"].numpy(), out["log_p_click"].numpy(),
                               rtol=1e-6, atol=1e-6)
    task = DebiasTask(4, 1.0, margin=0.1, keep_fraction=1.0)
    for shifted in (0.0, 0.5):  # every pair inside the margin, then none
        losses = [float(task.loss(labels, {**out, **{k: v - shifted if k == "negative_log_p_click"
                                                      else v for k, v in twins.items()}},
                                  features, None, True)) for twins in (every, only)]
        np.testing.assert_allclose(losses[0], losses[1], rtol=1e-6)
    none = model._over_rows(tf.zeros([128], tf.bool), model._twins, context, r, preference,
                           pairs)
    assert not none["negative_log_p_click"].numpy().any()


def test_over_rows_takes_zero_width_inputs():
    """A dataset without item features gives `[B, 0]` inputs (TREC): the
    anchor gather must pass them through, not fail."""
    from prectr_tf.models.prectr_model import PRECTRModel

    anchors = tf.constant([True, False, True, False])
    values = tf.reshape(tf.range(8, dtype=tf.float32), [4, 2])

    def fn(x, empty):
        assert empty.shape[1] == 0
        return {"out": x * 2.0 + tf.reduce_sum(empty, axis=1, keepdims=True)}

    got = PRECTRModel._over_rows(anchors, fn, values, tf.zeros([4, 0]))["out"].numpy()
    np.testing.assert_array_equal(got, [[0, 2], [0, 0], [8, 10], [0, 0]])
