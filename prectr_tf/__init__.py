"""prectr_tf: PRECTR-V2 search relevance + CTR ranking in TensorFlow/Keras.

What a user types is importable from here (loaded on first use, so that
`import prectr_tf` and `prectr --help` do not wait for TensorFlow):

>>> import prectr_tf
>>> prectr_tf.preset("prectr_v1").encoder_mode
'frozen'
"""

from prectr_tf._lazy import lazy_getattr

_EXPORTS = {
    # data
    "DataSchema": "prectr_tf.data.schema",
    "BuildConfig": "prectr_tf.data.build",
    "build_dataset": "prectr_tf.data.build",
    "make_dataset": "prectr_tf.data.pipeline",
    "SimulatorConfig": "prectr_tf.data.simulator",
    "simulate": "prectr_tf.data.simulator",
    "read_dataset": "prectr_tf.data.readers",
    # model and training
    "PRECTRConfig": "prectr_tf.models.config",
    "EncoderConfig": "prectr_tf.models.config",
    "preset": "prectr_tf.models.config",
    "PRECTRModel": "prectr_tf.models.prectr_model",
    "DCNv2Baseline": "prectr_tf.models.dcn",
    "RelevanceCache": "prectr_tf.models.relevance_cache",
    "TrainConfig": "prectr_tf.models.training",
    "train_staged": "prectr_tf.models.training",
    "evaluate": "prectr_tf.models.training",
    # distillation
    "SimulatedJudge": "prectr_tf.distill",
    "StudentConfig": "prectr_tf.distill",
    "distill_encoder": "prectr_tf.distill",
    "teacher_pairs": "prectr_tf.distill",
    "train_student": "prectr_tf.distill",
    "load_student": "prectr_tf.distill",
    "read_teacher_logits": "prectr_tf.distill",
    "write_teacher_logits": "prectr_tf.distill",
    # evaluation
    "evaluate_full_space": "prectr_tf.evaluation",
    # serving
    "export_model": "prectr_tf.serving",
    "RankingRequest": "prectr_tf.serving",
}
_SUBPACKAGES = ("data", "layers", "losses", "metrics", "models", "distill", "evaluation",
                "serving")

__all__ = sorted(_EXPORTS) + list(_SUBPACKAGES)


__getattr__ = lazy_getattr(__name__, _EXPORTS, _SUBPACKAGES)
