"""Which pairs the teacher labels: labelled, unlabelled and unshown, each
once, training requests only; and the validation split by query."""

import numpy as np
import pandas as pd

from prectr_tf.distill import split_by_query, teacher_pairs
from prectr_tf.data.simulator import SimulatorConfig, simulate


def _hand_log():
    log = pd.DataFrame({
        "request_id": ["r1", "r1", "r2", "r2", "r3"],
        "query": ["drill", "drill", "drill", "drill", "hose"],
        "item_title": ["acme drill", "red hose", "acme drill", "blue drill", "red hose"],
        "relevance": pd.array([3, None, None, 2, None], dtype="Int64"),
    })
    items = pd.DataFrame({"item_id": ["i1", "i2", "i3", "i4"],
                          "item_title": ["acme drill", "red hose", "blue drill", "drill bit"]})
    candidates = pd.DataFrame({
        "request_id": ["r1", "r1", "r1", "r2", "r2", "r2", "r3", "r3", "r9"],
        "item_id": ["i1", "i2", "i4", "i1", "i3", "i4", "i2", "i4", "i3"],
        "shown": [True, True, False, True, True, False, True, False, False],
        "relevance": [3, 0, 2, 3, 2, 2, 3, 0, 1],
    })
    return log, items, candidates


def test_sources_precedence_and_true_levels():
    log, items, candidates = _hand_log()
    pairs = teacher_pairs(log, candidates, items)
    rows = {(q, t): (label, source, level) for q, t, label, source, level in
            pairs[["query", "title", "label", "source", "true_level"]].itertuples(index=False)}
    assert rows == {
        ("drill", "acme drill"): (3, "labelled", 3),     # labelled once, shown twice
        ("drill", "blue drill"): (2, "labelled", 2),
        ("drill", "red hose"): (-1, "unlabelled", 0),
        ("hose", "red hose"): (-1, "unlabelled", 3),
        ("drill", "drill bit"): (-1, "unshown", 2),      # unshown in r1 and r2: once
        ("hose", "drill bit"): (-1, "unshown", 0),
    }
    assert pairs["source"].tolist() == sorted(pairs["source"], key=["labelled", "unlabelled",
                                                                    "unshown"].index)


def test_only_the_given_requests_contribute():
    log, items, candidates = _hand_log()
    pairs = teacher_pairs(log, candidates, items, requests=["r3"])
    assert set(zip(pairs["query"], pairs["title"])) == {("hose", "red hose"),
                                                         ("hose", "drill bit")}
    assert (pairs["true_level"] >= 0).all()  # r9 (not in the log) never appears
    no_candidates = teacher_pairs(log)
    assert set(no_candidates["source"]) == {"labelled", "unlabelled"}
    assert (no_candidates["true_level"] == -1).all()


def test_simulator_pairs_cover_each_request_candidate_set():
    config = SimulatorConfig(num_users=30, num_requests=120, num_items=200, num_queries=15,
                             num_candidates=20, page_size=5, seed=4)
    sim = simulate(config)
    pairs = teacher_pairs(sim.log, sim.candidates, sim.items)
    queries = sim.log["query"].unique()
    # every query's whole candidate set (fixed per query), each pair once
    assert len(pairs) == len(queries) * config.num_candidates
    assert not pairs.duplicated(["query", "title"]).any()
    labelled = pairs[pairs["source"] == "labelled"]
    np.testing.assert_array_equal(labelled["label"], labelled["true_level"])
    assert (pairs["true_level"] >= 0).all()


def test_split_by_query_keeps_queries_on_one_side():
    queries = np.array([f"q{i % 50}" for i in range(1000)], dtype=object)
    is_val = split_by_query(queries, 0.2, seed=1)
    assert set(queries[is_val]).isdisjoint(queries[~is_val])
    assert len(set(queries[is_val])) == 10
    assert not np.array_equal(is_val, split_by_query(queries, 0.2, seed=2))
    assert np.array_equal(is_val, split_by_query(queries, 0.2, seed=1))
    assert not split_by_query(queries, 0.0).any()
    assert split_by_query(["a", "b"], 0.9).sum() == 1  # never every query
