"""Can users' interests be learnt from the training log at all? A probe with
the simulator's truth (issue 10's diagnostic).

The models' scores put almost no weight on the click model's interest term
(`click_terms.score_decomposition`). Either the log does not reveal the
interests, or the models do not learn what it reveals. The probe gives the
best any learner could do: it knows the click model, every candidate's true
level, popularity and latent item vector v_i, the examination curve and the
users' and queries' sensitivities; only each user's interest vector z_u is
unknown, and it is estimated from that user's training impressions as the
posterior mode under the simulator's own prior z_u ~ N(0, I):

    max_z  Σ_impressions log P(click | e(p) · σ(offset + w · z_u · v_i)) − ‖z_u‖² / 2

Scoring the eval space with ẑ_u in place of z_u gives the ceiling of a
learner with perfect item geometry; users without training impressions keep
ẑ_u = 0. With `item_vectors=category_item_vectors(sim)` the probe knows
items only by category (v_i replaced by its category's mean): the ceiling of
a learner whose only item-side interest feature is the category id.

Example:
>>> z_hat = estimate_interests(sim, train_request_ids)         # doctest: +SKIP
>>> logit = probe_scores(sim, space.table, z_hat)               # doctest: +SKIP
>>> by_category = category_item_vectors(sim)                    # doctest: +SKIP
>>> z_cat = estimate_interests(sim, train_request_ids, by_category)  # doctest: +SKIP
"""

import numpy as np
import pandas as pd
import scipy.optimize
import scipy.sparse

from prectr_tf.data.simulator.click_model import examination_probability
from prectr_tf.data.simulator.simulate import simulated_preferences
from prectr_tf.data.simulator.stats import request_frame
from prectr_tf.evaluation.click_terms import TERMS, click_terms


def _user_and_item_rows(sim, table):
    """Each row's index into `sim.users` and into `sim.items`."""
    users = request_frame(sim.log)["user_id"].reindex(table["request_id"].astype(str))
    user_row = pd.Index(sim.users["user_id"]).get_indexer(users.to_numpy())
    item_row = pd.Index(sim.items["item_id"].astype(str)).get_indexer(
        table["item_id"].astype(str).to_numpy())
    return user_row, item_row


def _item_vectors(sim, item_vectors):
    """`item_vectors`, or the true v_i when None (redrawn only then)."""
    if item_vectors is None:
        return simulated_preferences(sim.config).item_vector
    return item_vectors


def category_item_vectors(sim):
    """Every item's latent vector replaced by the mean over the items of its
    category, E[v_i | category]: what a learner that tells items apart only
    by `item_category` can know of them (the synthetic catalogue's v_i is
    its category's vector plus its brand's).

    Args:
        sim: `SimulatedLog`.

    Returns:
        float64 [I, D], rows in `sim.items` order.
    """
    vectors = pd.DataFrame(simulated_preferences(sim.config).item_vector)
    return vectors.groupby(sim.items["item_category"].to_numpy()).transform("mean").to_numpy()


def estimate_interests(sim, train_request_ids, item_vectors=None, tol=1e-8):
    """The posterior mode of every user's interest vector given the
    impressions of `train_request_ids` (see the module doc).

    Args:
        sim: `SimulatedLog` with candidates.
        train_request_ids: the requests to learn from (e.g. the builder's
            train split).
        item_vectors: float64 [I, D] or None (default: the true v_i), the
            item vectors the learner is taken to know, rows in `sim.items`
            order (e.g. `category_item_vectors(sim)`).
        tol: float, L-BFGS gradient tolerance (default 1e-8).

    Returns:
        float64 [U, D], rows in `sim.users` order; zero for users without
        training impressions.
    """
    config = sim.config
    candidates = sim.candidates
    shown = candidates[candidates["shown"].to_numpy()
                       & candidates["request_id"].astype(str).isin(
                           pd.Index(train_request_ids).astype(str)).to_numpy()]
    shown = shown.reset_index(drop=True)
    terms = click_terms(sim, shown)
    # Everything but the interest term is known: the offset of the logit.
    offset = (np.log(config.click_base_rate / (1 - config.click_base_rate))
              + terms[[t for t in TERMS if t != "interest"]].sum(axis=1).to_numpy())
    examined = examination_probability(shown["position"].to_numpy(),
                                       config.position_bias_exponent)
    click = shown["click"].to_numpy() == 1
    user_row, item_row = _user_and_item_rows(sim, shown)
    features = config.interest_weight * _item_vectors(sim, item_vectors)[item_row]  # [N, D]
    num_users, dim = len(sim.users), features.shape[1]
    by_user = scipy.sparse.csr_matrix((np.ones(len(shown)), (user_row, np.arange(len(shown)))),
                                      shape=(num_users, len(shown)))

    def objective(flat):
        z = flat.reshape(num_users, dim)
        eta = offset + np.einsum("nd,nd->n", features, z[user_row])
        sig = 1.0 / (1.0 + np.exp(-eta))
        q = examined * sig
        loss = -np.sum(np.log(q[click])) - np.sum(np.log1p(-q[~click])) + 0.5 * np.sum(z * z)
        # d(-log-likelihood)/d eta: clicked -(1 - σ), not clicked e·σ(1 - σ)/(1 - e·σ).
        g_eta = np.where(click, -(1.0 - sig), examined * sig * (1.0 - sig) / (1.0 - q))
        grad = by_user @ (g_eta[:, None] * features) + z
        return loss, grad.ravel()

    result = scipy.optimize.minimize(objective, np.zeros(num_users * dim), jac=True,
                                     method="L-BFGS-B", options={"gtol": tol, "maxiter": 500})
    if not result.success:
        raise RuntimeError(f"the interest posterior did not converge: {result.message}")
    return result.x.reshape(num_users, dim)


def probe_scores(sim, table, interests, item_vectors=None):
    """The click logit of every row of `table` with `interests` (e.g.
    `estimate_interests(...)`) in place of the users' true interest vectors.

    Args:
        sim: `SimulatedLog`.
        table: `FullSpace.table` (or any frame `click_terms` reads).
        interests: float64 [U, D], rows in `sim.users` order.
        item_vectors: float64 [I, D] or None (default: the true v_i), as in
            `estimate_interests`.

    Returns:
        float64 [N] logits, aligned with `table`.
    """
    terms = click_terms(sim, table)
    user_row, item_row = _user_and_item_rows(sim, table)
    affinity = np.einsum("nd,nd->n", interests[user_row],
                         _item_vectors(sim, item_vectors)[item_row])
    return (terms["relevance"] + terms["popularity"]).to_numpy() \
        + sim.config.interest_weight * affinity
