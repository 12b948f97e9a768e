"""Knowledge distillation of the relevance encoder (DESIGN §5).

Per (query, title) pair, with teacher logits z_T, student logits z_S,
temperature T and label y (-1 when the pair has no human label):

    loss = T² · KL(softmax(z_T / T) ‖ softmax(z_S / T)) + α · CE(y, z_S) · 1[y ≥ 0]

so labelled pairs get both terms and unlabelled ones (the log's unlabelled
impressions, the unshown candidates) the KL term alone. T² keeps the KL
gradients on the scale of the CE's as T changes (Hinton et al., 2015).
Without a teacher (`kd_weight=0`) it is plain SFT: α·CE on labelled pairs.
"""

import keras
from keras import ops

from prectr_tf.losses.masked_loss import MaskedLoss, flatten_rows
from prectr_tf.losses.masked_relevance_loss import masked_relevance_cross_entropy


def pack_distillation_targets(labels, teacher_logits):
    """`y_true` of `DistillationLoss`: `[B, 1 + K]` = label, then the K teacher logits.

    Example:
    >>> import numpy as np
    >>> pack_distillation_targets([2, -1], np.zeros((2, 4))).shape
    (2, 5)
    """
    import numpy as np  # noqa: PLC0415

    labels = np.asarray(labels, np.float32).reshape(-1, 1)
    return np.concatenate([labels, np.asarray(teacher_logits, np.float32)], axis=1)


def distillation_loss(labels, teacher_logits, student_logits, temperature=2.0, alpha=1.0,
                      kd_weight=1.0):
    """Per-pair distillation loss (module doc).

    Args:
        labels: `[B]` int levels, -1 unlabelled.
        teacher_logits: `[B, K]` (log-probabilities work as well).
        student_logits: `[B, K]`.
        temperature: T > 0.
        alpha: weight of the CE on labelled pairs.
        kd_weight: weight of the T²·KL term (0: SFT only).

    Returns:
        float `[B]`.

    Example:
    >>> import numpy as np
    >>> z = np.log(np.array([[0.7, 0.2, 0.1]], "float32"))
    >>> float(distillation_loss([-1], z, z)[0])  # student = teacher, unlabelled
    0.0
    """
    student_logits = ops.convert_to_tensor(student_logits)
    teacher_logits = ops.cast(ops.convert_to_tensor(teacher_logits), student_logits.dtype)
    ce, labelled = masked_relevance_cross_entropy(labels, student_logits)
    loss = alpha * ce * ops.cast(labelled, ce.dtype)
    if kd_weight:
        log_q = ops.log_softmax(teacher_logits / temperature, axis=-1)
        log_s = ops.log_softmax(student_logits / temperature, axis=-1)
        kl = ops.sum(ops.exp(log_q) * (log_q - log_s), axis=-1)
        loss = loss + kd_weight * temperature ** 2 * kl
    return loss


@keras.saving.register_keras_serializable(package="prectr_tf")
class DistillationLoss(MaskedLoss):
    """T²·KL(teacher ‖ student) + α·CE on labelled pairs, as a Keras loss.

    Args:
        temperature: T of both softmaxes (default 2.0).
        alpha: weight of the CE term on labelled pairs (default 1.0).
        kd_weight: weight of the KL term (default 1.0; 0 gives plain SFT,
            and the teacher columns of `y_true` are ignored).
        reduction: `"sum_over_batch_size"` (default: the sample-weighted
            mean over all pairs), `"sum"`, `"none"` or
            `"mean_with_sample_weight"`.
        name: default `"distillation_loss"`.

    Call args:
        y_true: `[B, 1 + K]` from `pack_distillation_targets`: the label
            (-1 unlabelled), then the teacher logits.
        y_pred: student logits `[B, K]`.
        sample_weight: optional `[B]`.

    Returns:
        Scalar loss (`[B]` with `reduction="none"`).

    Example:
    >>> import numpy as np
    >>> z = np.log(np.array([[0.7, 0.2, 0.1]], "float32"))
    >>> y = pack_distillation_targets([0], z)
    >>> round(float(DistillationLoss()(y, z)), 4)   # KL 0, CE −log 0.7
    0.3567
    """

    def __init__(self, temperature=2.0, alpha=1.0, kd_weight=1.0,
                 reduction="sum_over_batch_size", name="distillation_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        self.alpha = float(alpha)
        self.kd_weight = float(kd_weight)

    def compute_unreduced_loss(self, y_true, y_pred):
        y_true = ops.convert_to_tensor(y_true)
        y_pred = ops.convert_to_tensor(y_pred)
        k = y_pred.shape[-1]
        y_true = ops.reshape(y_true, (-1, 1 + k))
        losses = distillation_loss(y_true[:, 0], y_true[:, 1:], ops.reshape(y_pred, (-1, k)),
                                   self.temperature, self.alpha, self.kd_weight)
        return losses, ops.ones_like(flatten_rows(y_true[:, 0]), dtype="bool")

    def get_config(self):
        config = super().get_config()
        config.update({"temperature": self.temperature, "alpha": self.alpha,
                       "kd_weight": self.kd_weight})
        return config
