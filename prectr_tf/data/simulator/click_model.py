"""The click model: relevance-driven attractiveness times position bias.

P(click | request, item at position p) = a · e(p), with attractiveness

    a = sigmoid(logit(click_base_rate)
                + relevance_slope · (level − θ_q + t_u)
                + popularity_weight · popularity)

where θ_q is the query's population threshold and t_u the user's tolerance,
and examination e(p) = (1 + p)^-position_bias_exponent (e(0) = 1).
"""

import numpy as np


def query_thresholds(config, num_queries, rng):
    """θ_q ~ N(`config.threshold`, `query_tolerance_std`²) per query, float64 [Q]."""
    return config.threshold + rng.normal(0.0, config.query_tolerance_std, num_queries)


def attractiveness(level, threshold, tolerance, popularity, config):
    """Click probability if examined, broadcast over the inputs.

    Args:
        level: int array of true relevance levels, e.g. [R, C].
        threshold: θ_q, broadcastable to `level` (e.g. [R, 1]).
        tolerance: t_u, broadcastable to `level` (e.g. [R, 1]).
        popularity: standardised item popularity, same shape as `level`.
        config: `SimulatorConfig`.

    Returns:
        float64 array of probabilities, the shape of `level`.

    Example:
    >>> from prectr_tf.data.simulator.config import SimulatorConfig
    >>> config = SimulatorConfig(click_base_rate=0.25)
    >>> float(attractiveness(np.array(2), 2.0, 0.0, 0.0, config))
    0.25
    """
    base = np.log(config.click_base_rate / (1.0 - config.click_base_rate))
    logit = (base + config.relevance_slope * (level - threshold + tolerance)
             + config.popularity_weight * popularity)
    return 1.0 / (1.0 + np.exp(-logit))


def examination_probability(position, exponent):
    """e(p) = (1 + p)^-exponent for 0-based positions.

    Example:
    >>> examination_probability(np.arange(3), 1.0).tolist()
    [1.0, 0.5, 0.3333333333333333]
    """
    return (1.0 + np.asarray(position, dtype=np.float64)) ** -exponent
