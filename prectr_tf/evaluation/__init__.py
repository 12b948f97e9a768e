"""Evaluation beyond the logged eval split.

`full_space`: score a model on the simulator's full coarse-ranking candidate
space (shown or not) with noise-free metrics from the true click
probabilities (DESIGN §7–§8); `soft_metrics`: those metrics; `headroom`: the
simulator's reference scorers (ceiling, preference oracles, true level);
`click_terms`: a score decomposed onto the simulator's click-model terms.
"""

from prectr_tf.evaluation.click_terms import BLIND_SCORERS, click_terms, score_decomposition
from prectr_tf.evaluation.full_space import (FullSpace, evaluate_full_space, full_space_examples,
                                             score_candidates)
from prectr_tf.evaluation.headroom import REFERENCE_SCORERS, reference_metrics, reference_space
from prectr_tf.evaluation.soft_metrics import full_space_metrics, soft_group_auc
from prectr_tf.metrics.predictions import ndcg_per_list

__all__ = ["BLIND_SCORERS", "REFERENCE_SCORERS", "FullSpace", "click_terms", "evaluate_full_space",
           "full_space_examples", "full_space_metrics", "ndcg_per_list", "reference_metrics",
           "reference_space", "score_candidates", "score_decomposition", "soft_group_auc"]
