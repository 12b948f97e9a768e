"""Summary statistics of a simulated log: the numbers quoted about a run.

Definitions:

* **Activity** follows `prectr_tf.data.activity`: a user's activity at an
  impression is the number of their impressions strictly before it (the
  builder's `user_event_count`; the rows of one request share a timestamp,
  so it counts earlier requests' impressions). *Impressions per bucket*
  buckets every impression by it — the weights of the sliced metrics.
  *Users per bucket* buckets each user by it at their last request, i.e. by
  the largest history the user ever has (cold = a single request).
* **Cross-user context**: a request has it when another user issued the same
  query earlier.
* **Per level** (true levels, labelled or not): `candidate_share` is the
  level's share of all (request, candidate) pairs — what a ranker faces;
  `log_share` its share of impressions — what the logging policy exposed;
  `exposure_ratio` their quotient; `ctr` the observed click rate of shown
  items; `expected_ctr` the mean true click probability of those
  impressions (attractiveness × examination at their position), which `ctr`
  estimates.
* **Per position**: impressions and observed CTR at each 0-based position.
"""

import numpy as np
import pandas as pd

from prectr_tf.data.activity import ACTIVITY_BUCKETS, DEFAULT_LOW_MAX, activity_bucket
from prectr_tf.data.simulator.click_model import examination_probability


def simulation_stats(sim):
    """JSON-able statistics of a `SimulatedLog` (module docstring).

    Args:
        sim: `SimulatedLog` with candidates (freshly simulated, or read back
            from a folder written with `write_candidates=True`).

    Returns:
        dict of plain Python numbers, strings, lists and dicts; a share
        whose denominator is 0 is `None`.
    """
    if sim.candidates is None:
        raise ValueError("simulation_stats needs the candidates; this log was written without "
                         "them (write_candidates=False): read its stats.json instead")
    config, log = sim.config, sim.log
    requests = request_frame(log)
    prior = requests["prior_impressions"].to_numpy()
    impressions_by_bucket = np.bincount(activity_bucket(prior), weights=requests["size"],
                                        minlength=len(ACTIVITY_BUCKETS))
    last_prior = requests.groupby("user_id", sort=False)["prior_impressions"].max()
    users_by_bucket = np.bincount(activity_bucket(last_prior.to_numpy()),
                                  minlength=len(ACTIVITY_BUCKETS))
    earlier_any = requests.groupby("query", sort=False).cumcount()
    earlier_own = requests.groupby(["query", "user_id"], sort=False).cumcount()
    clicks = log["click"].to_numpy(dtype=np.float64)
    num_requests = sim.users["num_requests"].to_numpy()
    return {
        "catalogue": config.catalogue,
        "catalogue_description": sim.description,
        "seed": config.seed,
        "num_relevance_levels": config.num_relevance_levels,
        "num_users": int(len(sim.users)),
        "num_cold_start_users": int((num_requests == 1).sum()),
        "num_requests": int(len(requests)),
        "num_impressions": int(len(log)),
        "num_queries_issued": int(requests["query"].nunique()),
        "num_items_shown": int(log["item_id"].nunique()),
        "num_candidate_pairs": int(len(sim.candidates)),
        "ctr": _share(clicks.sum(), len(log)),
        "relevance_label_share": _share(log["relevance"].notna().sum(), len(log)),
        "requests_per_user": {"mean": float(num_requests.mean()),
                              "median": float(np.median(num_requests)),
                              "max": int(num_requests.max())},
        "requests_with_cross_user_context": _share(
            ((earlier_any - earlier_own) > 0).sum(), len(requests)),
        "activity": {
            "buckets": list(ACTIVITY_BUCKETS), "low_max": DEFAULT_LOW_MAX,
            "users": [int(n) for n in users_by_bucket],
            "impressions": [int(n) for n in impressions_by_bucket]},
        "per_level": _per_level(sim),
        "per_position": _per_position(log, clicks),
    }


def request_frame(log):
    """One row per request in time order, with the user's earlier impressions."""
    requests = log.groupby("request_id", sort=False).agg(
        user_id=("user_id", "first"), query=("query", "first"),
        timestamp=("timestamp", "first"), size=("position", "size"))
    requests = requests.sort_values("timestamp", kind="stable")
    cumulative = requests.groupby("user_id", sort=False)["size"].cumsum()
    requests["prior_impressions"] = cumulative - requests["size"]
    return requests


