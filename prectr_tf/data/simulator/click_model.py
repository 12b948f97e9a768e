"""The click model: attractiveness times position bias.

P(click | request, item at position p) = a · e(p), with attractiveness

    a = sigmoid(logit(click_base_rate)
                + relevance_slope · exp(s_u + s_q) · (level − θ_q + t_u)
                + interest_weight · affinity(u, item)
                + popularity_weight · popularity)

where θ_q is the query's population threshold, t_u the user's tolerance,
s_u and s_q the user's and the query's relevance sensitivities, affinity the
dot product of the user's interest vector and the item's latent vector, and
examination e(p) = (1 + p)^-position_bias_exponent (e(0) = 1).
"""

import dataclasses

import numpy as np


def query_thresholds(config, num_queries, rng):
    """θ_q ~ N(`config.threshold`, `query_tolerance_std`²) per query, float64 [Q]."""
    return config.threshold + rng.normal(0.0, config.query_tolerance_std, num_queries)


@dataclasses.dataclass
class Preferences:
    """What users and queries trade relevance against, drawn per simulation.

    Attributes:
        user_sensitivity: float64 [U] s_u ~ N(0, `user_sensitivity_std`²).
        query_sensitivity: float64 [Q] s_q ~ N(0, `query_sensitivity_std`²).
        user_interest: float64 [U, D] z_u ~ N(0, I).
        item_vector: float64 [I, D] v_i, the sum of the item's groups'
            vectors, each N(0, I / (D·G)) for G groups per item, so that
            z_u · v_i has mean 0 and variance 1.
    """

    user_sensitivity: np.ndarray
    query_sensitivity: np.ndarray
    user_interest: np.ndarray
    item_vector: np.ndarray

    def affinity(self, user, items, chunk=8192):
        """affinity(u, i) = z_u · v_i for `user` [R] and `items` [R, C] → [R, C]."""
        out = np.empty(items.shape, np.float64)
        # In chunks of requests: the gathered [R, C, D] item vectors of a
        # million-impression log would take gigabytes.
        for start in range(0, len(user), chunk):
            rows = slice(start, start + chunk)
            out[rows] = np.einsum("rd,rcd->rc", self.user_interest[user[rows]],
                                  self.item_vector[items[rows]])
        return out


def draw_preferences(config, num_users, catalogue, sensitivity_rng, interest_rng):
    """Draw `Preferences` for `num_users` users and `catalogue`'s queries and items.

    Args:
        config: `SimulatorConfig` (`user_sensitivity_std`,
            `query_sensitivity_std`, `interest_dim`).
        num_users: U.
        catalogue: `Catalogue` (its queries and `item_interest_groups`).
        sensitivity_rng, interest_rng: numpy `Generator`s of their own, so the
            other steps' draws do not depend on these.

    Example:
    >>> from prectr_tf.data.simulator.config import SimulatorConfig
    >>> from types import SimpleNamespace
    >>> cat = SimpleNamespace(num_queries=3, num_interest_groups=2,
    ...                       item_interest_groups=np.array([[0], [1], [0]]))
    >>> prefs = draw_preferences(SimulatorConfig(), 4, cat, np.random.default_rng(0),
    ...                          np.random.default_rng(1))
    >>> prefs.affinity(np.array([0]), np.array([[0, 2]])).shape
    (1, 2)
    """
    s_u = sensitivity_rng.normal(0.0, config.user_sensitivity_std, num_users)
    s_q = sensitivity_rng.normal(0.0, config.query_sensitivity_std, catalogue.num_queries)
    dim = config.interest_dim
    groups = catalogue.item_interest_groups
    z_u = interest_rng.standard_normal((num_users, dim))
    group_vectors = interest_rng.normal(0.0, (dim * groups.shape[1]) ** -0.5,
                                        (catalogue.num_interest_groups, dim))
    return Preferences(user_sensitivity=s_u, query_sensitivity=s_q, user_interest=z_u,
                       item_vector=group_vectors[groups].sum(axis=1))


def attractiveness(level, threshold, tolerance, popularity, config, sensitivity=0.0,
                   affinity=0.0):
    """Click probability if examined, broadcast over the inputs.

    Args:
        level: int array of true relevance levels, e.g. [R, C].
        threshold: θ_q, broadcastable to `level` (e.g. [R, 1]).
        tolerance: t_u, broadcastable to `level` (e.g. [R, 1]).
        popularity: standardised item popularity, same shape as `level`.
        config: `SimulatorConfig`.
        sensitivity: s_u + s_q, broadcastable to `level` (default 0.0).
        affinity: user–item affinity, broadcastable to `level` (default 0.0).

    Returns:
        float64 array of probabilities, the shape of `level`.

    Example:
    >>> from prectr_tf.data.simulator.config import SimulatorConfig
    >>> config = SimulatorConfig(click_base_rate=0.25)
    >>> float(attractiveness(np.array(2), 2.0, 0.0, 0.0, config))
    0.25
    """
    base = np.log(config.click_base_rate / (1.0 - config.click_base_rate))
    # exp(0) is exactly 1 and + 0.0 changes nothing: with both terms off the
    # logit is bit for bit the one of the model without them.
    slope = config.relevance_slope * np.exp(sensitivity)
    logit = (base + slope * (level - threshold + tolerance)
             + config.popularity_weight * popularity + config.interest_weight * affinity)
    return 1.0 / (1.0 + np.exp(-logit))


def examination_probability(position, exponent):
    """e(p) = (1 + p)^-exponent for 0-based positions.

    Example:
    >>> examination_probability(np.arange(3), 1.0).tolist()
    [1.0, 0.5, 0.3333333333333333]
    """
    return (1.0 + np.asarray(position, dtype=np.float64)) ** -exponent
