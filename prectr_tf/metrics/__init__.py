"""Metrics of PRECTR-V2 (DESIGN §8).

Every metric takes `(y_true, y_pred, sample_weight)`, with `y_true` a labels
tensor or a dict of row-aligned columns: `"labels"` plus the side columns a
metric reads (`"user_id"`, `"query_id"`, `"request_id"`,
`"user_event_count"`). Labels of -1 are missing and leave every metric.

Streaming, constant memory, XLA-safe (training logs): `masked_auc`,
`log_loss`, `relevance_accuracy`, `RelevanceMacroF1`, `MaskedMetric`.
Exact, accumulating, evaluation-only (no XLA: `supports_jit` is False, so
evaluate them with `jit_compile=False` — Keras' "auto" turns XLA on whenever
a GPU is visible): `GroupAUC` (`exact_auc`), `ListwiseMetric` (`ndcg`, `mrr`). `SlicedMetric` wraps any of them per
activity bucket. `evaluate_predictions` is the numpy reference/evaluator.

Example (a task's evaluation metrics):
>>> metrics = [masked_auc(), log_loss(),
...            GroupAUC("user_id", name="gauc_user"), GroupAUC("query_id", name="gauc_query"),
...            ndcg(k=10), mrr(), SlicedMetric(GroupAUC("user_id", name="gauc_user"))]
>>> [m.name for m in metrics]  # doctest: +NORMALIZE_WHITESPACE
['auc', 'log_loss', 'gauc_user', 'gauc_query', 'ndcg_at_10', 'mrr',
 'gauc_user_by_activity']
"""

from prectr_tf.metrics.auc import exact_auc, masked_auc
from prectr_tf.metrics.classification import RelevanceMacroF1, log_loss, relevance_accuracy
from prectr_tf.metrics.gauc import GroupAUC, grouped_auc
from prectr_tf.metrics.grouping import group_index, pad_lists
from prectr_tf.metrics.masked import MaskedMetric, masked_labels, split_y_true
from prectr_tf.metrics.ranking import ListwiseMetric, mrr, ndcg
from prectr_tf.metrics.reference import evaluate_predictions, rela_impr
from prectr_tf.metrics.sliced import SlicedMetric, activity_bucket_tensor

__all__ = [
    "GroupAUC",
    "ListwiseMetric",
    "MaskedMetric",
    "RelevanceMacroF1",
    "SlicedMetric",
    "activity_bucket_tensor",
    "evaluate_predictions",
    "exact_auc",
    "group_index",
    "grouped_auc",
    "log_loss",
    "masked_auc",
    "masked_labels",
    "mrr",
    "ndcg",
    "pad_lists",
    "rela_impr",
    "relevance_accuracy",
    "split_y_true",
]
