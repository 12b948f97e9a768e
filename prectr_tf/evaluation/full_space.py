"""Full-space evaluation: score a ranker on every coarse-ranking candidate of
the simulator's eval requests, shown or not (DESIGN §7–§8).

The logged eval split only holds what the logging policy showed — mostly
relevant items, high up (exposure bias). The simulator knows, for every
candidate of every request, its true relevance level and its true click
probability if examined at position 0 (`SimulatedLog.candidates`), so a model
can be judged on the whole candidate set, noise-free.

**Building the candidate examples.** For every request of the dataset's
`split` (default `eval`), the request-level features — `user_id`, `query`,
`query_id`, `user_event_count`, `timestamp`, `request_id`, `user_history_*`,
`query_context_*` (identical for all impressions of one request: histories
and contexts only see events strictly before the request's timestamp) — are
taken from one of its built examples, and for each of the request's
`num_candidates` candidates the item fields (`item_id`, `item_title`,
`item_category`, `item_features`) are substituted from the simulator's
catalogue. `position` is set to 0 (the model does not read it; the click
probabilities are at position 0) and `impression_id` to
`"<request_id>|<item_id>"`. A shown candidate therefore gets exactly the
features of its logged example, apart from those two.

**Metrics** (p_i: true click probability of candidate i if examined at
position 0; s_i: the model's score; every candidate is one row):

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
  relevance level (the reference `ndcg_at_k` convention), over requests with
  a candidate above level 0.
* score ties in NDCG are broken at random (`seed`), as in
  `prectr_tf.metrics.reference`.
* `auc_unshown`: `auc` over the candidates the logging policy did not show in
  their request — the part of the space the logged eval never sees.
* every metric also per activity bucket (`prectr_tf.data.activity`: cold / low
  / high by `user_event_count`, the user's impressions before the request) as
  `<metric>/<bucket>`; a GAUC slice groups the bucket's rows by user / query.

Example:
>>> space = full_space_examples(sim, "runs/demo/dataset")            # doctest: +SKIP
>>> scores = score_candidates(model, space.features)                 # doctest: +SKIP
>>> full_space_metrics(space.table, scores)["ndcg_at_10"]            # doctest: +SKIP
"""

import dataclasses

import numpy as np
import pandas as pd

from prectr_tf.data.activity import ACTIVITY_BUCKETS, DEFAULT_LOW_MAX, activity_bucket

ITEM_FIELDS = ("item_id", "item_title", "item_category", "item_features")
# Per-impression fields that are neither request- nor item-level.
IMPRESSION_FIELDS = ("impression_id", "position")
# Request-level columns copied into `FullSpace.table`.
TABLE_REQUEST_COLUMNS = ("request_id", "user_id", "query_id", "user_event_count")


@dataclasses.dataclass
class FullSpace:
    """Every candidate of the split's requests, ready to score.

    Attributes:
        features: `{feature: np.ndarray}` in the layout of the `tf.data`
            pipeline (strings as bytes objects, lists padded), one row per
            (request, candidate), grouped by request.
        table: one row per candidate: `request_id`, `user_id`, `query_id`,
            `user_event_count` (str / bytes decoded, ints), `activity`
            (bucket name), `item_id`, `relevance` (true level),
            `click_prob` (true, at position 0), `shown`, `position` (-1 if
            not shown).
    """

    features: dict
    table: pd.DataFrame

    def __len__(self):
        return len(self.table)


def _decode(values):
    return np.array([v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values],
                    dtype=object)


def _encode(values):
    return np.array([v.encode("utf-8") if isinstance(v, str) else v for v in values],
                    dtype=object)


def request_contexts(data_dir, split="eval", batch_size=4096):
    """One built example per request of a split (its first, in file order).

    Returns:
        `{feature: np.ndarray [R, ...]}` with the pipeline's feature layout.
    """
    from prectr_tf.data.pipeline import make_dataset  # noqa: PLC0415 (imports TF)

    parts = {}
    for features, _ in make_dataset(data_dir, split, batch_size=batch_size, shuffle=False):
        for name, value in features.items():
            parts.setdefault(name, []).append(value.numpy())
    if not parts:
        raise ValueError(f"split {split!r} of {data_dir} is empty")
    columns = {name: np.concatenate(values) for name, values in parts.items()}
    _, first = np.unique(columns["request_id"], return_index=True)
    first = np.sort(first)
    return {name: value[first] for name, value in columns.items()}


