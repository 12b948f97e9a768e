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

**Metrics**: `prectr_tf.evaluation.soft_metrics` (expected AUC / GAUC under
Bernoulli clicks, NDCG@10 with gain = true p, per activity bucket).

Example:
>>> space = full_space_examples(sim, data_dir)    # the eval requests x 20 candidates
>>> scores = score_candidates(model, space.features)
>>> len(scores) == len(space) == 20 * space.table["request_id"].nunique()
True
>>> 0.0 <= full_space_metrics(space.table, scores)["ndcg_at_10"] <= 1.0
True
"""

import dataclasses

import numpy as np
import pandas as pd

from prectr_tf.data.activity import ACTIVITY_BUCKETS, DEFAULT_LOW_MAX, activity_bucket
from prectr_tf.data.schema import CANDIDATE_FIELDS
from prectr_tf.evaluation.headroom import REFERENCE_SCORERS
from prectr_tf.evaluation.soft_metrics import full_space_metrics

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
        if name in CANDIDATE_FIELDS:
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
        # The simulator's other reference scorers, where it has them.
        **{c: cand[c].to_numpy().astype(np.float64) for c in REFERENCE_SCORERS.values()
           if c not in ("click_prob", "relevance") and c in cand},
    })
    table["activity"] = np.asarray(ACTIVITY_BUCKETS, dtype=object)[
        activity_bucket(table["user_event_count"].to_numpy(), low_max)]
    return FullSpace(features=features, table=table)


def score_candidates(model, features, batch_size=4096, outputs=None,
                     encode_distinct_pairs=True):
    """`model(batch, training=False)` over every row, in batches.

    Args:
        model: a `PRECTRModel` (or any model returning a dict of `[N, ...]`).
        features: dict of `[N, ...]` arrays (`FullSpace.features`).
        batch_size: rows per call.
        outputs: `None` for the `"score"` alone, or a tuple of output names.
        encode_distinct_pairs: bool (default True): for a model with a text
            encoder, encode each distinct (query, title) pair once
            (`RelevanceCache`) and score every row with its pair's r. The
            requests of a query share most candidates, so the space holds
            far fewer pairs than rows; r is the same function of the pair
            either way (equal up to float rounding).

    Returns:
        float64 np.ndarray [N] of scores; with `outputs`, a dict of arrays.
    """
    import tensorflow as tf  # noqa: PLC0415

    from prectr_tf.models.relevance_cache import FEATURE, RelevanceCache  # noqa: PLC0415

    names = ("score",) if outputs is None else tuple(outputs)
    cache = None
    if encode_distinct_pairs and getattr(getattr(model, "config", None), "uses_text", False):
        cache = RelevanceCache.compute(model, features["query"], features["item_title"],
                                       batch_size)

    @tf.function(reduce_retracing=True)
    def predict(batch):
        if cache is not None:
            batch = {**batch, FEATURE: cache.lookup(batch["query"], batch["item_title"])}
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


def evaluate_full_space(model, sim, data_dir, split="eval", space=None, batch_size=4096, k=10):
    """Score `model` on the full candidate space and return the metrics.

    Args:
        model: a Keras model whose call returns `{"score": [B]}`.
        sim: the `SimulatedLog` behind `data_dir`.
        data_dir: the built dataset.
        split: whose requests.
        space: a precomputed `full_space_examples(sim, data_dir, split)`
            (reuse it across models).
        batch_size, k: scoring batch size, NDCG cut-off.

    Returns:
        `full_space_metrics` of the model's scores.
    """
    space = space if space is not None else full_space_examples(sim, data_dir, split)
    return full_space_metrics(space.table, score_candidates(model, space.features, batch_size),
                              k=k)
