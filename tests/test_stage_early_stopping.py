"""Stages 1 and 2 stop early on a held-out slice of the train requests (issue 10)."""

import numpy as np
import pytest

from prectr_tf.data import pipeline
from prectr_tf.data.pipeline import held_out_request, make_dataset
from prectr_tf.models.config import preset
from prectr_tf.models.training import STAGES, TrainConfig, train_staged


def _request_ids(data_dir, **kwargs):
    ids = []
    for features, _ in make_dataset(data_dir, "train", batch_size=500, shuffle=False, **kwargs):
        ids.extend(features["request_id"].numpy().ravel().tolist())
    return ids


def test_the_holdout_splits_requests_not_impressions(tiny_dataset):
    data_dir, _ = tiny_dataset
    every = _request_ids(data_dir)
    kept = _request_ids(data_dir, holdout_fraction=0.3)
    held = _request_ids(data_dir, holdout_fraction=0.3, holdout=True)
    assert sorted(kept + held) == sorted(every)
    assert not set(kept) & set(held)
    share = len(set(held)) / len(set(every))
    assert 0.2 < share < 0.4
    # The same slice every time, whatever the shuffle.
    again = _request_ids(data_dir, holdout_fraction=0.3, holdout=True)
    assert sorted(again) == sorted(held)
    with pytest.raises(ValueError, match="holdout_fraction"):
        make_dataset(data_dir, "train", holdout_fraction=1.0)


@pytest.mark.parametrize("chunk", [7, 1024])
def test_the_holdout_filter_keeps_the_record_order(tiny_dataset, monkeypatch, chunk):
    # The filter parses request ids a chunk at a time; whatever the chunk
    # (7 does not divide the files), it keeps exactly the records a
    # one-by-one filter keeps, in their order.
    monkeypatch.setattr(pipeline, "_FILTER_CHUNK", chunk)
    data_dir, _ = tiny_dataset
    every = _request_ids(data_dir)
    held = held_out_request(np.array(every, dtype=object), 0.3).numpy()
    for holdout in (True, False):
        expected = [i for i, h in zip(every, held) if h == holdout]
        assert _request_ids(data_dir, holdout_fraction=0.3, holdout=holdout) == expected


def test_a_cached_slice_replays_its_first_pass(tiny_dataset):
    data_dir, _ = tiny_dataset
    cached = make_dataset(data_dir, "train", batch_size=64, shuffle=False, cache=True,
                          holdout_fraction=0.3, holdout=True)
    passes = [[labels["click"].numpy() for _, labels in cached] for _ in range(2)]
    plain = [labels["click"].numpy()
             for _, labels in make_dataset(data_dir, "train", batch_size=64, shuffle=False,
                                           holdout_fraction=0.3, holdout=True)]
    for batches in passes:
        assert len(batches) == len(plain)
        assert all(np.array_equal(a, b) for a, b in zip(batches, plain))
    with pytest.raises(ValueError, match="cache=True needs shuffle=False"):
        make_dataset(data_dir, "train", cache=True)


def _stage2(data_dir, out_dir, **train):
    """A tiny dnn's stage 2, stopped on a 30 % holdout: the model, the
    stage's held-out losses and best epoch, and the kept weights' held-out
    loss."""
    train = TrainConfig(batch_size=64, joint_epochs=12, stage_validation_fraction=0.3, **train)
    config = preset("dnn", embedding_dim=8, hidden_units=(16,))
    model, history = train_staged(data_dir, config, train, out_dir, verbose=0)
    stage = history[STAGES[2]]
    holdout = make_dataset(data_dir, "train", batch_size=64, holdout_fraction=0.3,
                           holdout=True)
    # The loss is a mean of batch means and the batches are shuffled, so the
    # kept epoch's loss is matched to ~1e-4, far closer than any other's.
    loss = model.evaluate(holdout, return_dict=True, verbose=0)["loss"]
    return np.array(stage["val_loss"]), stage["best_epoch"][0], loss


def test_stage2_stops_on_the_holdout_and_keeps_its_best_epoch(tiny_dataset, tmp_path):
    val, best, loss = _stage2(tiny_dataset[0], tmp_path, stage_patience=1, learning_rate=0.05)
    assert len(val) < 12  # a learning rate this high overfits the tiny split at once
    assert best == int(np.argmin(val)) + 1 and len(val) == best + 1
    # The weights kept are the best epoch's: the held-out loss is its loss.
    gaps = np.abs(val - loss)
    assert gaps[best - 1] < 1e-3 and gaps[best - 1] < np.delete(gaps, best - 1).min()
    with pytest.raises(ValueError, match="stage_validation_fraction"):
        TrainConfig(stage_validation_fraction=1.0)


def test_a_decrease_below_min_delta_is_not_better(tiny_dataset, tmp_path):
    val, best, loss = _stage2(tiny_dataset[0], tmp_path, stage_patience=2,
                              stage_min_delta=10.0)
    # The loss did fall, so with min_delta 0 the stage would have gone on;
    # no fall reaches 10 nats, so epoch 1 stays the best and patience ends it.
    assert val[1:].min() < val[0]
    assert len(val) == 3 and best == 1
    assert abs(loss - val[0]) < 1e-3 < np.abs(val[1:] - val[0]).max()