def full_space_examples(sim, data_dir, split="eval", low_max=DEFAULT_LOW_MAX):
    """The full candidate space of a split's requests (see the module doc).

    Args:
        sim: the `SimulatedLog` the dataset was built from (with candidates).
        data_dir: the built dataset.
        split: whose requests to expand.
        low_max: activity bucket bound.

    Returns:
        `FullSpace`.
    """
    if sim.candidates is None:
        raise ValueError("the SimulatedLog has no candidates (read back from a folder written "
                         "without write_candidates?)")
    contexts = request_contexts(data_dir, split)
    request_ids = _decode(contexts["request_id"])
    candidates = sim.candidates
    cand_request = candidates["request_id"].astype(str).to_numpy()
    request_row = pd.Index(request_ids).get_indexer(cand_request)
    if np.any(request_row < 0):
        keep = np.flatnonzero(request_row >= 0)
    else:
        keep = np.arange(len(candidates))
    # Group by request (in context order), candidates in the simulator's order.
    keep = keep[np.argsort(request_row[keep], kind="stable")]
    request_row = request_row[keep]
    found = np.zeros(len(request_ids), bool)
    found[request_row] = True
    if not found.all():
        missing = request_ids[~found][:5].tolist()
        raise ValueError(f"{int((~found).sum())} requests of the {split!r} split have no "
                         f"candidates in the SimulatedLog (e.g. {missing}): was the dataset "
                         "built from this simulation?")
    cand = candidates.iloc[keep]
    item_ids = cand["item_id"].astype(str).to_numpy()
    items = sim.items
    item_row = pd.Index(items["item_id"].astype(str)).get_indexer(item_ids)
    if np.any(item_row < 0):
        raise ValueError("candidate items missing from the SimulatedLog's items")

    catalogue = {"item_id": _encode(items["item_id"].to_numpy()),
                 "item_title": _encode(items["item_title"].to_numpy()),
                 "item_category": _encode(items["item_category"].to_numpy())}
    if "item_features" in contexts:
        catalogue["item_features"] = np.stack(items["item_features"].to_numpy()).astype(
            contexts["item_features"].dtype)

    features = {}
    for name, value in contexts.items():
        if name in ITEM_FIELDS:
            features[name] = catalogue[name][item_row]
        elif name == "position":
            features[name] = np.zeros(len(keep), value.dtype)
        elif name == "impression_id":
            features[name] = _encode([f"{r}|{i}" for r, i in
                                      zip(request_ids[request_row], item_ids)])
        else:
            features[name] = value[request_row]

    table = pd.DataFrame({
        "request_id": request_ids[request_row],
        "user_id": _decode(contexts["user_id"])[request_row],
        "query_id": contexts["query_id"][request_row],
        "user_event_count": contexts["user_event_count"][request_row],
        "item_id": item_ids,
        "relevance": cand["relevance"].to_numpy().astype(np.int64),
        "click_prob": cand["click_prob"].to_numpy().astype(np.float64),
        "shown": cand["shown"].to_numpy(),
        "position": cand["position"].to_numpy().astype(np.int64),
    })
    table["activity"] = np.asarray(ACTIVITY_BUCKETS, dtype=object)[
        activity_bucket(table["user_event_count"].to_numpy(), low_max)]
    return FullSpace(features=features, table=table)


def score_candidates(model, features, batch_size=4096, outputs=None):
    """`model(batch, training=False)` over every row, in batches.

    Args:
        model: a `PRECTRModel` (or any model returning a dict of `[N, ...]`).
        features: dict of `[N, ...]` arrays (`FullSpace.features`).
        batch_size: rows per call.
        outputs: `None` for the `"score"` alone, or a tuple of output names.

    Returns:
        float64 np.ndarray [N] of scores; with `outputs`, a dict of arrays.
    """
    import tensorflow as tf  # noqa: PLC0415

    names = ("score",) if outputs is None else tuple(outputs)

    @tf.function(reduce_retracing=True)
    def predict(batch):
        out = model(batch, training=False)
        return {name: out[name] for name in names}

    n = len(next(iter(features.values())))
    parts = {name: [] for name in names}
    for start in range(0, n, batch_size):
        batch = {name: tf.constant(value[start:start + batch_size])
                 for name, value in features.items()}
        for name, value in predict(batch).items():
            parts[name].append(np.asarray(value, np.float64))
    result = {name: np.concatenate(v) if v else np.zeros(0) for name, v in parts.items()}
    return result["score"].reshape(-1) if outputs is None else result


# --- metrics -----------------------------------------------------------------
def _codes(groups, n):
    if groups is None:
        return np.zeros(n, np.int64)
    return np.unique(np.asarray(groups).ravel(), return_inverse=True)[1].ravel()


