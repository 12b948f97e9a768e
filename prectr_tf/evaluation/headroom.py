"""Headroom: how much a ranker can gain from knowing users' and queries'
preferences, measured with the simulator's reference scorers (issue 10).

Each reference scores every candidate from the simulator's ground truth:

* `ceiling (true p)`: the true click probability — scores 1 on NDCG@10;
* `query-preference oracle`: the click model with the user's tolerance t_u
  and sensitivity s_u at their mean 0 — it knows the query's θ_q and s_q,
  the user's interests, popularity and the true level; what cross-user query
  mining could reach;
* `no-preference oracle`: also θ_q at its mean and s_q at 0;
* `true level`: the true relevance level alone.

ceiling − query-preference oracle is what personal preference is worth
beyond the query's; query-preference − no-preference what the query's
population preference is worth.

Example:
>>> space = reference_space(sim)                   # the latest 20 % of requests
>>> metrics = reference_metrics(space)
>>> round(metrics["ceiling (true p)"]["ndcg_at_10"], 6)
1.0
"""

import numpy as np
import pandas as pd

from prectr_tf.data.activity import ACTIVITY_BUCKETS, DEFAULT_LOW_MAX, activity_bucket
from prectr_tf.data.simulator.stats import request_frame
from prectr_tf.evaluation.soft_metrics import full_space_metrics

# Scorer name → candidate-table column (`SimulatedLog.candidates`).
REFERENCE_SCORERS = {
    "ceiling (true p)": "click_prob",
    "query-preference oracle": "query_preference_oracle",
    "no-preference oracle": "no_preference_oracle",
    "true level": "relevance",
}


def reference_space(sim, eval_fraction=0.2, low_max=DEFAULT_LOW_MAX):
    """Every candidate of the latest `eval_fraction` of `sim`'s requests.

    Needs no built dataset: the user's activity is counted from the log
    (impressions strictly before the request), as the builder counts it.

    Args:
        sim: `SimulatedLog` with candidates.
        eval_fraction: float, share of requests (latest by time) to score
            (default 0.2, the builder's default eval split).
        low_max: int, activity bucket bound (default 50).

    Returns:
        `pandas.DataFrame` with the columns of `FullSpace.table` that the
        metrics read (`request_id`, `user_id`, `query_id`, `user_event_count`,
        `activity`, `item_id`, `relevance`, `click_prob`, `shown`) and every scorer's
        column.
    """
    if not 0.0 < eval_fraction <= 1.0:
        raise ValueError(f"eval_fraction must be in (0, 1], got {eval_fraction}")
    requests = request_frame(sim.log)
    latest = requests.iloc[len(requests) - max(1, int(round(eval_fraction * len(requests)))):]
    candidates = sim.candidates
    missing = [c for c in REFERENCE_SCORERS.values() if c not in candidates]
    if missing:
        raise ValueError(f"the SimulatedLog's candidates lack {missing}: simulated by an older "
                         "version?")
    cand = candidates[candidates["request_id"].astype(str).isin(latest.index)]
    per_request = latest.loc[cand["request_id"].astype(str)]
    table = pd.DataFrame({
        "request_id": per_request.index.to_numpy(),
        "user_id": per_request["user_id"].to_numpy(),
        "query_id": pd.factorize(per_request["query"])[0],
        "user_event_count": per_request["prior_impressions"].to_numpy(np.int64),
        "item_id": cand["item_id"].astype(str).to_numpy(),
        "shown": cand["shown"].to_numpy(),
        **{column: cand[column].to_numpy() for column in REFERENCE_SCORERS.values()},
    })
    table["relevance"] = table["relevance"].astype(np.int64)
    table["activity"] = np.asarray(ACTIVITY_BUCKETS, dtype=object)[
        activity_bucket(table["user_event_count"].to_numpy(), low_max)]
    return table


def reference_metrics(table, k=10):
    """`{scorer: full_space_metrics}` for every scorer of `REFERENCE_SCORERS`.

    Args:
        table: `reference_space(...)` or a `FullSpace.table` carrying the
            scorers' columns.
        k: int, NDCG cut-off (default 10).
    """
    return {name: full_space_metrics(table, table[column].to_numpy(np.float64), k=k)
            for name, column in REFERENCE_SCORERS.items()}
