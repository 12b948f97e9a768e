"""Simulated users: activity (Zipf, with cold-start users) and relevance tolerance."""

import dataclasses

import numpy as np


@dataclasses.dataclass
class Users:
    """The user population.

    Attributes:
        ids: object [U] of str (`"u<n>"`).
        num_requests: int64 [U] requests each user makes (>= 1).
        tolerance: float64 [U] personal relevance tolerance t_u, in levels:
            positive means the user clicks items that many levels below the
            query's population threshold as readily as the population clicks
            at it.
    """

    ids: np.ndarray
    num_requests: np.ndarray
    tolerance: np.ndarray


def draw_users(config, rng):
    """Draw activity and tolerance for `config.num_users` users.

    A random `config.num_cold_users` of them make exactly one request. Each
    other user makes two, plus a share of the remaining requests drawn as a
    multinomial with Zipf weights rank^-`activity_zipf_exponent` over a random
    ranking of those users. Tolerances are N(0, `user_tolerance_std`²).

    Args:
        config: `SimulatorConfig`.
        rng: numpy `Generator`.

    Returns:
        `Users`; `num_requests` sums to `config.num_requests`.

    Example:
    >>> from prectr_tf.data.simulator.config import SimulatorConfig
    >>> config = SimulatorConfig(num_users=10, num_requests=50, cold_start_share=0.3)
    >>> users = draw_users(config, np.random.default_rng(0))
    >>> int(users.num_requests.sum()), int((users.num_requests == 1).sum())
    (50, 3)
    """
    num_users, num_cold = config.num_users, config.num_cold_users
    ranking = rng.permutation(num_users)
    cold, active = ranking[:num_cold], ranking[num_cold:]
    counts = np.ones(num_users, np.int64)
    if len(active):
        extra = config.num_requests - num_cold - 2 * len(active)
        weight = np.arange(1, len(active) + 1, dtype=np.float64) ** -config.activity_zipf_exponent
        counts[active] = 2 + rng.multinomial(extra, weight / weight.sum())
    counts[cold] = 1
    return Users(
        ids=np.array([f"u{i}" for i in range(num_users)], dtype=object),
        num_requests=counts,
        tolerance=rng.normal(0.0, config.user_tolerance_std, num_users))
