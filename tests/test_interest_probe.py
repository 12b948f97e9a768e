"""The interest-learnability probe: the simulator's preferences redrawn alone,
and users' interests estimated from their training impressions (issue 10)."""

import numpy as np
import pytest

from prectr_tf.data.simulator import SimulatorConfig, simulate
from prectr_tf.data.simulator.simulate import simulated_preferences
from prectr_tf.data.simulator.stats import request_frame
from prectr_tf.evaluation.click_terms import click_terms
from prectr_tf.evaluation.headroom import reference_space
from prectr_tf.evaluation.interest_probe import (category_item_vectors, estimate_interests,
                                                 probe_scores)
from prectr_tf.evaluation.soft_metrics import full_space_metrics

# Few users with many requests each: enough clicks to pin each z_u down.
DENSE = dict(seed=6, num_users=30, num_requests=3000, num_queries=60, num_candidates=30,
             num_items=400)


@pytest.fixture(scope="module")
def dense():
    sim = simulate(SimulatorConfig(**DENSE))
    table = reference_space(sim, eval_fraction=0.2)
    train = sorted(set(request_frame(sim.log).index) - set(table["request_id"]))
    return sim, table, train


def test_redrawn_preferences_are_the_simulations(dense):
    """`simulated_preferences` gives the z_u and v_i behind the log's clicks:
    the interest weight times their dot product is the recovered interest term,
    and the probe with the true z_u scores the true click logit."""
    sim, table, _ = dense
    prefs = simulated_preferences(sim.config)
    terms = click_terms(sim, table)
    scores = probe_scores(sim, table, prefs.user_interest)
    np.testing.assert_allclose(scores, terms[["relevance", "interest", "popularity"]].sum(axis=1),
                               atol=1e-9)
    assert full_space_metrics(table, scores)["ndcg_at_10"] == pytest.approx(1.0, abs=1e-12)


def test_many_impressions_reveal_the_interests_and_none_reveal_nothing(dense):
    sim, table, train = dense
    prefs = simulated_preferences(sim.config)
    z_hat = estimate_interests(sim, train)
    requests = request_frame(sim.log)
    seen = requests.loc[train, "user_id"].value_counts()
    rows = sim.users["user_id"].isin(seen.index[seen >= 50]).to_numpy()
    assert rows.sum() >= 15
    # Per user, the estimate points where the truth does.
    cosine = np.sum(z_hat[rows] * prefs.user_interest[rows], axis=1) / (
        np.linalg.norm(z_hat[rows], axis=1) * np.linalg.norm(prefs.user_interest[rows], axis=1))
    assert np.median(cosine) > 0.8
    # Ranking with the estimate recovers most of what the interests are worth.
    blind = click_terms(sim, table)["interest-blind, user and query preference"].to_numpy()
    ndcg_blind = full_space_metrics(table, blind)["ndcg_at_10"]
    ndcg_probe = full_space_metrics(table, probe_scores(sim, table, z_hat))["ndcg_at_10"]
    assert ndcg_probe - ndcg_blind > 0.5 * (1.0 - ndcg_blind)


def test_few_impressions_stay_near_the_prior_and_none_stay_at_it(dense):
    sim, _, train = dense
    requests = request_frame(sim.log).loc[train]
    first = requests.sort_values("timestamp").index[:100]
    z_hat = estimate_interests(sim, first)
    seen = sim.users["user_id"].isin(requests.loc[first, "user_id"]).to_numpy()
    assert (~seen).any() and np.abs(z_hat[~seen]).max() == 0.0
    full = estimate_interests(sim, train)
    # Shrinkage: less evidence, shorter vectors (N(0, I) prior, mode at 0).
    assert np.linalg.norm(z_hat[seen], axis=1).mean() < np.linalg.norm(full[seen], axis=1).mean()
    np.testing.assert_allclose(z_hat, estimate_interests(sim, first, tol=1e-11), atol=1e-4)


def test_knowing_items_only_by_category_recovers_part_of_the_interests(dense):
    """v_i = category vector + brand vector: the category-level probe's item
    vectors are one per category, its ranking lies between the interest-blind
    one and the probe that knows every v_i."""
    sim, table, train = dense
    by_category = category_item_vectors(sim)
    category = sim.items["item_category"].to_numpy()
    for name in np.unique(category):
        rows = by_category[category == name]
        np.testing.assert_allclose(rows, np.broadcast_to(rows[0], rows.shape))
    true = simulated_preferences(sim.config).item_vector
    np.testing.assert_allclose(by_category[category == category[0]][0],
                               true[category == category[0]].mean(axis=0))
    blind = click_terms(sim, table)["interest-blind, user and query preference"].to_numpy()
    ndcg = {name: full_space_metrics(table, scores)["ndcg_at_10"] for name, scores in (
        ("blind", blind),
        ("category", probe_scores(sim, table, estimate_interests(sim, train, by_category),
                                  by_category)),
        ("item", probe_scores(sim, table, estimate_interests(sim, train))))}
    assert ndcg["blind"] < ndcg["category"] < ndcg["item"]
