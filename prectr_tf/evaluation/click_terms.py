"""What a model's ranking follows: its scores decomposed onto the simulator's
click-model terms (issue 10's diagnostic of where the models stop).

The simulator's attractiveness logit of a candidate is

    base + relevance term + interest term + popularity term
    relevance term  = slope · exp(s_u + s_q) · (level − θ_q + t_u)
    interest term   = interest_weight · affinity(u, item)
    popularity term = popularity_weight · popularity

Inside a request the base cancels, so a ranking is a weighting of the three
terms. `click_terms` recovers them per candidate of a full space from the
`SimulatedLog` (the interest term as what is left of the no-preference
oracle's logit, checked against the true click probability's); `score_decomposition` regresses a
model's logit on them within requests: the true click logit has weights
(1, 1, 1) and R² 1; a model that ranks by relevance alone has an interest
weight near 0.

It also gives the interest-blind references: the click logit without its
interest term, with the user's and query's preferences, with the query's
only, and with neither. Their NDCG@10 differences are what preference
modelling can win for a model that has not learnt users' interests.

Example:
>>> terms = click_terms(sim, space.table)          # doctest: +SKIP
>>> score_decomposition(space.table, terms, scores)  # doctest: +SKIP
{'relevance': 0.93, 'interest': 0.04, 'popularity': 0.8, 'r2': 0.71}
"""

import numpy as np
import pandas as pd

from prectr_tf.data.simulator.stats import request_frame

TERMS = ("relevance", "interest", "popularity")
# Interest-blind reference scorers: which preferences each keeps.
BLIND_SCORERS = {
    "interest-blind, user and query preference": ("user", "query"),
    "interest-blind, query preference": ("query",),
    "interest-blind, no preference": (),
}


def _logit(p):
    p = np.asarray(p, np.float64)
    return np.log(p) - np.log1p(-p)


def click_terms(sim, table, atol=1e-6):
    """The click model's terms for every candidate of `table`.

    Args:
        sim: the `SimulatedLog` the full space was built from (with
            candidates, users, queries and items).
        table: `FullSpace.table` (`request_id`, `item_id`, `relevance`,
            `click_prob`, `no_preference_oracle`).
        atol: float, how far (in logit) the true click logit may differ
            from the sum of the recovered terms where the probability is
            not saturated (default 1e-6).

    Returns:
        `pandas.DataFrame` aligned with `table`: the three `TERMS` and each
        `BLIND_SCORERS` name as a logit.

    Raises:
        ValueError: a request, user, query or item of `table` is not in
            `sim`, or the terms do not add up to the true click logit (the
            table does not come from this simulation).
    """
    config = sim.config
    requests = request_frame(sim.log)
    request_ids = table["request_id"].astype(str).to_numpy()
    row = requests.index.get_indexer(request_ids)
    if np.any(row < 0):
        raise ValueError(f"request_id {request_ids[row < 0][0]!r} of the table is not in the "
                         "simulation's log")
    user_ids = requests["user_id"].to_numpy()[row]
    queries = requests["query"].to_numpy()[row]
    users = sim.users.set_index("user_id")
    query_table = sim.queries.set_index("query")
    items = sim.items.set_index(sim.items["item_id"].astype(str))
    lookups = {"user_id": (users, user_ids), "query": (query_table, queries),
               "item_id": (items, table["item_id"].astype(str).to_numpy())}
    index = {}
    for field, (frame, keys) in lookups.items():
        index[field] = frame.index.get_indexer(keys)
        if np.any(index[field] < 0):
            raise ValueError(f"{field} {keys[index[field] < 0][0]!r} of the table is not in "
                             "the simulation")
    t_u = users["tolerance"].to_numpy()[index["user_id"]]
    s_u = users["sensitivity"].to_numpy()[index["user_id"]]
    theta_q = query_table["threshold"].to_numpy()[index["query"]]
    s_q = query_table["sensitivity"].to_numpy()[index["query"]]
    popularity = items["popularity"].to_numpy(np.float64)[index["item_id"]]
    level = table["relevance"].to_numpy(np.float64)

    base = _logit(config.click_base_rate)
    slope = config.relevance_slope
    pop_term = config.popularity_weight * popularity

    def relevance_term(kept):
        sensitivity = (s_u if "user" in kept else 0.0) + (s_q if "query" in kept else 0.0)
        threshold = theta_q if "query" in kept else config.threshold
        tolerance = t_u if "user" in kept else 0.0
        return slope * np.exp(sensitivity) * (level - threshold + tolerance)

    rel_term = relevance_term(("user", "query"))
    # From the no-preference oracle: the true click probability saturates at
    # 1.0 for strict users on strict queries (relevance terms near 30), the
    # oracle (slope 1, mean threshold) does not.
    interest = _logit(table["no_preference_oracle"]) - base - relevance_term(()) - pop_term
    p = table["click_prob"].to_numpy(np.float64)
    exact = p * (1.0 - p) > 1e-9
    gap = np.abs(_logit(p[exact]) - base - rel_term[exact] - pop_term[exact] - interest[exact])
    if gap.size and gap.max() > atol:
        raise ValueError(f"the click logit less its terms differs from the no_preference_oracle's "
                         f"interest term by up to {gap.max():.3g}: is the table from this "
                         "simulation?")
    out = pd.DataFrame({"relevance": rel_term, "interest": interest, "popularity": pop_term},
                       index=table.index)
    for name, kept in BLIND_SCORERS.items():
        out[name] = relevance_term(kept) + pop_term
    return out


def _within(values, groups):
    """`values` [N, K] minus their mean in each group."""
    codes, _ = pd.factorize(groups)
    counts = np.bincount(codes)[:, None]
    sums = np.zeros((counts.shape[0], values.shape[1]))
    np.add.at(sums, codes, values)
    return values - (sums / counts)[codes]


def score_decomposition(table, terms, scores):
    """Within-request least squares of `logit(scores)` on the three `TERMS`.

    Args:
        table: `FullSpace.table` (its `request_id` groups the rows).
        terms: `click_terms(sim, table)`.
        scores: [N] click probabilities in [0, 1], aligned with `table`.

    Returns:
        dict: each term's weight divided by the relevance term's (the true
        click logit gives 1.0 for each), `relevance` the relevance weight
        itself (the score's scale), and `r2`, the share of the score's
        within-request variance the three terms explain.
    """
    scores = np.asarray(scores, np.float64).ravel()
    if len(scores) != len(table) or len(terms) != len(table):
        raise ValueError(f"{len(scores)} scores and {len(terms)} term rows for "
                         f"{len(table)} candidates")
    if not np.all((scores >= 0) & (scores <= 1)):
        raise ValueError("scores must be probabilities in [0, 1]: the decomposition is of "
                         "their logit")
    # A float32 sigmoid reaches 0 or 1 beyond |logit| ≈ 17: hold it there.
    scores = np.clip(scores, 1e-7, 1 - 1e-7)
    groups = table["request_id"].to_numpy()
    x = _within(terms[list(TERMS)].to_numpy(np.float64), groups)
    y = _within(_logit(scores)[:, None], groups)[:, 0]
    weights, *_ = np.linalg.lstsq(x, y, rcond=None)
    residual = y - x @ weights
    total = float(y @ y)
    r2 = 1.0 - float(residual @ residual) / total if total > 0 else float("nan")
    out = {"relevance": float(weights[0])}
    out.update({name: float(w / weights[0]) for name, w in zip(TERMS[1:], weights[1:])})
    out["r2"] = r2
    return out
