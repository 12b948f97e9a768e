"""Losses of PRECTR-V2 (DESIGN §4): each term of the objective

    L = BCE(click, P) + λ_rsl·CE(relevance, p) + λ_cons·consistency
        + λ_bal·load-balance + λ_debias·pairwise

as a `keras.losses.Loss` (and the plain function it wraps).
"""

from prectr_tf.losses.consistency_loss import ConsistencyLoss, monotonicity_penalty
from prectr_tf.losses.distillation_loss import (DistillationLoss, distillation_loss,
                                               pack_distillation_targets)
from prectr_tf.losses.fused_click_loss import FusedClickLoss, fused_click_bce
from prectr_tf.losses.load_balance_loss import LoadBalanceLoss, load_balance
from prectr_tf.losses.masked_loss import MaskedLoss, reduce_masked
from prectr_tf.losses.masked_relevance_loss import (
    MaskedRelevanceLoss,
    masked_relevance_cross_entropy,
)
from prectr_tf.losses.pairwise_debias import PairwiseDebiasLoss, truncation_mask

__all__ = [
    "ConsistencyLoss",
    "DistillationLoss",
    "FusedClickLoss",
    "LoadBalanceLoss",
    "MaskedLoss",
    "MaskedRelevanceLoss",
    "PairwiseDebiasLoss",
    "distillation_loss",
    "fused_click_bce",
    "load_balance",
    "masked_relevance_cross_entropy",
    "monotonicity_penalty",
    "pack_distillation_targets",
    "reduce_masked",
    "truncation_mask",
]
