"""User-activity buckets: the one definition the simulator's statistics, the
builder and the sliced metrics share.

A user's activity at an impression is the number of their impressions
strictly before it (`user_event_count` in a built example). `cold` means none
— the cold-start slice that cross-user preference mining is meant to help.
`low` ends at 50: up to five earlier result pages of ten.
"""

import numpy as np

ACTIVITY_BUCKETS = ("cold", "low", "high")
DEFAULT_LOW_MAX = 50


def activity_bucket(event_count, low_max=DEFAULT_LOW_MAX):
    """Bucket index per count: 0 cold (0 events), 1 low (1..low_max), 2 high.

    Args:
        event_count: int or array of prior-event counts.
        low_max: the largest count still called `low`.

    Returns:
        int64 array (or scalar) of indices into `ACTIVITY_BUCKETS`.

    Example:
    >>> activity_bucket([0, 1, 50, 51]).tolist()
    [0, 1, 1, 2]
    """
    counts = np.asarray(event_count, dtype=np.int64)
    if np.any(counts < 0):
        raise ValueError("event_count must be >= 0")
    return np.where(counts == 0, 0, np.where(counts <= low_max, 1, 2)).astype(np.int64)
