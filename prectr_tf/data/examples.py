"""From a validated impression log to example columns (DESIGN §3).

`ExampleBuilder` derives, for every impression, `query_id`, the user's history
and the query's cross-user context, all strictly before the impression's
timestamp, and yields the result in chunks of columns keyed exactly as
`DataSchema.example_features()` names them. Impressions of one request share
a timestamp, so none of them sees another: a request never leaks into itself.
"""

import dataclasses

import numpy as np
import pandas as pd

from prectr_tf.data.histories import SortedEvents, last_events_before
from prectr_tf.data.query_normalization import query_ids_for
from prectr_tf.data.schema import EVENT_FIELDS, HISTORY_LISTS, LABELS

EVENT_FILTERS = ("all", "clicked")


@dataclasses.dataclass(frozen=True)
class HistoryConfig:
    """Which log rows count as past events.

    Args:
        history_events: events of `user_history`: `"clicked"` (default: the
            user's click sequence, as in DIN-style behaviour modelling) or
            `"all"` impressions.
        context_events: events of `query_context`: `"all"` (default: other
            users' impressions with their click flags and relevance levels,
            so the model sees how the population responds to each level
            under this query) or `"clicked"`.
    """

    history_events: str = "clicked"
    context_events: str = "all"

    def __post_init__(self):
        for name in ("history_events", "context_events"):
            if getattr(self, name) not in EVENT_FILTERS:
                raise ValueError(f"{name} must be one of {EVENT_FILTERS}, "
                                 f"got {getattr(self, name)!r}")


def _event_mask(frame, which):
    if which == "all":
        return np.ones(len(frame), dtype=bool)
    return frame["click"].to_numpy() == 1


class ExampleBuilder:
    """Builds example columns for a log, chunk by chunk.

    Args:
        frame: a validated log (`validate_log` output), any row order.
        schema: the `DataSchema` (list lengths L_u, L_g).
        config: a `HistoryConfig`.

    Example:
    >>> from prectr_tf.data.schema import DataSchema
    >>> from prectr_tf.data.validation import validate_log
    >>> schema = DataSchema(history_length=5, num_item_features=4)
    >>> frame, _ = validate_log(sim.log, schema, "simulated")
    >>> builder = ExampleBuilder(frame, schema)
    >>> columns = builder.columns(np.arange(100))   # the first 100 impressions
    >>> columns["user_history_item_id"].shape
    (100, 5)
    """

    def __init__(self, frame, schema, config=HistoryConfig()):
        self.frame = frame
        self.schema = schema
        self.config = config
        timestamps = frame["timestamp"].to_numpy(dtype=np.int64)
        uniq_times, self.time_rank = np.unique(timestamps, return_inverse=True)
        num_times = len(uniq_times)
        self.user = pd.factorize(frame["user_id"].to_numpy(dtype=object))[0].astype(np.int64)
        # A frame may carry `query_id` already (the Beam builder hashes each
        # file's queries once, not once per group).
        self.query_id = (frame["query_id"].to_numpy(dtype=np.int64) if "query_id" in frame
                         else query_ids_for(frame["query"].to_numpy(dtype=object)))
        self.query = pd.factorize(self.query_id)[0].astype(np.int64)
        pair = pd.factorize(self.user * (self.query.max(initial=0) + 1) + self.query)[0]

        # Activity counts every earlier impression of the user, whatever the
        # history keeps, so buckets mean the same under any HistoryConfig.
        self.user_impressions = SortedEvents(self.user, self.time_rank, num_times)
        self.history_rows = np.flatnonzero(_event_mask(frame, config.history_events))
        rows = self.history_rows
        self.history_events = SortedEvents(self.user[rows], self.time_rank[rows], num_times)

        self.context_rows = np.flatnonzero(_event_mask(frame, config.context_events))
        rows = self.context_rows
        self.context_events = SortedEvents(self.query[rows], self.time_rank[rows], num_times)
        self.own_context_events = SortedEvents(pair[rows], self.time_rank[rows], num_times)
        self.pair = pair.astype(np.int64)
        self.event_values = {f.name: self._event_column(f.name) for f in EVENT_FIELDS}

    def _event_column(self, name):
        if name == "query_id":
            return self.query_id
        return self.frame[name].to_numpy()

    def lists(self, rows, names=HISTORY_LISTS):
        """`{list_name: EventLists}` for impressions `rows`, indices as log rows."""
        t = self.time_rank[rows]
        out = {}
        if "user_history" in names:
            history = last_events_before(self.history_events, self.user[rows], t,
                                         self.schema.history_length)
            history.index = _to_log_rows(history.index, self.history_rows)
            out["user_history"] = history
        if "query_context" in names:
            context = last_events_before(
                self.context_events, self.query[rows], t, self.schema.context_length,
                event_user=self.user[self.context_rows], user=self.user[rows],
                own_events=self.own_context_events, user_group=self.pair[rows])
            context.index = _to_log_rows(context.index, self.context_rows)
            out["query_context"] = context
        return out

    def columns(self, rows, lists=HISTORY_LISTS):
        """Example columns (features and labels) for impressions `rows`.

        List features are [n, L] arrays padded with the schema's pad value;
        `<list>_length` says how many entries are real. With `lists` a subset
        of `HISTORY_LISTS`, only those lists (and `user_event_count` with
        `user_history`) — the Beam builder computes each list from its own
        group (the user's or the query's events) and joins the parts.
        """
        out = {}
        for name, _, _ in self.schema.example_features():
            if name in self.frame.columns:
                out[name] = self.frame[name].to_numpy()[rows]
        for name in LABELS:
            out[name] = self.frame[name].to_numpy()[rows]
        out["query_id"] = self.query_id[rows]
        out.update(self.list_columns(rows, lists))
        return out

    def list_columns(self, rows, lists=HISTORY_LISTS):
        """The history-list columns of `rows` (see `columns`)."""
        out = {}
        if "user_history" in lists:
            lo, hi = self.user_impressions.bounds(self.user[rows], self.time_rank[rows])
            out["user_event_count"] = (hi - lo).astype(np.int64)
        for list_name, event_lists in self.lists(rows, lists).items():
            valid = event_lists.index >= 0
            safe = np.where(valid, event_lists.index, 0)
            for f in EVENT_FIELDS:
                values = self.event_values[f.name][safe]
                pad = self.schema.padding_value(f.dtype)
                out[self.schema.list_feature_name(list_name, f.name)] = np.where(valid, values, pad)
            out[self.schema.list_length_name(list_name)] = event_lists.length
        return out


def _to_log_rows(index, event_rows):
    if len(event_rows) == 0:  # e.g. a user who never clicked: every entry is padding
        return np.full_like(index, -1)
    return np.where(index >= 0, event_rows[np.maximum(index, 0)], -1)
