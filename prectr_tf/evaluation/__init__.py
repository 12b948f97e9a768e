"""Evaluation beyond the logged eval split.

`full_space`: score a model on the simulator's full coarse-ranking candidate
space (shown or not) with noise-free metrics from the true click
probabilities (DESIGN §7–§8); `soft_metrics`: those metrics.
"""

from prectr_tf.evaluation.full_space import (FullSpace, evaluate_full_space, full_space_examples,
                                             score_candidates)
from prectr_tf.evaluation.soft_metrics import full_space_metrics, soft_group_auc
from prectr_tf.metrics.predictions import ndcg_per_list

__all__ = ["FullSpace", "evaluate_full_space", "full_space_examples", "full_space_metrics",
           "ndcg_per_list", "score_candidates", "soft_group_auc"]
