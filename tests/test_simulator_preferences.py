"""Personal interests and relevance sensitivity in the click model, and the
reference scorers built on them (issue 10)."""

import hashlib
import pathlib

import numpy as np
import pytest

from prectr_tf.data.simulator import SimulatorConfig, simulate
from prectr_tf.data.simulator.click_model import draw_preferences
from prectr_tf.evaluation.headroom import reference_metrics, reference_space

HOMEDEPOT_DIR = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data" / "homedepot"
OFF = dict(interest_weight=0.0, user_sensitivity_std=0.0, query_sensitivity_std=0.0)
SMALL = dict(seed=3, num_users=200, num_requests=1000, num_queries=100, num_candidates=30)
OLD_CANDIDATE_COLUMNS = ["request_id", "item_id", "relevance", "shown", "position", "click"]
# Made by the simulator before interests and sensitivities existed (commit
# 315fd15) with `SMALL` (+ num_items=500 for the synthetic catalogue): sha256
# of `log.to_csv(index=False)` and of the candidates' old exact columns, and
# click_prob's sum and cos-weighted sum. click_prob is checked to 1e-9, not
# hashed: numpy's exp/log take a different SIMD path on another CPU and move
# the last bit (CI's machine did), which is not a change of the simulator.
BEFORE = {
    "synthetic": ("bffcc140ab9108227be1c9247f221386d837e55c4021ba5d67d30d39e1017534",
                  "6032985198cc6d45552ca8ca6e3d71f98b5b0db31ba553625a9184b9a1a0a902",
                  (6369.3064138553445, -53.29041813825124)),
    "homedepot": ("748daf686868960685960d120a15e8eeab3f12c5e7d2e674b411a4475b033207",
                  "96b89bae0cf315825671d86002cc79264b7a281e5fc8fde5343ce7e75e9f6ee4",
                  (4998.388754665506, 4.499525575126047)),
}


def _catalogue_args(catalogue):
    if catalogue == "synthetic":
        return dict(num_items=500)
    if not (HOMEDEPOT_DIR / "train.csv.zip").exists():
        pytest.skip(f"Home Depot data not found under {HOMEDEPOT_DIR}")
    return dict(catalogue="homedepot", homedepot_dir=str(HOMEDEPOT_DIR))


def _sha(frame):
    return hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()


def _logit(p):
    return np.log(p / (1.0 - p))


@pytest.mark.parametrize("catalogue", ["synthetic", "homedepot"])
def test_both_additions_off_give_back_the_old_log_bit_for_bit(catalogue):
    sim = simulate(SimulatorConfig(**SMALL, **OFF, **_catalogue_args(catalogue)))
    assert _sha(sim.log) == BEFORE[catalogue][0]
    assert _sha(sim.candidates[OLD_CANDIDATE_COLUMNS]) == BEFORE[catalogue][1]
    click_prob = sim.candidates["click_prob"].to_numpy()
    sums = (click_prob.sum(), click_prob @ np.cos(np.arange(len(click_prob))))
    np.testing.assert_allclose(sums, BEFORE[catalogue][2], rtol=0, atol=1e-9)
    on = simulate(SimulatorConfig(**SMALL, **_catalogue_args(catalogue)))
    assert _sha(on.log) != BEFORE[catalogue][0]
    # Only the clicks move: users, traffic and pages come from their own streams.
    for column in ("request_id", "user_id", "query", "item_id", "position", "relevance"):
        assert on.log[column].equals(sim.log[column]), column


def test_affinity_has_mean_zero_and_variance_one():
    """In expectation over simulations: one simulation draws only G·D group
    numbers (70 × 8 here), so its own variance is off by a few per cent."""
    config = SimulatorConfig()
    rng = np.random.default_rng(0)
    for groups in (np.column_stack([rng.integers(0, 50, 4000), 50 + rng.integers(0, 20, 4000)]),
                   np.arange(4000)[:, None]):
        catalogue = type("Cat", (), {"num_queries": 10, "item_interest_groups": groups,
                                     "num_interest_groups": int(groups.max()) + 1})
        means, variances = [], []
        for seed in range(10):
            prefs = draw_preferences(config, 1000, catalogue, np.random.default_rng(seed),
                                     np.random.default_rng(100 + seed))
            users = rng.integers(0, 1000, 1000)
            affinity = prefs.affinity(users, rng.integers(0, 4000, (1000, 50)), chunk=300)
            means.append(affinity.mean())
            variances.append(affinity.var())
        assert abs(np.mean(means)) < 0.03
        assert abs(np.mean(variances) - 1.0) < 0.04
        # The chunked product equals the direct one.
        items = rng.integers(0, 4000, (7, 3))
        np.testing.assert_allclose(prefs.affinity(users[:7], items, chunk=2),
                                   np.einsum("rd,rcd->rc", prefs.user_interest[users[:7]],
                                             prefs.item_vector[items]))
    sens = draw_preferences(config, 20000, catalogue, np.random.default_rng(3),
                            np.random.default_rng(4))
    assert abs(sens.user_sensitivity.std() - config.user_sensitivity_std) < 0.02


