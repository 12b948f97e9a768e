"""Load balance of the incentive's expert gate (DESIGN §4.7).

The incentive gates three experts {+softplus, -softplus, 0}. Without a
balance term the gate can collapse onto one expert for every impression and
the other two stop learning. The term acts on the **batch-mean** gate
m_e = mean_b gate[b, e], so individual impressions may still choose one
expert sharply; only the population is pushed towards using all of them.

Modes:
* `"kl"` (default **[ours]**): KL(m ‖ uniform) = Σ_e m_e log(E · m_e);
  0 when balanced, log E when collapsed.
* `"squared"`: E · Σ_e m_e² (the Switch-Transformer form with the router
  probabilities in both factors); 1 when balanced, E when collapsed.

Pass the gate's softmax probabilities (not the Gumbel-softmax samples) so the
term is deterministic.
"""

import keras
from keras import ops

from prectr_tf.losses.masked_loss import flatten_rows, scale_for_distribution

MODES = ("kl", "squared")


def load_balance(gate_probs, sample_weight=None, mode="kl"):
    """The balance term of a batch of gate probabilities.

    Args:
        gate_probs: `[B, E]` gate probabilities (rows sum to 1).
        sample_weight: optional `[B]` weights of the rows in the batch mean.
        mode: `"kl"` or `"squared"` (see the module docstring).

    Returns:
        Scalar. A batch whose weights are all 0 gives the balanced value
        (0 for `"kl"`, 1 for `"squared"`) and no gradient.

    Example:
    >>> import numpy as np
    >>> round(float(load_balance(np.full((4, 3), 1 / 3, "float32"))), 6)
    0.0
    >>> round(float(load_balance(np.eye(3, dtype="float32")[[0, 0]])), 4)  # log 3
    1.0986
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    gate_probs = ops.convert_to_tensor(gate_probs)
    num_experts = gate_probs.shape[-1]
    gate_probs = ops.reshape(gate_probs, (-1, num_experts))
    if sample_weight is None:
        weights = ops.ones_like(gate_probs[:, 0])
    else:
        weights = ops.ones_like(gate_probs[:, 0]) * flatten_rows(sample_weight, gate_probs.dtype)
    total = ops.sum(weights)
    uniform = ops.ones((num_experts,), gate_probs.dtype) / num_experts
    mean_gate = ops.where(
        ops.greater(total, 0.0),
        ops.sum(gate_probs * weights[:, None], axis=0) / ops.maximum(total, 1e-12),
        uniform)
    if mode == "squared":
        return num_experts * ops.sum(ops.square(mean_gate))
    positive = ops.greater(mean_gate, 0.0)
    safe = ops.where(positive, mean_gate, ops.ones_like(mean_gate))
    return ops.sum(ops.where(positive, mean_gate * ops.log(num_experts * safe), 0.0))


@keras.saving.register_keras_serializable(package="prectr_tf")
class LoadBalanceLoss(keras.losses.Loss):
    """Keeps the expert gate alive: a penalty on the batch-mean gate.

    The value is batch-level, so `reduction` is fixed: `sample_weight`
    weights the rows inside the batch mean instead of the reduction.

    Args:
        mode: `"kl"` (default, KL(mean gate ‖ uniform)) or `"squared"`
            (E · Σ_e mean_gate_e²).
        name: loss name, default `"load_balance_loss"`.
        dtype: computation dtype.

    Call args:
        y_true: ignored (pass `None`).
        y_pred: `[B, E]` gate probabilities.
        sample_weight: optional `[B]` row weights.

    Returns:
        Scalar loss.

    Example:
    >>> import numpy as np
    >>> gate = np.array([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]], "float32")
    >>> round(float(LoadBalanceLoss()(None, gate)), 4)  # log(3/2)
    0.4055
    """

    def __init__(self, mode="kl", name="load_balance_loss", dtype=None, reduction=None):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        super().__init__(name=name, reduction="sum_over_batch_size", dtype=dtype)
        self.mode = mode

    def call(self, y_true, y_pred):
        return load_balance(y_pred, mode=self.mode)

    def __call__(self, y_true, y_pred, sample_weight=None):
        with keras.name_scope(self.name):
            y_pred = ops.convert_to_tensor(y_pred, dtype=self.dtype)
            # Per replica under tf.distribute, scaled like every mean loss.
            return scale_for_distribution(load_balance(y_pred, sample_weight, self.mode))

    def get_config(self):
        config = super().get_config()
        config.update({"mode": self.mode})
        return config
