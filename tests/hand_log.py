"""A hand-built log whose histories and contexts are worked out by hand in
tests/test_examples.py."""

import pandas as pd

# (request, user, query, timestamp, [(item, click, relevance)])
REQUESTS = [
    ("r1", "u1", "drill", 100, [("a", 1, 3), ("b", 0, 1)]),
    ("r2", "u2", "Drill ", 200, [("a", 0, 3), ("c", 1, 2)]),
    ("r3", "u1", "saw", 200, [("d", 1, None)]),
    ("r4", "u1", "DRILL", 300, [("e", 0, None), ("f", 1, 0)]),
    ("r5", "u3", "drill", 300, [("a", 1, 3)]),
    ("r6", "u2", "drill", 400, [("b", 0, 1)]),
]


def hand_log():
    rows = []
    for request, user, query, ts, items in REQUESTS:
        for position, (item, click, relevance) in enumerate(items):
            rows.append({
                "impression_id": f"{request}-{position}", "request_id": request,
                "user_id": user, "query": query, "item_id": item,
                "item_title": f"title {item}", "item_category": f"cat-{item}",
                "position": position, "timestamp": ts, "click": click,
                "relevance": pd.NA if relevance is None else relevance,
            })
    return pd.DataFrame(rows)