def soft_group_auc(click_prob, scores, groups=None, exclude_self_pairs=True):
    """Expected (G)AUC with soft labels: row i is a positive of weight p_i and
    a negative of weight 1 − p_i (see the module doc); ties count ½.

    GAUC = Σ_g n_g·AUC_g / Σ_g n_g (n_g: rows of group g) over groups where
    AUC_g is defined; `groups=None` gives the plain AUC. With
    `exclude_self_pairs=False` it equals `reference.group_auc` on the rows
    duplicated as (label 1, weight p) and (label 0, weight 1 − p).

    Returns:
        float, NaN when no group has a defined AUC.

    Example:
    >>> soft_group_auc([0.9, 0.1], [2.0, 1.0])
    1.0
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


def _dcg(codes, gains, key, k, seed, num_lists):
    tie = np.random.default_rng(seed).random(len(codes))
    order = np.lexsort((tie, -key, codes))
    sorted_codes = codes[order]
    starts = np.r_[0, np.flatnonzero(sorted_codes[1:] != sorted_codes[:-1]) + 1]
    rank = np.arange(len(codes)) - np.repeat(starts, np.diff(np.r_[starts, len(codes)]))
    top = rank < k
    return np.bincount(sorted_codes[top], gains[order][top] / np.log2(rank[top] + 2.0),
                       num_lists)


def ndcg_per_list(list_ids, gains, scores, k=10, seed=0):
    """NDCG@k of each list with explicit (non-negative) gains.

    DCG@k = Σ_{rank ≤ k} gain / log2(rank + 1); NDCG = DCG / ideal DCG (the
    list sorted by gain). Score ties are broken at random (`seed`). With
    gains 2^y − 1 this is `reference.ndcg_at_k` per list.

    Returns:
        `(list_keys, ndcg)`: the sorted distinct list ids and float64 [L]
        values, NaN for a list whose ideal DCG is 0.
    """
    keys, codes = np.unique(np.asarray(list_ids).ravel(), return_inverse=True)
    codes = codes.ravel()
    gains = np.asarray(gains, np.float64).ravel()
    scores = np.asarray(scores, np.float64).ravel()
    if len(codes) == 0:
        return keys, np.zeros(0)
    ideal = _dcg(codes, gains, gains, k, seed, len(keys))
    actual = _dcg(codes, gains, scores, k, seed, len(keys))
    with np.errstate(invalid="ignore", divide="ignore"):
        return keys, np.where(ideal > 0, actual / np.where(ideal > 0, ideal, 1.0), np.nan)


def _nanmean(values):
    values = np.asarray(values, np.float64)
    values = values[~np.isnan(values)]
    return float(values.mean()) if len(values) else float("nan")


def _slice_metrics(table, scores, k, seed):
    p = table["click_prob"].to_numpy()
    out = {"count": int(len(table)), "num_requests": int(table["request_id"].nunique())}
    if len(table) == 0:
        return out
    out["auc"] = soft_group_auc(p, scores)
    out["gauc_user"] = soft_group_auc(p, scores, table["user_id"].to_numpy())
    out["gauc_query"] = soft_group_auc(p, scores, table["query_id"].to_numpy())
    lists = table["request_id"].to_numpy()
    out[f"ndcg_at_{k}"] = _nanmean(ndcg_per_list(lists, p, scores, k, seed)[1])
    gains = 2.0 ** table["relevance"].to_numpy() - 1.0
    out[f"ndcg_at_{k}_relevance"] = _nanmean(ndcg_per_list(lists, gains, scores, k, seed)[1])
    unshown = ~table["shown"].to_numpy()
    out["auc_unshown"] = soft_group_auc(p[unshown], scores[unshown])
    return out


def full_space_metrics(table, scores, k=10, seed=0):
    """Every full-space metric of the module doc, overall and per bucket.

    Args:
        table: `FullSpace.table` (or any frame with its columns).
        scores: [N] model scores, aligned with `table`.
        k: NDCG cut-off.
        seed: NDCG tie-break seed.

    Returns:
        dict: `count`, `num_requests`, `auc`, `gauc_user`, `gauc_query`,
        `ndcg_at_<k>`, `ndcg_at_<k>_relevance`, `auc_unshown`, and each as
        `<name>/<bucket>` for the buckets cold, low, high.
    """
    scores = np.asarray(scores, np.float64).ravel()
    if len(scores) != len(table):
        raise ValueError(f"{len(scores)} scores for {len(table)} candidates")
    out = _slice_metrics(table, scores, k, seed)
    activity = table["activity"].to_numpy()
    for bucket in ACTIVITY_BUCKETS:
        rows = activity == bucket
        part = table[rows]
        out.update({f"{name}/{bucket}": value
                    for name, value in _slice_metrics(part, scores[rows], k, seed).items()})
    return out


def evaluate_full_space(model, sim, data_dir, split="eval", space=None, batch_size=4096, k=10,
                        seed=0):
    """Score `model` on the full candidate space and return the metrics.

    Args:
        model: a Keras model whose call returns `{"score": [B]}`.
        sim: the `SimulatedLog` behind `data_dir`.
        data_dir: the built dataset.
        split: whose requests.
        space: a precomputed `full_space_examples(sim, data_dir, split)`
            (reuse it across models).
        batch_size, k, seed: scoring batch size, NDCG cut-off, tie seed.

    Returns:
        `full_space_metrics` of the model's scores.
    """
    space = space if space is not None else full_space_examples(sim, data_dir, split)
    return full_space_metrics(space.table, score_candidates(model, space.features, batch_size),
                              k=k, seed=seed)