def test_click_probabilities_follow_the_documented_formula():
    """logit(p) − logit(query-preference oracle) is the user's part alone, and
    logit(that oracle) − logit(no-preference oracle) the query's part."""
    config = SimulatorConfig(**SMALL, num_items=500)
    sim = simulate(config)
    cand = sim.candidates
    request = sim.log.groupby("request_id", sort=False)[["user_id", "query"]].first()
    per_row = request.loc[cand["request_id"].astype(str)]
    users = sim.users.set_index("user_id").loc[per_row["user_id"]]
    queries = sim.queries.set_index("query").loc[per_row["query"]]
    level = cand["relevance"].to_numpy(np.float64)
    t_u, s_u = users["tolerance"].to_numpy(), users["sensitivity"].to_numpy()
    theta, s_q = queries["threshold"].to_numpy(), queries["sensitivity"].to_numpy()
    slope = config.relevance_slope
    np.testing.assert_allclose(
        _logit(cand["click_prob"].to_numpy()) - _logit(cand["query_preference_oracle"].to_numpy()),
        slope * (np.exp(s_u + s_q) * (level - theta + t_u) - np.exp(s_q) * (level - theta)),
        atol=1e-8)
    np.testing.assert_allclose(
        _logit(cand["query_preference_oracle"].to_numpy())
        - _logit(cand["no_preference_oracle"].to_numpy()),
        slope * (np.exp(s_q) * (level - theta) - (level - config.threshold)), atol=1e-8)


def _distinct_orders_per_query(sim):
    """For each query asked in ≥ 2 requests: how many distinct candidate
    orders (by true click probability) its requests have."""
    cand = sim.candidates
    query = sim.log.groupby("request_id", sort=False)["query"].first()
    cand = cand.assign(query=query.loc[cand["request_id"].astype(str)].to_numpy())
    orders = {}
    for (q, _), rows in cand.groupby(["query", "request_id"], observed=True, sort=False):
        rank = np.argsort(-rows["click_prob"].to_numpy(), kind="stable")
        orders.setdefault(q, []).append(tuple(rows["item_id"].astype(str).to_numpy()[rank]))
    return {q: len(set(o)) for q, o in orders.items() if len(o) >= 2}


def test_who_asks_changes_the_ranking_only_with_the_additions():
    args = dict(SMALL, num_items=500)
    off = _distinct_orders_per_query(simulate(SimulatorConfig(**args, **OFF)))
    assert len(off) > 20 and set(off.values()) == {1}
    for extra in (dict(OFF, interest_weight=1.0), dict(OFF, user_sensitivity_std=0.5)):
        on = _distinct_orders_per_query(simulate(SimulatorConfig(**args, **extra)))
        assert np.mean([n > 1 for n in on.values()]) > 0.5, extra
    # s_q is one value per query: alone it changes no query's order across users.
    only_query = _distinct_orders_per_query(
        simulate(SimulatorConfig(**args, **dict(OFF, query_sensitivity_std=0.5))))
    assert set(only_query.values()) == {1}


def test_reference_scorers_headroom_is_zero_without_the_additions():
    off = reference_metrics(reference_space(simulate(SimulatorConfig(**SMALL, num_items=500,
                                                                     **OFF))))
    on = reference_metrics(reference_space(simulate(SimulatorConfig(**SMALL, num_items=500))))
    for metrics in (off, on):
        assert metrics["ceiling (true p)"]["ndcg_at_10"] == pytest.approx(1.0)
    # θ_q and t_u shift a whole request: the oracles rank every request exactly.
    assert off["query-preference oracle"]["ndcg_at_10"] == pytest.approx(1.0)
    assert off["no-preference oracle"]["ndcg_at_10"] == pytest.approx(1.0)
    assert (on["ceiling (true p)"]["ndcg_at_10"] > on["query-preference oracle"]["ndcg_at_10"]
            > on["no-preference oracle"]["ndcg_at_10"] > on["true level"]["ndcg_at_10"])
    # Across requests the offsets matter: AUC falls as the oracle knows less.
    assert (off["ceiling (true p)"]["auc"] > off["query-preference oracle"]["auc"]
            > off["no-preference oracle"]["auc"])


def test_homedepot_items_are_their_own_interest_groups():
    sim_args = _catalogue_args("homedepot")
    from prectr_tf.data.simulator.catalogue import build_catalogue  # noqa: PLC0415
    catalogue = build_catalogue(SimulatorConfig(**SMALL, **sim_args), np.random.default_rng(0))
    np.testing.assert_array_equal(catalogue.item_interest_groups[:, 0],
                                  np.arange(catalogue.num_items))


@pytest.mark.parametrize("field, value", [("interest_weight", -1.0),
                                          ("user_sensitivity_std", float("inf")),
                                          ("query_sensitivity_std", -0.1),
                                          ("interest_dim", 0)])
def test_bad_preference_settings_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"SimulatorConfig.{field}"):
        SimulatorConfig(**{field: value})
