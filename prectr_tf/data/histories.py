"""Leakage-free history lists, vectorised over a whole log.

`last_events_before` answers, for every impression at once: which are the last
`max_len` events of the same group (the same user for `user_history`, the same
normalised query for `query_context`) strictly before the impression's
timestamp — optionally leaving out events of the impression's own user (the
cross-user context must not echo the user's own behaviour).

How, without a Python loop per impression: events are sorted by
(group, time rank) into one int64 key, so `searchsorted` finds for every
impression the end `hi` of its group's strictly-earlier events. Without the
own-user exclusion the answer is the `min(count, L)` events ending at `hi`.
With it, if the user has `c` own events in the group before the impression,
the last `L` foreign events all lie within the last `L + c` events (at most
`c` of those can be own), so a ragged window of that width, minus own events,
keeps exactly the last `L` foreign ones.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass
class EventLists:
    """Indices of each impression's events, chronological, padded with -1.

    Attributes:
        index: int64 [n, max_len] indices into the event arrays, -1 padding
            after the `length` valid entries (oldest first).
        length: int64 [n] number of valid entries (<= max_len).
        total: int64 [n] number of qualifying events before the impression,
            uncapped (e.g. the user's activity).
    """

    index: np.ndarray
    length: np.ndarray
    total: np.ndarray


class SortedEvents:
    """Events sorted by (group, time) for repeated look-ups.

    Args:
        group: int64 [m] group code of each event (e.g. user code).
        time_rank: int64 [m] dense rank of each event's timestamp.
        num_time_ranks: number of distinct time ranks (key stride).
    """

    def __init__(self, group, time_rank, num_time_ranks):
        self.stride = np.int64(num_time_ranks + 1)
        key = group.astype(np.int64) * self.stride + time_rank.astype(np.int64)
        # Stable, so events with equal (group, time) keep log order.
        self.order = np.argsort(key, kind="stable")
        self.key = key[self.order]

    def bounds(self, group, time_rank):
        """For queries (group, time rank): [lo, hi) positions of the group's
        events strictly earlier than the time, in sorted order."""
        base = group.astype(np.int64) * self.stride
        lo = np.searchsorted(self.key, base, side="left")
        hi = np.searchsorted(self.key, base + time_rank.astype(np.int64), side="left")
        return lo, hi


def last_events_before(events, group, time_rank, max_len, event_user=None, user=None,
                       own_events=None, user_group=None):
    """The last `max_len` events of each impression's group before its time.

    Args:
        events: `SortedEvents` of the candidate events, grouped by `group`.
        group: int64 [n] group code of each impression.
        time_rank: int64 [n] time rank of each impression.
        max_len: L, the list length.
        event_user: int64 [m] user code of each event (original event order);
            with `user`, `own_events` and `user_group`: exclude own events.
        user: int64 [n] user code of each impression.
        own_events: `SortedEvents` of the same events grouped by `user_group`
            codes (the (user, group) pair), to count own events.
        user_group: int64 [n] (user, group) pair code of each impression.

    Returns:
        `EventLists` with indices into the original event order.
    """
    lo, hi = events.bounds(group, time_rank)
    available = hi - lo
    n = len(hi)
    index = np.full((n, max_len), -1, dtype=np.int64)
    length = np.zeros(n, dtype=np.int64)
    if event_user is None:
        _gather_last(events, np.arange(n), hi, np.minimum(available, max_len),
                     None, None, max_len, index, length)
        return EventLists(index, length, available.astype(np.int64))
    own_lo, own_hi = own_events.bounds(user_group, time_rank)
    own_count = own_hi - own_lo
    exact_width = np.minimum(available, max_len + own_count)
    # A window of L + c is exact but c (own events) can be huge for a user who
    # dominates a query; start narrow and widen only the rows that came up short.
    extra, pending = max_len, np.arange(n)
    while pending.size:
        width = np.minimum(exact_width[pending], max_len + extra)
        kept = _gather_last(events, pending, hi[pending], width, event_user, user[pending],
                            max_len, index, length)
        done = (kept >= max_len) | (width >= exact_width[pending])
        pending, extra = pending[~done], extra * 4
    return EventLists(index, length, (available - own_count).astype(np.int64))


def _ragged_positions(hi, width):
    """Concatenated ranges [hi - width, hi) for each row."""
    starts = np.repeat(hi - width, width)
    offsets = np.arange(width.sum()) - np.repeat(np.cumsum(width) - width, width)
    return starts + offsets


def _gather_last(events, rows, hi, width, event_user, user, max_len, index, length):
    """From the ragged windows [hi - width, hi) of `rows`, write the last
    `max_len` events not by the row's own user (all events when `event_user`
    is None) chronologically into `index[rows]`, their count into
    `length[rows]`. Returns how many such events each window held."""
    segment = np.repeat(np.arange(len(rows)), width)
    sorted_pos = _ragged_positions(hi, width)
    if event_user is None:
        keep = np.ones(len(sorted_pos), dtype=bool)
    else:
        keep = event_user[events.order[sorted_pos]] != user[segment]
    kept_per_row = np.bincount(segment[keep], minlength=len(rows))
    # Rank of each kept event counted from the end of its window (0 = newest).
    rank_from_end = np.repeat(np.cumsum(kept_per_row), width) - np.cumsum(keep)
    row_length = np.minimum(kept_per_row, max_len)
    take = keep & (rank_from_end < max_len)
    column = np.repeat(row_length, width)[take] - 1 - rank_from_end[take]
    index[rows] = -1
    index[rows[segment[take]], column] = events.order[sorted_pos[take]]
    length[rows] = row_length
    return kept_per_row
