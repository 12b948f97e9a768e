"""Noise-free ranking metrics on the full candidate space (DESIGN §8).

Every row is one candidate with a known click probability (p_i: the true click
probability of candidate i if examined at position 0; s_i: the model's score).
`prectr_tf.evaluation.full_space` builds and scores the rows.

* `auc`: expected AUC under Bernoulli clicks — each candidate counts as a
  positive with weight p_i and as a negative with weight 1 − p_i, pairs of a
  candidate with itself excluded (it cannot be both):

      AUC = Σ_{i≠j} p_i (1 − p_j) (1[s_i > s_j] + ½ 1[s_i = s_j])
            / Σ_{i≠j} p_i (1 − p_j),

  i.e. E[correctly ordered (click, no-click) pairs] / E[(click, no-click)
  pairs] over all rows. A constant scorer gets 0.5; scoring by p itself
  maximises it (swapping any pair ordered against p lowers the numerator);
  scoring by −p minimises it, at 1 − oracle.
* `gauc_user`, `gauc_query`: the same AUC within each user (all candidates of
  the user's requests in the split) or each query, averaged with weights n_g =
  the group's number of candidate rows, over groups where it is defined
  (Σ_{i≠j} p_i (1 − p_j) > 0). This is DESIGN §8's impression-weighted GAUC
  with "impressions" = candidate rows.
* `ndcg_at_10`: NDCG@10 per request over its full candidate list with linear
  gain p_i and discount 1/log2(rank + 1) (rank 1-based), averaged over
  requests; the ideal ranking sorts by p, so the oracle scores exactly 1.
* `ndcg_at_10_relevance`: the same with gain 2^level − 1 of the true
  relevance level (`prectr_tf.metrics.predictions.ndcg_at_k`'s convention), over requests with
  a candidate above level 0.
* tied scores get the expected NDCG over their orders
  (`prectr_tf.metrics.predictions.ndcg_per_list`, sklearn's convention).
* `auc_unshown`: `auc` over the candidates the logging policy did not show in
  their request — the part of the space the logged eval never sees.
* every metric also per activity bucket (`prectr_tf.data.activity`: cold / low
  / high by `user_event_count`, the user's impressions before the request) as
  `<metric>/<bucket>`; a GAUC slice groups the bucket's rows by user / query.
"""

import numpy as np

from prectr_tf.data.activity import ACTIVITY_BUCKETS
from prectr_tf.metrics.predictions import mean_of_defined, ndcg_per_list


def _codes(groups, n):
    if groups is None:
        return np.zeros(n, np.int64)
    return np.unique(np.asarray(groups).ravel(), return_inverse=True)[1].ravel()


def soft_group_auc(click_prob, scores, groups=None, exclude_self_pairs=True):
    """Expected (G)AUC with soft labels: row i is a positive of weight p_i and
    a negative of weight 1 − p_i (see the module doc); ties count ½.

    GAUC = Σ_g n_g·AUC_g / Σ_g n_g (n_g: rows of group g) over groups where
    AUC_g is defined; `groups=None` gives the plain AUC. With
    `exclude_self_pairs=False` it equals `predictions.group_auc` on the rows
    duplicated as (label 1, weight p) and (label 0, weight 1 − p).

    Returns:
        float, NaN when no group has a defined AUC.

    Example:
    >>> round(soft_group_auc([0.9, 0.1], [2.0, 1.0]), 4)  # 0.9·0.9 / (0.9·0.9 + 0.1·0.1)
    0.9878
    >>> soft_group_auc([0.9, 0.1], [1.0, 1.0])
    0.5
    """
    p = np.asarray(click_prob, np.float64).ravel()
    s = np.asarray(scores, np.float64).ravel()
    if len(p) != len(s):
        raise ValueError(f"click_prob and scores differ in length: {len(p)} vs {len(s)}")
    if len(p) == 0:
        return float("nan")
    codes = _codes(groups, len(p))
    order = np.lexsort((s, codes))
    g, s_sorted = codes[order], s[order]
    pos, neg = p[order], 1.0 - p[order]
    new_run = np.r_[True, (g[1:] != g[:-1]) | (s_sorted[1:] != s_sorted[:-1])]
    run = np.cumsum(new_run) - 1
    run_pos, run_neg = np.bincount(run, pos), np.bincount(run, neg)
    run_group = g[new_run]
    below = np.cumsum(run_neg) - run_neg  # negative weight strictly below, whole stream
    first = np.r_[True, run_group[1:] != run_group[:-1]]
    below -= np.repeat(below[first], np.diff(np.r_[np.flatnonzero(first), len(run_group)]))
    num_groups = int(codes.max()) + 1
    correct = np.bincount(run_group, run_pos * (below + 0.5 * run_neg), num_groups)
    total = np.bincount(codes, p, num_groups) * np.bincount(codes, 1.0 - p, num_groups)
    if exclude_self_pairs:
        self_pairs = np.bincount(codes, p * (1.0 - p), num_groups)
        correct -= 0.5 * self_pairs  # a row's own (pos, neg) pair is a tie
        total -= self_pairs
    size = np.bincount(codes, minlength=num_groups).astype(np.float64)
    valid = total > 1e-12 * np.maximum(size, 1.0) ** 2
    if not valid.any():
        return float("nan")
    return float(np.sum(correct[valid] / total[valid] * size[valid]) / size[valid].sum())


def _slice_metrics(table, scores, k):
    p = table["click_prob"].to_numpy()
    out = {"count": int(len(table)), "num_requests": int(table["request_id"].nunique())}
    if len(table) == 0:
        return out
    out["auc"] = soft_group_auc(p, scores)
    out["gauc_user"] = soft_group_auc(p, scores, table["user_id"].to_numpy())
    out["gauc_query"] = soft_group_auc(p, scores, table["query_id"].to_numpy())
    lists = table["request_id"].to_numpy()
    out[f"ndcg_at_{k}"] = mean_of_defined(ndcg_per_list(lists, p, scores, k)[1])
    gains = 2.0 ** table["relevance"].to_numpy() - 1.0
    out[f"ndcg_at_{k}_relevance"] = mean_of_defined(ndcg_per_list(lists, gains, scores, k)[1])
    unshown = ~table["shown"].to_numpy()
    out["auc_unshown"] = soft_group_auc(p[unshown], scores[unshown])
    return out


def full_space_metrics(table, scores, k=10, by="activity"):
    """Every full-space metric of the module doc, overall and per bucket.

    Args:
        table: `FullSpace.table` (or any frame with its columns).
        scores: [N] model scores, aligned with `table`.
        k: int, NDCG cut-off (10).
        by: str, the column of `table` whose values are the buckets
            (`"activity"`: cold, low, high; any other column: its distinct
            values, sorted).

    Returns:
        dict: `count`, `num_requests`, `auc`, `gauc_user`, `gauc_query`,
        `ndcg_at_<k>`, `ndcg_at_<k>_relevance`, `auc_unshown`, and each as
        `<name>/<bucket>` per bucket.
    """
    scores = np.asarray(scores, np.float64).ravel()
    if len(scores) != len(table):
        raise ValueError(f"{len(scores)} scores for {len(table)} candidates")
    out = _slice_metrics(table, scores, k)
    column = table[by].to_numpy()
    for bucket in ACTIVITY_BUCKETS if by == "activity" else sorted(set(column)):
        rows = column == bucket
        part = table[rows]
        out.update({f"{name}/{bucket}": value
                    for name, value in _slice_metrics(part, scores[rows], k).items()})
    return out
