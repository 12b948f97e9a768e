"""`DCNv2Baseline`: builds its cross stack over the pipeline's inputs, pools
the history over real slots only, masks unknown clicks in the loss, learns
with `fit` on the pipeline's label dict, and `.keras` files round-trip."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from prectr_tf.data.pipeline import make_dataset
from prectr_tf.metrics.predictions import auc
from prectr_tf.models.dcn import DCNv2Baseline


def _model(tiny_dataset, **overrides):
    kwargs = dict(embedding_dim=8, hidden_units=(16,), num_cross_layers=2)
    model = DCNv2Baseline.from_dataset(tiny_dataset[0], **{**kwargs, **overrides})
    model.build()
    return model


def _batch(tiny_dataset, size=64):
    return next(iter(make_dataset(tiny_dataset[0], "train", batch_size=size, shuffle=False)))


def test_builds_cross_stack_over_every_input(tiny_dataset):
    model = _model(tiny_dataset)
    # 4 id embeddings + 2 item features + the pooled history.
    width = 4 * 8 + model.schema.num_item_features + 8
    assert model.schema.num_item_features == 2
    assert [c.dense.kernel.shape for c in model.cross_layers] == [(width, width)] * 2
    features, _ = _batch(tiny_dataset)
    out = model(features)
    assert out["logit"].shape == (64,)
    np.testing.assert_allclose(out["score"], tf.sigmoid(out["logit"]), rtol=1e-6)
    no_history = _model(tiny_dataset, use_history=False, projection_dim=4)
    assert no_history.cross_layers[0].dense.kernel.shape == (4, width - 8)


def test_history_is_mean_over_present_slots(tiny_dataset):
    model = _model(tiny_dataset)
    features, _ = _batch(tiny_dataset)
    x0 = model._inputs(features).numpy()
    ids = features["user_history_item_id"].numpy()
    table = model.id_embeddings["item_id"]
    vectors = table(ids).numpy()
    present = (table.lookup(ids).numpy() > 0)
    assert present.any() and not present.all()  # the batch has padded slots
    expected = vectors.sum(1) / np.maximum(present.sum(1, keepdims=True), 1)
    np.testing.assert_allclose(x0[:, -8:], expected, rtol=1e-6, atol=1e-7)


def test_loss_is_bce_over_known_clicks_only():
    model = DCNv2Baseline.__new__(DCNv2Baseline)
    keras.Model.__init__(model)
    model.loss_tracker = keras.metrics.Mean(name="loss")
    logits = np.array([2.0, -1.0, 0.5, 3.0], np.float32)
    clicks = np.array([1, 0, -1, 0])
    loss = float(model.compute_loss(y={"click": clicks, "relevance": clicks},
                                    y_pred={"logit": logits}))
    p = 1 / (1 + np.exp(-logits))
    bce = -(clicks * np.log(p) + (1 - clicks) * np.log(1 - p))
    np.testing.assert_allclose(loss, bce[clicks >= 0].mean(), rtol=1e-5)
    # a bare click tensor is accepted too
    assert float(model.compute_loss(y=clicks, y_pred={"logit": logits})) == pytest.approx(loss)


def test_fit_on_the_label_dict_lowers_loss(tiny_dataset):
    data_dir, _ = tiny_dataset
    keras.utils.set_random_seed(0)
    model = _model(tiny_dataset)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = model.fit(make_dataset(data_dir, "train", batch_size=128, seed=0), epochs=4,
                        verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert {"loss", "auc", "log_loss"} <= set(history.history)
    scores, clicks = [], []
    for features, labels in make_dataset(data_dir, "train", batch_size=256, shuffle=False):
        scores.append(model(features)["score"].numpy())
        clicks.append(labels["click"].numpy())
    clicks = np.concatenate(clicks)
    known = clicks >= 0
    assert auc(clicks[known], np.concatenate(scores)[known]) > 0.6  # a constant has 0.5


def test_keras_round_trip_gives_identical_predictions(tiny_dataset, tmp_path):
    model = _model(tiny_dataset, dropout=0.1)
    model.compile(optimizer="adam")
    # One step, so the optimizer has state to save as well.
    model.fit(make_dataset(tiny_dataset[0], "train", batch_size=64, seed=0), steps_per_epoch=1,
              verbose=0)
    features, _ = _batch(tiny_dataset)
    before = model.predict(features, verbose=0)
    model.save(tmp_path / "dcn.keras")
    loaded = keras.models.load_model(tmp_path / "dcn.keras")
    after = loaded.predict(features, verbose=0)
    np.testing.assert_array_equal(before["score"], after["score"])
    np.testing.assert_array_equal(before["logit"], after["logit"])
    assert loaded.get_config() == model.get_config()
    # compile_from_config restores the compiled state and the optimizer's
    assert loaded.compiled
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) == 1


def test_evaluated_loss_is_the_mean_over_every_row(tiny_dataset):
    """The reported loss is the numpy BCE over all rows of several batches."""
    model = _model(tiny_dataset)
    model.compile(optimizer="adam")
    data = make_dataset(tiny_dataset[0], "eval", batch_size=64, shuffle=False)
    clicks, logits = [], []
    for x, y in data:
        clicks.append(np.ravel(y["click"] if isinstance(y, dict) else y))
        logits.append(np.ravel(model(x, training=False)["logit"]))
    clicks, logits = np.concatenate(clicks).astype(np.float64), np.concatenate(logits)
    want = float(np.mean(np.logaddexp(0.0, logits) - clicks * logits))
    results = model.evaluate(data, return_dict=True, verbose=0)
    assert results["loss"] == pytest.approx(want, rel=1e-4)
