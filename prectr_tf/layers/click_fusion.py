"""`ConditionalClickFusion`: P(click) = Σ_k σ(b_k + τ) · p_k, in log space (DESIGN §4.4).

b_k is the click logit given relevance level k, τ the relevance incentive and
p = softmax(z) the predicted relevance distribution. Summing probabilities
underflows for confident logits (σ(−50) ≈ 2e−22 is fine, but log of a sum of
such terms is not), so both log P(click) and log P(no click) are computed as
logsumexp over k of log σ(±(b_k + τ)) + log_softmax(z)_k, which is exact and
finite for any finite logits. The click BCE reads these two directly.
"""

import keras
from keras import ops


def log_sigmoid(x):
    """log σ(x) = −softplus(−x), finite for any finite x."""
    return -ops.softplus(-x)


@keras.saving.register_keras_serializable(package="prectr_tf")
class ConditionalClickFusion(keras.layers.Layer):
    """Fuse per-level click logits with the relevance distribution.

    Args:
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        click_logits: float `[B, K]`, b_k = click logit given relevance level k.
        tau: float `[B, 1]` incentive added to every b_k, or `None` (τ = 0).
        relevance_logits: float `[B, K]`, z with p = softmax(z).

    Returns:
        a dict of float32 `[B, 1]` tensors: `"p_click"` = P(click),
        `"log_p_click"` = log P(click) and `"log_p_no_click"` = log(1 − P(click)).

    Example:
    >>> fusion = ConditionalClickFusion()
    >>> out = fusion(ops.zeros((2, 4)), ops.zeros((2, 1)), ops.zeros((2, 4)))
    >>> [float(v) for v in ops.convert_to_numpy(out["p_click"])[:, 0]]
    [0.5, 0.5]
    """

    def call(self, click_logits, tau, relevance_logits):
        # float32 whatever the dtype policy: the click loss is read from here.
        logits = ops.cast(click_logits, "float32")
        if tau is not None:
            logits = logits + ops.cast(tau, "float32")
        log_p = ops.log_softmax(ops.cast(relevance_logits, "float32"), axis=-1)
        log_p_click = ops.logsumexp(log_sigmoid(logits) + log_p, axis=-1, keepdims=True)
        log_p_no_click = ops.logsumexp(log_sigmoid(-logits) + log_p, axis=-1, keepdims=True)
        return {
            "p_click": ops.exp(log_p_click),
            "log_p_click": log_p_click,
            "log_p_no_click": log_p_no_click,
        }

    def compute_output_spec(self, click_logits, tau, relevance_logits):
        shape = (click_logits.shape[0], 1)
        return {name: keras.KerasTensor(shape, dtype="float32")
                for name in ("p_click", "log_p_click", "log_p_no_click")}
