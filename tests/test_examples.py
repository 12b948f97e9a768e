"""Histories and contexts: hand-worked answers, and a brute-force reference on
random logs (including a user who dominates a query, which exercises the
widening window of `last_events_before`)."""

import numpy as np
import pandas as pd
import pytest

from prectr_tf.data.examples import ExampleBuilder, HistoryConfig
from prectr_tf.data.schema import DataSchema
from prectr_tf.data.validation import validate_log

from hand_log import hand_log

SCHEMA = DataSchema(history_length=2, context_length=3)


@pytest.fixture(scope="module")
def hand_columns():
    frame, report = validate_log(hand_log(), SCHEMA, "hand")
    assert report.count == 0
    columns = ExampleBuilder(frame, SCHEMA).columns(np.arange(len(frame)))
    return frame, columns


def _list(columns, i, name):
    length = columns[f"{name.split('_')[0]}_{name.split('_')[1]}_length"][i]
    return columns[name][i][:length].tolist()


# impression id -> (user_history items, query_context items), worked by hand:
# history = the user's clicked items before t (L_u=2); context = all
# impressions under the normalised query by other users before t (L_g=3).
EXPECTED = {
    "r1-0": ([], []),
    "r2-0": ([], ["a", "b"]),
    "r3-0": (["a"], []),
    "r4-0": (["a", "d"], ["a", "c"]),          # r1 is u1's own: excluded
    "r5-0": ([], ["b", "a", "c"]),             # last 3 of r1.a r1.b r2.a r2.c
    "r6-0": (["c"], ["e", "f", "a"]),          # r2 is u2's own: excluded
}


@pytest.mark.parametrize("impression", sorted(EXPECTED))
def test_hand_built_log_known_answers(hand_columns, impression):
    frame, columns = hand_columns
    i = int(np.flatnonzero(frame["impression_id"] == impression)[0])
    history, context = EXPECTED[impression]
    assert _list(columns, i, "user_history_item_id") == history
    assert _list(columns, i, "query_context_item_id") == context
    # every earlier impression of the user, clicked or not
    prior = (frame["user_id"] == frame["user_id"][i]) & (frame["timestamp"] < frame["timestamp"][i])
    assert columns["user_event_count"][i] == prior.sum()


def test_requests_never_see_themselves_or_the_future(hand_columns):
    frame, columns = hand_columns
    ts = frame["timestamp"].to_numpy()
    for name in ("user_history", "query_context"):
        hist_ts = columns[f"{name}_timestamp"]
        valid = np.arange(hist_ts.shape[1])[None, :] < columns[f"{name}_length"][:, None]
        assert np.all(hist_ts[valid] < np.repeat(ts, valid.sum(1)))
        assert np.all(columns[f"{name}_relevance"][~valid] == -1)
        assert np.all(columns[f"{name}_item_id"][~valid] == "")


def test_query_ids_follow_normalisation(hand_columns):
    frame, columns = hand_columns
    drill = columns["query_id"][frame["query"].str.strip().str.lower() == "drill"]
    assert len(set(drill.tolist())) == 1
    assert columns["query_id"][frame["query"] == "saw"][0] != drill[0]


def test_padded_labels_and_event_fields(hand_columns):
    frame, columns = hand_columns
    i = int(np.flatnonzero(frame["impression_id"] == "r6-0")[0])
    # e (r4, unlabelled, no click), f (r4, rel 0, click), a (r5, rel 3, click)
    assert _list(columns, i, "query_context_relevance") == [-1, 0, 3]
    assert _list(columns, i, "query_context_click") == [0, 1, 1]
    assert _list(columns, i, "query_context_timestamp") == [300, 300, 300]
    assert columns["user_history_relevance"][i].tolist() == [2, -1]


def _brute_force(frame, user_mask, ctx_mask, schema, qids):
    user = frame["user_id"].to_numpy()
    ts = frame["timestamp"].to_numpy()
    hist, ctx = [], []
    for i in range(len(frame)):
        before = ts < ts[i]
        h = np.flatnonzero(before & user_mask & (user == user[i]))
        c = np.flatnonzero(before & ctx_mask & (qids == qids[i]) & (user != user[i]))
        # Equal timestamps keep log order (stable sort).
        hist.append(h[np.argsort(ts[h], kind="stable")][-schema.history_length:].tolist())
        ctx.append(c[np.argsort(ts[c], kind="stable")][-schema.context_length:].tolist())
    return hist, ctx


@pytest.mark.parametrize("seed,dominant", [(0, False), (1, True), (2, True)])
@pytest.mark.parametrize("config", [HistoryConfig(), HistoryConfig("all", "clicked")])
def test_matches_brute_force_reference(seed, dominant, config):
    rng = np.random.default_rng(seed)
    num_requests = 400
    users = rng.integers(0, 30, num_requests)
    if dominant:  # user 0 issues most requests of query 0: own events pile up
        users[: num_requests // 2] = 0
    queries = rng.integers(0, 8, num_requests)
    if dominant:
        queries[: num_requests // 2] = 0
    order = rng.permutation(num_requests)
    users, queries = users[order], queries[order]
    times = np.sort(rng.integers(0, 150, num_requests))
    rows = []
    for r in range(num_requests):
        for p in range(rng.integers(1, 4)):
            rows.append({"impression_id": f"{r}-{p}", "request_id": str(r),
                         "user_id": f"u{users[r]}", "query": f"q{queries[r]}",
                         "item_id": f"i{rng.integers(0, 50)}", "item_title": "",
                         "item_category": "", "position": p, "timestamp": times[r],
                         "click": int(rng.random() < 0.4), "relevance": int(rng.integers(0, 4))})
    schema = DataSchema(history_length=4, context_length=6)
    frame, _ = validate_log(pd.DataFrame(rows), schema, "random")
    builder = ExampleBuilder(frame, schema, config)
    clicked = frame["click"].to_numpy() == 1
    everything = np.ones(len(frame), bool)
    user_mask = clicked if config.history_events == "clicked" else everything
    ctx_mask = clicked if config.context_events == "clicked" else everything
    want_hist, want_ctx = _brute_force(frame, user_mask, ctx_mask, schema, builder.query_id)
    lists = builder.lists(np.arange(len(frame)))
    for i in range(len(frame)):
        got_h = lists["user_history"].index[i, :lists["user_history"].length[i]].tolist()
        got_c = lists["query_context"].index[i, :lists["query_context"].length[i]].tolist()
        assert got_h == want_hist[i], f"user_history of row {i}"
        assert got_c == want_ctx[i], f"query_context of row {i}"
