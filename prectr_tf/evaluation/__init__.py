"""Evaluation beyond the logged eval split.

`full_space`: score a model on the simulator's full coarse-ranking candidate
space (shown or not) with noise-free metrics from the true click
probabilities (DESIGN §7–§8); `soft_metrics`: those metrics; `headroom`: the
simulator's reference scorers (ceiling, preference oracles, true level).
"""

from prectr_tf.evaluation.full_space import (FullSpace, evaluate_full_space, full_space_examples,
                                             score_candidates)
from prectr_tf.evaluation.headroom import REFERENCE_SCORERS, reference_metrics, reference_space
from prectr_tf.evaluation.soft_metrics import full_space_metrics, soft_group_auc
from prectr_tf.metrics.predictions import ndcg_per_list

__all__ = ["REFERENCE_SCORERS", "FullSpace", "evaluate_full_space", "full_space_examples",
           "full_space_metrics", "ndcg_per_list", "reference_metrics", "reference_space",
           "score_candidates", "soft_group_auc"]
