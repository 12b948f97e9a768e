"""The exposure-bias corrections behind `PRECTRConfig.debias` (issue 10)."""

import dataclasses

import numpy as np
import pytest

from prectr_tf.config import dataclass_from_dict
from prectr_tf.losses.pairwise_debias import PairwiseDebiasLoss
from prectr_tf.models.config import DEBIAS_VARIANTS, PRECTRConfig, preset
from prectr_tf.models.tasks import DebiasTask, make_tasks


def _batch(seed=0, size=64, k=4):
    rng = np.random.default_rng(seed)
    labels = {"click": rng.integers(0, 2, size), "relevance": rng.integers(-1, k, size)}
    predictions = {
        "log_p_click": np.log(rng.uniform(0.05, 0.95, size)).astype("float32"),
        "negative_log_p_click": np.log(rng.uniform(0.05, 0.95, size)).astype("float32"),
        "negative_relevance_logits": rng.normal(0, 1, (size, k)).astype("float32"),
    }
    return labels, predictions


def _log_softmax(x):
    x = x - x.max(axis=1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


def test_pairwise_only_is_the_pair_loss_and_noise_r_adds_level_0_cross_entropy():
    labels, predictions = _batch()
    anchors = (labels["click"] == 1) & (labels["relevance"] >= 2)
    assert 0 < anchors.sum() < len(anchors)
    pair = float(PairwiseDebiasLoss(margin=0.1, keep_fraction=0.5, reduction="mean")(
        anchors, {"anchor": predictions["log_p_click"],
                  "negative": predictions["negative_log_p_click"]}))
    # The twin of every anchor is called level 0: mean −log p_0 over anchors.
    fake_ce = float(-_log_softmax(predictions["negative_relevance_logits"])[anchors, 0].mean())
    tasks = {variant: next(t for t in make_tasks(preset("prectr_v2", debias=variant))
                           if isinstance(t, DebiasTask))
             for variant in ("noise_r", "noise_r_pairwise_only")}
    got = {v: float(t.loss(labels, predictions, None, None, True)) for v, t in tasks.items()}
    assert got["noise_r_pairwise_only"] == pytest.approx(pair, rel=1e-5)
    assert got["noise_r"] == pytest.approx(pair + fake_ce, rel=1e-5)
    assert fake_ce > 0.1  # the two variants really differ


def test_no_debias_task_without_a_variant_and_none_at_evaluation():
    assert not any(isinstance(t, DebiasTask) for t in make_tasks(preset("v2_no_debias")))
    labels, predictions = _batch()
    del predictions["negative_log_p_click"]  # evaluation builds no twins
    task = DebiasTask(4, 1.0, 0.1, 0.5, fake_relevance_loss=False)
    assert float(task.loss(labels, predictions, None, None, False)) == 0.0


def test_the_switch_is_validated_and_round_trips():
    assert preset("prectr_v2").debias == "noise_r" and preset("prectr_v2").use_debias
    for name in ("dnn", "prectr_v1", "v2_no_debias"):
        assert preset(name).debias == "none" and not preset(name).use_debias
    with pytest.raises(ValueError, match="debias must be one of"):
        PRECTRConfig(debias="noise")
    with pytest.raises(ValueError, match="encoder_mode='none'"):
        dataclasses.replace(preset("dnn"), debias="noise_r_pairwise_only")
    for variant in DEBIAS_VARIANTS:
        config = preset("prectr_v2", debias=variant)
        assert dataclass_from_dict(PRECTRConfig, dataclasses.asdict(config), "t") == config
