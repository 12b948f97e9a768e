"""Tasks: each owns one term of the objective and the metrics that judge it.

This is TFRS's design (`tfrs.tasks.Ranking`) in Keras 3: `PRECTRModel.
compute_loss` only asks every task for its weighted term and adds them up
(DESIGN §2 says why not `tfrs.Model`). Each task also logs its own loss as a
metric, so every term of the objective is visible in `fit`'s progress bar.

Metrics come in two sets: cheap streaming ones updated on every train and
eval step, and exact, grouped ones (GAUC by user and query, NDCG@10, MRR,
activity slices) updated only by `evaluate`.
"""

import keras
from keras import ops

from prectr_tf.layers.hard_negative import hard_negative_anchor_mask
from prectr_tf.losses import (ConsistencyLoss, FusedClickLoss, LoadBalanceLoss,
                              MaskedRelevanceLoss, PairwiseDebiasLoss)
from prectr_tf.metrics import (GroupAUC, RelevanceMacroF1, SlicedMetric, log_loss, masked_auc,
                               mrr, ndcg, relevance_accuracy)

# Side columns the grouped metrics read from the features.
SIDE_COLUMNS = ("user_id", "query_id", "request_id", "user_event_count")


class Task:
    """One weighted term of the objective with its metrics.

    Args:
        name: the term's name; its loss is logged as `<name>_loss`.
        weight: λ of the term.
    """

    def __init__(self, name, weight=1.0):
        self.name = name
        # `weight` is what the objective uses now; staged training zeroes it
        # for a stage and restores `full_weight` after.
        self.weight = self.full_weight = float(weight)
        self.loss_tracker = keras.metrics.Mean(name=f"{name}_loss")
        self.train_metrics = []
        self.eval_metrics = []

    def loss(self, labels, predictions, features, training):
        raise NotImplementedError

    def weighted_loss(self, labels, predictions, features, training):
        value = self.loss(labels, predictions, features, training)
        self.loss_tracker.update_state(value)
        return self.weight * value

    def update_metrics(self, labels, predictions, features, evaluating):
        pass

    @property
    def metrics(self):
        return [self.loss_tracker] + self.train_metrics + self.eval_metrics


def _side(labels, features):
    return {"labels": labels, **{k: features[k] for k in SIDE_COLUMNS if k in features}}


class ClickTask(Task):
    """Fused click BCE (log space, unknown clicks masked); AUC and log loss
    while training; GAUC by user and query, NDCG@10, MRR and GAUC by
    activity bucket at evaluation."""

    def __init__(self, weight=1.0):
        super().__init__("click", weight)
        self.loss_fn = FusedClickLoss()
        self.train_metrics = [masked_auc(name="auc"), log_loss(name="log_loss")]
        self.eval_metrics = [
            GroupAUC(group_key="user_id", name="gauc_user"),
            GroupAUC(group_key="query_id", name="gauc_query"),
            ndcg(k=10, list_key="request_id", name="ndcg_at_10"),
            mrr(list_key="request_id", name="mrr"),
            SlicedMetric(GroupAUC(group_key="user_id", name="gauc_user")),
        ]

    def loss(self, labels, predictions, features, training):
        return self.loss_fn(labels["click"], predictions)

    def update_metrics(self, labels, predictions, features, evaluating):
        y = _side(labels["click"], features)
        for metric in self.train_metrics + (self.eval_metrics if evaluating else []):
            metric.update_state(y, predictions["score"])


class RelevanceTask(Task):
    """Masked K-way relevance cross-entropy; accuracy, and macro-F1 at
    evaluation."""

    def __init__(self, num_levels, weight=1.0):
        super().__init__("relevance", weight)
        self.loss_fn = MaskedRelevanceLoss()
        self.train_metrics = [relevance_accuracy(name="relevance_accuracy")]
        self.eval_metrics = [RelevanceMacroF1(num_levels=num_levels, name="relevance_macro_f1")]

    def loss(self, labels, predictions, features, training):
        return self.loss_fn(labels["relevance"], predictions["relevance_logits"])

    def update_metrics(self, labels, predictions, features, evaluating):
        for metric in self.train_metrics + (self.eval_metrics if evaluating else []):
            metric.update_state(labels["relevance"], predictions["relevance_logits"])


class ConsistencyTask(Task):
    """Monotonicity of the click logits over relevance levels (DESIGN §4.9)."""

    def __init__(self, weight):
        super().__init__("consistency", weight)
        self.loss_fn = ConsistencyLoss()

    def loss(self, labels, predictions, features, training):
        return self.loss_fn(None, predictions["click_logits"])


class LoadBalanceTask(Task):
    """Keeps the incentive's expert gate alive (deterministic gate probs)."""

    def __init__(self, weight):
        super().__init__("load_balance", weight)
        self.loss_fn = LoadBalanceLoss()

    def loss(self, labels, predictions, features, training):
        return self.loss_fn(None, predictions["gate_probs"])


class DebiasTask(Task):
    """Exposure-bias correction (DESIGN §4.8): for anchors (clicked,
    relevance >= K-2) the noisy twin x̃ must score a margin below x, and its
    relevance head must call it irrelevant (fake_rsl = 0). Training only: at
    evaluation the model produces no hard negatives and the term is 0."""

    def __init__(self, num_levels, weight, margin, keep_fraction):
        super().__init__("debias", weight)
        self.num_levels = num_levels
        self.pair_loss = PairwiseDebiasLoss(margin=margin, keep_fraction=keep_fraction)
        self.fake_relevance_loss = MaskedRelevanceLoss()

    def loss(self, labels, predictions, features, training):
        if "negative_log_p_click" not in predictions:
            return ops.zeros(())
        anchors = hard_negative_anchor_mask(labels["click"], labels["relevance"],
                                            num_levels=self.num_levels)
        pairs = self.pair_loss(anchors, {"anchor": predictions["log_p_click"],
                                         "negative": predictions["negative_log_p_click"]})
        fake = ops.where(anchors, ops.zeros_like(labels["relevance"]),
                         -ops.ones_like(labels["relevance"]))
        return pairs + self.fake_relevance_loss(fake, predictions["negative_relevance_logits"])


def make_tasks(config):
    """The tasks a `PRECTRConfig` switches on, in objective order."""
    k = config.num_relevance_levels
    tasks = [ClickTask()]
    if config.uses_text:
        tasks.append(RelevanceTask(k, config.rsl_weight))
    if config.use_consistency:
        tasks.append(ConsistencyTask(config.consistency_weight))
    if config.use_incentive:
        tasks.append(LoadBalanceTask(config.load_balance_weight))
    if config.use_debias:
        tasks.append(DebiasTask(k, config.debias_weight, config.debias_margin,
                                config.debias_keep_fraction))
    return tasks
