"""Stage 1 shared between presets: every preset trained from the same
student, data and settings ends stage 1 with the same head, so a run that
takes another preset's stage 1 is where its own stage 1 would have left it;
a stage 1 trained from something else is refused."""

import dataclasses
import json

import numpy as np
import pytest

from prectr_tf.models.config import EncoderConfig, preset
from prectr_tf.models.relevance_stage import FILE
from prectr_tf.models.training import STAGES, TrainConfig, pretrain_encoder, train_staged

SMALL_ENCODER = dict(max_length=16, num_layers=2, hidden_dim=16, num_heads=2, intermediate_dim=32)
TRAIN = TrainConfig(batch_size=128, encoder_sft_epochs=1, encoder_min_steps_per_epoch=5,
                    rsl_epochs=3, joint_epochs=0, stage_validation_fraction=0.2,
                    stage_patience=1, wordpiece_vocabulary_size=300)


def _config(name, **overrides):
    return preset(name, embedding_dim=8, hidden_units=(16,),
                  encoder=EncoderConfig(**SMALL_ENCODER), **overrides)


def _head(out_dir):
    with np.load(out_dir / f"{FILE}.npz") as weights:
        return [weights[f"arr_{i}"] for i in range(len(weights.files))]


@pytest.fixture(scope="module")
def student(tiny_dataset, tmp_path_factory):
    data_dir, _ = tiny_dataset
    out = tmp_path_factory.mktemp("stage0")
    return pretrain_encoder(data_dir, _config("prectr_v1"), TRAIN, out, verbose=0)


def test_a_shared_stage1_leaves_the_model_where_its_own_would(tiny_dataset, student, tmp_path):
    data_dir, _ = tiny_dataset
    train_staged(data_dir, _config("prectr_v1"), TRAIN, tmp_path / "v1", student_dir=student,
                 verbose=0)
    own, own_history = train_staged(data_dir, _config("prectr_v2"), TRAIN, tmp_path / "v2",
                                    student_dir=student, verbose=0)
    shared, shared_history = train_staged(data_dir, _config("prectr_v2"), TRAIN,
                                          tmp_path / "v2_shared", student_dir=student,
                                          verbose=0, relevance_stage_from=tmp_path / "v1")
    # The property sharing rests on: v1's stage 1 and V2's own end alike,
    # although V2's forward pass also runs the aggregator, the twins, ...
    v1_head, v2_head = _head(tmp_path / "v1"), _head(tmp_path / "v2")
    for a, b in zip(v1_head, v2_head):
        np.testing.assert_allclose(a, b, atol=1e-6)
    # ... and the run that took v1's stage 1 holds, layer by layer, what its
    # own stage 1 gave the other run (the head moved; nothing else did).
    for a, b in zip(own.get_weights(), shared.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert shared_history[STAGES[1]] == json.loads(
        (tmp_path / "v1" / f"{FILE}.json").read_text())["history"]
    assert shared_history[STAGES[1]]["loss"] == pytest.approx(own_history[STAGES[1]]["loss"],
                                                               abs=1e-6)
    # the run that shared it can hand it on in turn
    for a, b in zip(_head(tmp_path / "v2_shared"), v1_head):
        np.testing.assert_array_equal(a, b)


def test_a_stage1_from_other_settings_or_none_is_refused(tiny_dataset, student, tmp_path):
    data_dir, _ = tiny_dataset
    train_staged(data_dir, _config("prectr_v1"), TRAIN, tmp_path / "v1", student_dir=student,
                 verbose=0)
    other = dataclasses.replace(TRAIN, rsl_epochs=2)
    with pytest.raises(ValueError, match=r"rsl_epochs=2"):
        train_staged(data_dir, _config("prectr_v2"), other, tmp_path / "v2", student_dir=student,
                     verbose=0, relevance_stage_from=tmp_path / "v1")
    with pytest.raises(FileNotFoundError, match="no finished stage 1"):
        train_staged(data_dir, _config("prectr_v2"), TRAIN, tmp_path / "v2b",
                     student_dir=student, verbose=0, relevance_stage_from=tmp_path / "missing")
    # with id features the head reads the preset's own embeddings
    with pytest.raises(ValueError, match="relevance_id_features"):
        train_staged(data_dir, _config("prectr_v2", relevance_id_features=True), TRAIN,
                     tmp_path / "v2c", student_dir=student, verbose=0,
                     relevance_stage_from=tmp_path / "v1")
    # nothing was written for a refused stage
    assert not (tmp_path / "v2" / f"{STAGES[1]}.weights.h5").exists()
