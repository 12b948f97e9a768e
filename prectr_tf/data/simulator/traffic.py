"""The request stream: which user searches which query, when."""

import dataclasses

import numpy as np


@dataclasses.dataclass
class Requests:
    """Requests in time order.

    Attributes:
        user: int64 [R] user index of each request.
        query: int64 [R] query index of each request.
        timestamp: int64 [R] strictly increasing times in
            [0, `time_span_seconds`).
    """

    user: np.ndarray
    query: np.ndarray
    timestamp: np.ndarray


def zipf_weights(num, exponent, rng):
    """Probabilities rank^-exponent over a random ranking of `num` things."""
    weight = np.empty(num)
    weight[rng.permutation(num)] = np.arange(1, num + 1, dtype=np.float64) ** -exponent
    return weight / weight.sum()


def draw_requests(config, users, num_queries, rng):
    """Place every user's requests in time and give each a query.

    Request times are `num_requests` distinct integers, uniform over the time
    span; each user's requests go to random slots, so a user's activity is
    spread over the whole span. Queries are drawn independently per request
    with Zipf popularity (`zipf_weights` with `query_zipf_exponent`).

    Args:
        config: `SimulatorConfig`.
        users: `Users`.
        num_queries: Q.
        rng: numpy `Generator`.

    Returns:
        `Requests`.
    """
    n = config.num_requests
    user = rng.permutation(np.repeat(np.arange(len(users.ids)), users.num_requests))
    # Sorted draws from [0, span - n] plus 0..n-1: distinct, uniform-ish, < span.
    timestamp = np.sort(rng.integers(0, config.time_span_seconds - n + 1, n)) + np.arange(n)
    query = rng.choice(num_queries, n, p=zipf_weights(num_queries, config.query_zipf_exponent,
                                                      rng))
    return Requests(user=user.astype(np.int64), query=query.astype(np.int64),
                    timestamp=timestamp.astype(np.int64))
