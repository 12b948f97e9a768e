"""The models of PRECTR-V2 (DESIGN §4): `PRECTRConfig` and its presets,
`PRECTRModel`, the tasks of the objective, staged training, the frozen
encoder's `RelevanceCache` and the DCN-v2 baseline.

Imported lazily (`prectr_tf.models.PRECTRModel` loads its module on first
use), so `import prectr_tf.models` does not wait for TensorFlow.
"""

import importlib

_EXPORTS = {
    "DCNv2Baseline": "dcn",
    "EncoderConfig": "config",
    "PRECTRConfig": "config",
    "PRECTRModel": "prectr_model",
    "RelevanceCache": "relevance_cache",
    "TrainConfig": "training",
    "evaluate": "training",
    "preset": "config",
    "train_staged": "training",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'prectr_tf.models' has no attribute {name!r}")
    return getattr(importlib.import_module(f"prectr_tf.models.{_EXPORTS[name]}"), name)
