"""The models of PRECTR-V2 (DESIGN §4): `PRECTRConfig` and its presets,
`PRECTRModel`, the tasks of the objective, staged training, the frozen
encoder's `RelevanceCache` and the DCN-v2 baseline.

Imported lazily (`prectr_tf.models.PRECTRModel` loads its module on first
use), so `import prectr_tf.models` does not wait for TensorFlow.
"""

from prectr_tf._lazy import lazy_getattr

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


__getattr__ = lazy_getattr(__name__, _EXPORTS)
