"""Tasks: each owns one term of the objective and the metrics that judge it.

This is TFRS's design (`tfrs.tasks.Ranking`) in Keras 3: a task takes its loss
and its metrics as arguments (today's as defaults) and passes `sample_weight`
to both; `PRECTRModel.compute_loss` only asks every task for its weighted term
and adds them up (DESIGN §2 says why not `tfrs.Model`). Each task also logs
its own loss as a metric, so every term of the objective is visible in
`fit`'s progress bar.

The metrics here are streaming (constant memory, summed state, XLA-safe) and
are updated on every train and test step. The exact grouped ones (GAUC by user
and query, NDCG@10, MRR, by activity bucket) are not tasks' metrics: they are
computed once per `evaluate` from the collected predictions
(`prectr_tf.models.evaluation_rows`).

The default losses reduce with `"mean_with_sample_weight"` (weighted sum over
the summed weights of the unmasked rows), so a weight says how much a row
counts relative to the others: weight 2 equals the row twice.
"""

import keras
from keras import ops

from prectr_tf.layers.hard_negative import hard_negative_anchor_mask
from prectr_tf.losses import (ConsistencyLoss, FusedClickLoss, LoadBalanceLoss,
                              MaskedRelevanceLoss, PairwiseDebiasLoss)
from prectr_tf.losses.masked_loss import track_loss
from prectr_tf.metrics import RelevanceMacroF1, log_loss, masked_auc, relevance_accuracy

WEIGHTED_MEAN = "mean_with_sample_weight"


class Task:
    """One weighted term of the objective with its metrics.

    Args:
        name: the term's name; its loss is logged as `<name>_loss`.
        weight: λ of the term.
        metrics: streaming Keras metrics updated on every step (default none).
    """

    def __init__(self, name, weight=1.0, metrics=None):
        self.name = name
        # `weight` is what the objective uses now; staged training zeroes it
        # for a stage and restores `full_weight` after.
        self.weight = self.full_weight = float(weight)
        self.loss_tracker = keras.metrics.Mean(name=f"{name}_loss")
        self.task_metrics = list(metrics or [])

    def loss(self, labels, predictions, features, sample_weight, training):
        raise NotImplementedError

    def weighted_loss(self, labels, predictions, features, sample_weight=None, training=True):
        value = self.loss(labels, predictions, features, sample_weight, training)
        track_loss(self.loss_tracker, value, ops.shape(predictions["score"])[0])
        return self.weight * value

    def update_metrics(self, labels, predictions, features, sample_weight=None):
        pass

    @property
    def metrics(self):
        return [self.loss_tracker] + self.task_metrics


class ClickTask(Task):
    """The click term: fused click BCE in log space, unknown clicks masked.

    Args:
        weight: λ (1).
        loss: a loss of `(clicks [B], predictions dict, sample_weight)`
            (default `FusedClickLoss`, weighted mean).
        metrics: streaming metrics of `(clicks, score [B], sample_weight)`
            (default AUC and log loss).
    """

    def __init__(self, weight=1.0, loss=None, metrics=None):
        super().__init__("click", weight, metrics if metrics is not None else
                         [masked_auc(name="auc"), log_loss(name="log_loss")])
        self.loss_fn = loss or FusedClickLoss(reduction=WEIGHTED_MEAN)

    def loss(self, labels, predictions, features, sample_weight, training):
        return self.loss_fn(labels["click"], predictions, sample_weight=sample_weight)

    def update_metrics(self, labels, predictions, features, sample_weight=None):
        for metric in self.task_metrics:
            metric.update_state(labels["click"], predictions["score"], sample_weight=sample_weight)


class RelevanceTask(Task):
    """The relevance term: masked K-way cross-entropy.

    Args:
        num_levels: K.
        weight: λ_rsl (1).
        loss: a loss of `(levels [B], logits [B, K], sample_weight)` (default
            `MaskedRelevanceLoss`, weighted mean).
        metrics: streaming metrics of `(levels, logits, sample_weight)`
            (default accuracy and macro-F1).
    """

    def __init__(self, num_levels, weight=1.0, loss=None, metrics=None):
        super().__init__("relevance", weight, metrics if metrics is not None else [
            relevance_accuracy(name="relevance_accuracy"),
            RelevanceMacroF1(num_levels=num_levels, name="relevance_macro_f1")])
        self.loss_fn = loss or MaskedRelevanceLoss(reduction=WEIGHTED_MEAN)

    def loss(self, labels, predictions, features, sample_weight, training):
        return self.loss_fn(labels["relevance"], predictions["relevance_logits"],
                            sample_weight=sample_weight)

    def update_metrics(self, labels, predictions, features, sample_weight=None):
        for metric in self.task_metrics:
            metric.update_state(labels["relevance"], predictions["relevance_logits"],
                                sample_weight=sample_weight)


class ConsistencyTask(Task):
    """Monotonicity of the click logits over relevance levels (DESIGN §4.9).

    Args:
        weight: λ_cons.
        loss: default `ConsistencyLoss` (weighted mean over rows).
    """

    def __init__(self, weight, loss=None):
        super().__init__("consistency", weight)
        self.loss_fn = loss or ConsistencyLoss(reduction=WEIGHTED_MEAN)

    def loss(self, labels, predictions, features, sample_weight, training):
        return self.loss_fn(None, predictions["click_logits"], sample_weight=sample_weight)


