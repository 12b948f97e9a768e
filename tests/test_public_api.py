"""The public API: every name `prectr_tf` and `prectr_tf.layers` list is
importable from the top level and is the object of its home module."""

import importlib

import pytest

import prectr_tf
import prectr_tf.layers
import prectr_tf.models


@pytest.mark.parametrize("package", [prectr_tf, prectr_tf.layers, prectr_tf.models])
def test_every_listed_name_resolves_to_its_home_object(package):
    assert set(package._EXPORTS) <= set(package.__all__)
    for name, home in package._EXPORTS.items():
        module = home if home.startswith("prectr_tf") else f"{package.__name__}.{home}"
        assert getattr(package, name) is getattr(importlib.import_module(module), name)


def test_unknown_names_fail_clearly():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        prectr_tf.nope  # noqa: B018
    with pytest.raises(AttributeError, match="prectr_tf.layers"):
        prectr_tf.layers.Nope  # noqa: B018


def test_top_level_names_work():
    assert prectr_tf.preset("prectr_v1").encoder_mode == "frozen"
    assert prectr_tf.PRECTRModel.__name__ == "PRECTRModel"
    assert prectr_tf.layers.GlobalPreferenceAggregator.__module__ == \
        "prectr_tf.layers.global_preference"
    # the names a user types, in the manner of keras-rs
    assert prectr_tf.export_model is prectr_tf.serving.export_model
    assert prectr_tf.losses.DistillationLoss.__name__ == "DistillationLoss"
    assert prectr_tf.metrics.evaluate_predictions.__module__ == "prectr_tf.metrics.predictions"
    assert prectr_tf.models.train_staged is prectr_tf.train_staged
