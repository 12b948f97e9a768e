"""The click model's terms recovered per candidate, and a score's decomposition
onto them (issue 10's diagnostic)."""

import numpy as np
import pandas as pd
import pytest

from prectr_tf.data.simulator import SimulatorConfig, simulate
from prectr_tf.evaluation.click_terms import BLIND_SCORERS, TERMS, click_terms, score_decomposition
from prectr_tf.evaluation.headroom import reference_space

SMALL = dict(seed=4, num_users=150, num_requests=800, num_queries=60, num_candidates=25,
             num_items=400)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@pytest.fixture(scope="module")
def default_terms():
    sim = simulate(SimulatorConfig(**SMALL))
    table = reference_space(sim, eval_fraction=0.5)
    return sim, table, click_terms(sim, table)


def test_the_terms_add_up_to_the_true_click_logit(default_terms):
    sim, table, terms = default_terms
    base = np.log(sim.config.click_base_rate / (1 - sim.config.click_base_rate))
    p = table["click_prob"].to_numpy()
    exact = p * (1 - p) > 1e-6  # where float64 still resolves the logit
    assert exact.mean() > 0.9
    logit = np.log(p[exact]) - np.log1p(-p[exact])
    np.testing.assert_allclose(terms[list(TERMS)].sum(axis=1)[exact] + base, logit, atol=1e-7)
    # The interest-blind scorer with every preference is the logit less its interest term.
    np.testing.assert_allclose(terms["interest-blind, user and query preference"][exact]
                               + terms["interest"][exact] + base, logit, atol=1e-7)


def test_the_interest_term_is_the_weighted_affinity_of_user_and_item(default_terms):
    """Per (user, item), whatever the query; linear in `interest_weight` at the
    same seed (the interest draws have their own random stream); zero when off."""
    sim, table, terms = default_terms
    users = pd.Series(table["request_id"]).map(
        sim.log.groupby("request_id")["user_id"].first())
    pairs = pd.DataFrame({"user": users.to_numpy(), "item": table["item_id"].to_numpy(),
                          "interest": terms["interest"].to_numpy()})
    spread = pairs.groupby(["user", "item"])["interest"].agg(["max", "min", "size"])
    assert (spread["size"] > 1).sum() > 20  # the property is checked on repeated pairs
    assert float((spread["max"] - spread["min"]).max()) < 1e-9
    assert 0.7 < terms["interest"].std() < 1.3  # affinity has variance 1 by construction

    doubled = simulate(SimulatorConfig(**SMALL, interest_weight=2.0))
    doubled_table = reference_space(doubled, eval_fraction=0.5)
    np.testing.assert_allclose(click_terms(doubled, doubled_table)["interest"],
                               2.0 * terms["interest"].to_numpy(), atol=1e-6)
    off = simulate(SimulatorConfig(**SMALL, interest_weight=0.0))
    off_table = reference_space(off, eval_fraction=0.5)
    assert np.abs(click_terms(off, off_table)["interest"]).max() < 1e-9


def test_blind_scorers_drop_the_preferences_they_name():
    """Without sensitivities and tolerance spreads every blind scorer is the same."""
    flat = simulate(SimulatorConfig(**SMALL, user_sensitivity_std=0.0, query_sensitivity_std=0.0,
                                    user_tolerance_std=0.0, query_tolerance_std=0.0))
    table = reference_space(flat, eval_fraction=0.5)
    terms = click_terms(flat, table)
    for name in BLIND_SCORERS:
        np.testing.assert_allclose(terms[name], terms["relevance"] + terms["popularity"],
                                   atol=1e-9)


def test_a_table_from_another_simulation_is_refused(default_terms):
    sim, table, _ = default_terms
    other = table.copy()
    other["click_prob"] = np.clip(other["click_prob"] * 1.01, 1e-9, 1 - 1e-9)
    with pytest.raises(ValueError, match="no_preference_oracle's interest term"):
        click_terms(sim, other)
    missing = table.copy()
    missing.loc[missing.index[0], "item_id"] = "no-such-item"
    with pytest.raises(ValueError, match="item_id 'no-such-item'"):
        click_terms(sim, missing)


def test_decomposition_of_the_true_logit_and_of_a_relevance_only_score():
    rng = np.random.default_rng(0)
    n_req, n_cand = 40, 12
    table = pd.DataFrame({"request_id": np.repeat([f"r{i}" for i in range(n_req)], n_cand)})
    terms = pd.DataFrame({"relevance": rng.normal(0, 2, n_req * n_cand),
                          "interest": rng.normal(0, 1, n_req * n_cand),
                          "popularity": rng.normal(0, 0.3, n_req * n_cand)})
    shift = np.repeat(rng.normal(0, 3, n_req), n_cand)  # per request: cancels within it
    true = score_decomposition(table, terms, _sigmoid(terms.sum(axis=1) + shift))
    assert true == pytest.approx({"relevance": 1.0, "interest": 1.0, "popularity": 1.0,
                                  "r2": 1.0}, abs=1e-9)
    relevance_only = score_decomposition(table, terms, _sigmoid(0.5 * terms["relevance"] + shift))
    assert relevance_only == pytest.approx({"relevance": 0.5, "interest": 0.0, "popularity": 0.0,
                                            "r2": 1.0}, abs=1e-9)
    # A score the terms do not explain: weights against numpy's lstsq on the demeaned data.
    noise = rng.normal(0, 1, n_req * n_cand)
    scores = _sigmoid(terms["relevance"] + 0.2 * terms["interest"] + noise)
    got = score_decomposition(table, terms, scores)
    frame = pd.concat([terms, pd.Series(np.log(scores / (1 - scores)), name="y")], axis=1)
    demeaned = frame - frame.groupby(table["request_id"]).transform("mean")
    w, *_ = np.linalg.lstsq(demeaned[list(TERMS)].to_numpy(), demeaned["y"].to_numpy(), rcond=None)
    residual = demeaned["y"] - demeaned[list(TERMS)].to_numpy() @ w
    assert got["relevance"] == pytest.approx(w[0], abs=1e-9)
    assert got["interest"] == pytest.approx(w[1] / w[0], abs=1e-9)
    assert got["r2"] == pytest.approx(1 - (residual ** 2).sum() / (demeaned["y"] ** 2).sum(),
                                      abs=1e-9)
    assert 0.2 < got["r2"] < 0.95
    with pytest.raises(ValueError, match="probabilities"):
        score_decomposition(table, terms, np.full(len(table), 1.5))