class LoadBalanceTask(Task):
    """Keeps the incentive's expert gate alive (deterministic gate probs).

    Args:
        weight: λ_bal.
        loss: default `LoadBalanceLoss` (rows weighted in the batch mean).
    """

    def __init__(self, weight, loss=None):
        super().__init__("load_balance", weight)
        self.loss_fn = loss or LoadBalanceLoss()

    def loss(self, labels, predictions, features, sample_weight, training):
        return self.loss_fn(None, predictions["gate_probs"], sample_weight=sample_weight)


TWIN_LABELS = ("lowest", "relevance_head", "teacher")


def debias_anchor_mask(labels, features, num_levels, teacher_negatives=False):
    """The rows that get a hard negative in training, bool `[B]`: clicked
    and relevance >= K-2 (`hard_negative_anchor_mask`); with
    `teacher_negatives` (`unexposed`), also a negative whose teacher level
    (`negative_relevance`) is below the anchor's."""
    anchors = hard_negative_anchor_mask(labels["click"], labels["relevance"],
                                        num_levels=num_levels)
    if not teacher_negatives:
        return anchors
    negative = ops.reshape(features["negative_relevance"], (-1,))
    level = ops.reshape(labels["relevance"], (-1,))
    return ops.logical_and(anchors, ops.logical_and(ops.greater_equal(negative, 0),
                                                    ops.less(negative, level)))


class DebiasTask(Task):
    """Exposure-bias correction (DESIGN §4.8): for anchors (clicked,
    relevance >= K-2) the hard negative x̃ must score a margin below x and,
    with a `fake_relevance_loss`, its relevance head must predict the
    negative's reconstructed label. Training only: at evaluation the model
    produces no hard negatives and the term is 0.

    Args:
        num_levels: int, K.
        weight: float, λ_debias.
        margin: float, m of the default pairwise loss.
        keep_fraction: float, hardest share of pairs the default keeps.
        pair_loss: the loss ordering anchor over negative (default
            `PairwiseDebiasLoss(margin, keep_fraction)`).
        fake_relevance_loss: the loss on the negative's relevance logits
            against its label (default `MaskedRelevanceLoss`); `False` leaves
            the negative's relevance unlabelled (`noise_r_pairwise_only`,
            `noise_title_embedding`).
        twin_label: str, one of `TWIN_LABELS` (default `"lowest"`): the
            negative's label is level 0 for every anchor (`noise_r`); the
            relevance head's own argmax on it, no gradient, and only anchors
            whose negative it places below the anchor's level form a pair
            (`"relevance_head"`, `noise_title_embedding`); or the teacher's
            level in the `negative_relevance` feature (`"teacher"`,
            `unexposed`; `debias_anchor_mask` already keeps only negatives
            below the anchor's level).
    """

    def __init__(self, num_levels, weight, margin, keep_fraction, pair_loss=None,
                 fake_relevance_loss=None, twin_label="lowest"):
        super().__init__("debias", weight)
        if twin_label not in TWIN_LABELS:
            raise ValueError(f"twin_label must be one of {TWIN_LABELS}, got {twin_label!r}")
        self.num_levels = num_levels
        self.twin_label = twin_label
        self.pair_loss = pair_loss or PairwiseDebiasLoss(
            margin=margin, keep_fraction=keep_fraction, reduction=WEIGHTED_MEAN)
        self.fake_relevance_loss = (None if fake_relevance_loss is False else
                                    fake_relevance_loss or MaskedRelevanceLoss(
                                        reduction=WEIGHTED_MEAN))

    def loss(self, labels, predictions, features, sample_weight, training):
        if "negative_log_p_click" not in predictions:
            return ops.zeros(())
        anchors = debias_anchor_mask(labels, features, self.num_levels,
                                     teacher_negatives=self.twin_label == "teacher")
        if self.twin_label == "relevance_head":
            twin_level = ops.argmax(ops.stop_gradient(predictions["negative_relevance_logits"]),
                                    axis=-1)
            anchor_level = ops.reshape(labels["relevance"], (-1,))
            anchors = ops.logical_and(anchors, ops.less(ops.cast(twin_level, "int32"),
                                                        ops.cast(anchor_level, "int32")))
        pairs = self.pair_loss(anchors, {"anchor": predictions["log_p_click"],
                                         "negative": predictions["negative_log_p_click"]},
                               sample_weight=sample_weight)
        if self.fake_relevance_loss is None:
            return pairs
        level = (ops.reshape(features["negative_relevance"], ops.shape(labels["relevance"]))
                 if self.twin_label == "teacher" else ops.zeros_like(labels["relevance"]))
        fake = ops.where(anchors, ops.cast(level, labels["relevance"].dtype),
                         -ops.ones_like(labels["relevance"]))
        return pairs + self.fake_relevance_loss(fake, predictions["negative_relevance_logits"],
                                                sample_weight=sample_weight)


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
        tasks.append(DebiasTask(
            k, config.debias_weight, config.debias_margin, config.debias_keep_fraction,
            fake_relevance_loss=(None if config.debias in ("noise_r", "unexposed")
                                 else False),
            twin_label={"noise_title_embedding": "relevance_head",
                        "unexposed": "teacher"}.get(config.debias, "lowest")))
    return tasks
