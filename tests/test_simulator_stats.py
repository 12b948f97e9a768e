"""`simulation_stats` on a hand-built log whose numbers are worked out below."""

import json

import numpy as np
import pandas as pd
import pytest

from prectr_tf.data.simulator import SimulatedLog, SimulatorConfig, format_stats, simulation_stats

# request, time, user, query, then (item, click) at positions 0 and 1.
REQUESTS = [
    ("r0", 10, "a", "x", [("i0", 1), ("i1", 0)]),
    ("r1", 20, "b", "x", [("i0", 0), ("i2", 1)]),
    ("r2", 30, "a", "x", [("i1", 1), ("i2", 0)]),
    ("r3", 40, "a", "y", [("i0", 0), ("i1", 0)]),
    ("r4", 50, "c", "y", [("i2", 1), ("i0", 0)]),
]
# True level of each item under each query; every request's candidates are all 3 items.
LEVEL = {"x": {"i0": 3, "i1": 2, "i2": 0}, "y": {"i0": 1, "i1": 0, "i2": 3}}


def _hand_built():
    log_rows, candidate_rows = [], []
    for request, time, user, query, page in REQUESTS:
        for position, (item, click) in enumerate(page):
            log_rows.append({"impression_id": f"{request}-{position}", "request_id": request,
                             "user_id": user, "query": query, "item_id": item,
                             "item_title": item, "item_category": "", "position": position,
                             "timestamp": time, "click": click,
                             "relevance": LEVEL[query][item] if position == 0 else None})
        shown = {item: (position, click) for position, (item, click) in enumerate(page)}
        for item, level in LEVEL[query].items():
            position, click = shown.get(item, (-1, -1))
            candidate_rows.append({"request_id": request, "item_id": item, "relevance": level,
                                   "click_prob": 0.5, "shown": position >= 0,
                                   "position": position, "click": click})
    log = pd.DataFrame(log_rows).astype({"click": "Int64", "relevance": "Int64"})
    users = pd.DataFrame({"user_id": ["a", "b", "c"], "num_requests": [3, 1, 1],
                          "tolerance": [0.0, 0.0, 0.0]})
    config = SimulatorConfig(num_users=3, cold_start_share=1 / 3, num_requests=5, num_items=3,
                             num_queries=2, num_candidates=3, page_size=2,
                             position_bias_exponent=1.0, num_item_features=0)
    return SimulatedLog(config=config, log=log, users=users, queries=None, items=None,
                        candidates=pd.DataFrame(candidate_rows), description="hand-built")


def test_counts_and_rates():
    stats = simulation_stats(_hand_built())
    assert stats["num_users"] == 3 and stats["num_cold_start_users"] == 2
    assert stats["num_requests"] == 5 and stats["num_impressions"] == 10
    assert stats["num_queries_issued"] == 2 and stats["num_items_shown"] == 3
    assert stats["num_candidate_pairs"] == 15
    assert stats["ctr"] == pytest.approx(0.4)
    assert stats["relevance_label_share"] == pytest.approx(0.5)
    assert stats["requests_per_user"] == {"mean": 5 / 3, "median": 1.0, "max": 3}
    # r1 (a asked x before), r2 (b asked x before), r4 (a asked y before).
    assert stats["requests_with_cross_user_context"] == pytest.approx(0.6)


def test_activity_buckets():
    activity = simulation_stats(_hand_built())["activity"]
    assert activity["buckets"] == ["cold", "low", "high"]
    # Prior impressions: r0 a:0, r1 b:0, r2 a:2, r3 a:4, r4 c:0.
    assert activity["impressions"] == [6, 4, 0]
    # Users by prior impressions at their last request: a 4 (low), b 0, c 0.
    assert activity["users"] == [2, 1, 0]


def test_per_level():
    rows = simulation_stats(_hand_built())["per_level"]
    assert [r["candidates"] for r in rows] == [5, 2, 3, 5]
    assert [r["impressions"] for r in rows] == [3, 2, 2, 3]
    assert [r["candidate_share"] for r in rows] == pytest.approx([5 / 15, 2 / 15, 3 / 15, 5 / 15])
    assert [r["log_share"] for r in rows] == pytest.approx([0.3, 0.2, 0.2, 0.3])
    assert [r["exposure_ratio"] for r in rows] == pytest.approx([0.9, 1.5, 1.0, 0.9])
    assert [r["ctr"] for r in rows] == pytest.approx([1 / 3, 0.0, 0.5, 2 / 3])
    # click_prob 0.5 times examination 1 (position 0) or 1/2 (position 1).
    assert [r["expected_ctr"] for r in rows] == pytest.approx([0.25, 0.375, 0.375, 0.5])


def test_per_position():
    rows = simulation_stats(_hand_built())["per_position"]
    assert rows == [{"position": 0, "impressions": 5, "ctr": pytest.approx(0.6)},
                    {"position": 1, "impressions": 5, "ctr": pytest.approx(0.2)}]


def test_empty_level_is_none_and_json_able():
    sim = _hand_built()
    sim.config = SimulatorConfig(**{**sim.config.to_dict(), "num_relevance_levels": 5})
    stats = simulation_stats(sim)
    assert stats["per_level"][4]["ctr"] is None
    assert stats["per_level"][4]["exposure_ratio"] is None
    assert json.loads(json.dumps(stats)) == stats


def test_format_stats():
    text = format_stats(simulation_stats(_hand_built()))
    lines = text.splitlines()
    assert lines[0] == "catalogue: hand-built"
    assert any(line.split()[:2] == ["cold", "2"] for line in lines)
    level3 = next(line for line in lines if line.split()[:1] == ["3"])
    assert level3.split() == ["3", "33.3%", "30.0%", "0.900", "66.7%", "50.0%"]
    assert "n/a" not in text
    assert np.isclose(float(lines[-1].split()[-1].rstrip("%")), 20.0)