def _per_level(sim):
    config, candidates = sim.config, sim.candidates
    num_levels = config.num_relevance_levels
    level = candidates["relevance"].to_numpy(dtype=np.int64)
    shown = candidates["shown"].to_numpy(dtype=bool)
    shown_level = level[shown]
    examination = examination_probability(candidates["position"].to_numpy()[shown],
                                          config.position_bias_exponent)
    in_space = np.bincount(level, minlength=num_levels)
    in_log = np.bincount(shown_level, minlength=num_levels)
    clicks = np.bincount(shown_level, weights=candidates["click"].to_numpy()[shown],
                         minlength=num_levels)
    expected = np.bincount(shown_level, minlength=num_levels, weights=(
        candidates["click_prob"].to_numpy()[shown] * examination))
    rows = []
    for k in range(num_levels):
        candidate_share = _share(in_space[k], in_space.sum())
        log_share = _share(in_log[k], in_log.sum())
        rows.append({
            "level": k, "candidates": int(in_space[k]), "impressions": int(in_log[k]),
            "candidate_share": candidate_share, "log_share": log_share,
            "exposure_ratio": (None if not candidate_share or log_share is None
                               else log_share / candidate_share),
            "ctr": _share(clicks[k], in_log[k]), "expected_ctr": _share(expected[k], in_log[k])})
    return rows


def _per_position(log, clicks):
    position = log["position"].to_numpy(dtype=np.int64)
    count = np.bincount(position)
    clicked = np.bincount(position, weights=clicks, minlength=len(count))
    return [{"position": p, "impressions": int(count[p]), "ctr": _share(clicked[p], count[p])}
            for p in range(len(count))]


def _share(numerator, denominator):
    return float(numerator) / float(denominator) if denominator else None


def format_stats(stats):
    """Render `simulation_stats` output as a readable text report.

    Args:
        stats: the dict from `simulation_stats` (or a parsed `stats.json`).

    Returns:
        str, several small aligned tables.
    """
    def pct(x):
        return "   n/a" if x is None else f"{100 * x:5.1f}%"

    def num(x, width=7):
        return " " * (width - 3) + "n/a" if x is None else f"{x:{width}.3f}"

    users = stats["activity"]["users"]
    impressions = stats["activity"]["impressions"]
    rpu = stats["requests_per_user"]
    lines = [
        f"catalogue: {stats['catalogue_description']}",
        f"seed {stats['seed']}, K = {stats['num_relevance_levels']}",
        f"users {stats['num_users']:,} (cold-start {stats['num_cold_start_users']:,}), "
        f"requests {stats['num_requests']:,}, impressions {stats['num_impressions']:,}",
        f"requests per user: mean {rpu['mean']:.2f}, median {rpu['median']:g}, max {rpu['max']}",
        f"queries issued {stats['num_queries_issued']:,}, items shown "
        f"{stats['num_items_shown']:,}, candidate pairs {stats['num_candidate_pairs']:,}",
        f"CTR {pct(stats['ctr'])}, relevance-labelled {pct(stats['relevance_label_share'])}, "
        f"requests with cross-user context {pct(stats['requests_with_cross_user_context'])}",
        "",
        f"activity (prior impressions; low = 1..{stats['activity']['low_max']})"
        "     users        impressions",
    ]
    for name, u, i in zip(stats["activity"]["buckets"], users, impressions):
        lines.append(f"  {name:<6} {u:>10,} {pct(_share(u, sum(users)))} "
                     f"{i:>12,} {pct(_share(i, sum(impressions)))}")
    lines += ["", "level  candidates  in log  exposure ratio     CTR  expected CTR"]
    for row in stats["per_level"]:
        lines.append(f"  {row['level']:<4} {pct(row['candidate_share']):>10} "
                     f"{pct(row['log_share']):>7} {num(row['exposure_ratio'], 15)} "
                     f"{pct(row['ctr']):>7} {pct(row['expected_ctr']):>13}")
    lines += ["", "position  impressions     CTR"]
    for row in stats["per_position"]:
        lines.append(f"  {row['position']:<7} {row['impressions']:>11,} {pct(row['ctr']):>7}")
    return "\n".join(lines)
