"""Staged training: stage 1 trains only the relevance head, a killed run
resumes from its backup, and `prectr train` / `prectr evaluate` agree."""

import dataclasses
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from prectr_tf.cli import main
from prectr_tf.data.pipeline import make_dataset
from prectr_tf.distill.student import load_student
from prectr_tf.models.relevance_cache import RelevanceCache
from prectr_tf.models.config import EncoderConfig, preset
from prectr_tf.models.training import (STAGES, TrainConfig, evaluate, pretrain_encoder,
                                       train_staged)

SMALL_ENCODER = dict(max_length=16, num_layers=2, hidden_dim=16, num_heads=2, intermediate_dim=32)


def _config(name):
    return preset(name, embedding_dim=8, hidden_units=(16,), encoder=EncoderConfig(**SMALL_ENCODER))


def test_killed_run_resumes_from_its_last_epoch(tiny_dataset, tmp_path, kill_after_epoch):
    data_dir, _ = tiny_dataset
    train = TrainConfig(batch_size=128, joint_epochs=3)
    with pytest.raises(KeyboardInterrupt):
        train_staged(data_dir, _config("dnn"), train, tmp_path, verbose=0,
                     callbacks=[kill_after_epoch(1)])
    assert (tmp_path / "backup" / STAGES[2]).exists()
    assert not (tmp_path / f"{STAGES[2]}.weights.h5").exists()
    model, history = train_staged(data_dir, _config("dnn"), train, tmp_path, verbose=0)
    # epochs 0 and 1 were done before the kill: only epoch 2 runs now
    assert len(history[STAGES[2]]["loss"]) == 1
    assert (tmp_path / "model.keras").exists()
    # a finished stage is skipped on a rerun, and the model it returns is the
    # same, ready to evaluate
    rerun, history = train_staged(data_dir, _config("dnn"), train, tmp_path, verbose=0)
    assert history == {}
    assert evaluate(rerun, data_dir) == pytest.approx(evaluate(model, data_dir))


def test_stage1_trains_only_the_relevance_head_and_presets_share_stage0(tiny_dataset, tmp_path):
    data_dir, _ = tiny_dataset
    train = TrainConfig(batch_size=128, encoder_sft_epochs=2, encoder_patience=1,
                        encoder_min_steps_per_epoch=5, rsl_epochs=1,
                        joint_epochs=0, wordpiece_vocabulary_size=300)
    student_dir = pretrain_encoder(data_dir, _config("prectr_v1"), train, tmp_path, verbose=0)
    student, vocab, meta = load_student(student_dir)
    assert meta["method"] == "sft" and meta["best_epoch"] in (0, 1)
    model, _ = train_staged(data_dir, _config("prectr_v1"), train, tmp_path / "v1",
                            student_dir=student_dir, verbose=0)
    # the frozen encoder is exactly the stage-0 one, not a random one
    for got, want in zip(model.encoder.get_weights(), student.encoder.get_weights()):
        np.testing.assert_array_equal(got, want)
    fresh = model.__class__.from_dataset(data_dir, _config("prectr_v1"), wordpiece_vocabulary=vocab)
    fresh.build()
    fresh.load_weights(tmp_path / "v1" / f"{STAGES[1]}.weights.h5")
    # stage 1 moved the relevance head (which started as the student's) and
    # nothing else: compare with the initial weights a same-seed model starts from
    keras.utils.set_random_seed(train.seed)
    start = model.__class__.from_dataset(data_dir, _config("prectr_v1"), wordpiece_vocabulary=vocab)
    start.build()
    for layer in ("ctr_tower", "incentive", "personal_preference"):
        for a, b in zip(getattr(start, layer).get_weights(), getattr(fresh, layer).get_weights()):
            np.testing.assert_array_equal(a, b)
    moved = [not np.array_equal(a, b) for a, b in zip(student.head.get_weights(),
                                                        fresh.relevance_head.get_weights())]
    assert any(moved)


def test_cached_and_uncached_frozen_encoder_agree(tiny_dataset, tmp_path):
    """v1 trained on the RelevanceCache predicts what the same model predicts
    from text (1e-5), and training on the cache follows the uncached run."""
    data_dir, _ = tiny_dataset
    train = TrainConfig(batch_size=128, encoder_sft_epochs=1, encoder_min_steps_per_epoch=5,
                        rsl_epochs=1, joint_epochs=1, steps_per_epoch=3, wordpiece_vocabulary_size=300)
    student_dir = pretrain_encoder(data_dir, _config("prectr_v1"), train, tmp_path, verbose=0)
    cached, _ = train_staged(data_dir, _config("prectr_v1"), train, tmp_path / "cached",
                             student_dir=student_dir, verbose=0)
    uncached, _ = train_staged(data_dir, _config("prectr_v1"),
                               dataclasses.replace(train, cache_frozen_encoder=False),
                               tmp_path / "uncached", student_dir=student_dir, verbose=0)
    cache = RelevanceCache.from_dataset(cached, data_dir, splits=("eval",))
    features, _ = next(iter(make_dataset(data_dir, "eval", batch_size=64, shuffle=False)))
    with_cache = cached(cache.attach(tf.data.Dataset.from_tensors((features, {})))
                        .get_single_element()[0], training=False)
    from_text = cached(features, training=False)
    np.testing.assert_allclose(with_cache["score"], from_text["score"], atol=1e-5)
    np.testing.assert_allclose(from_text["score"], uncached(features, training=False)["score"],
                               atol=1e-5)
    for a, b in zip(cached.get_weights(), uncached.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_cli_train_then_evaluate(tiny_dataset, tmp_path, capsys):
    data_dir, _ = tiny_dataset
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(json.dumps({
        "model": {"embedding_dim": 8, "hidden_units": [16], "encoder": SMALL_ENCODER},
        "train": {"batch_size": 128, "encoder_sft_epochs": 1, "encoder_min_steps_per_epoch": 5,
                  "rsl_epochs": 1,
                  "joint_epochs": 1, "wordpiece_vocabulary_size": 300}}))
    out = tmp_path / "run"
    assert main(["train", "--data", str(data_dir), "--preset", "prectr_v1", "--out", str(out),
                 "--config", str(cfg), "--quiet"]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert json.loads((out / "metrics.json").read_text()) == trained
    assert main(["evaluate", "--model", str(out / "model.keras"), "--data", str(data_dir)]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    for key in ("auc", "gauc_user", "ndcg_at_10", "relevance_accuracy"):
        assert evaluated[key] == pytest.approx(trained[key], abs=1e-6)
    assert main(["train", "--data", str(data_dir), "--preset", "nope", "--out",
                 str(tmp_path / "x")]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err
