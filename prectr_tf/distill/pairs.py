"""Which (query, title) pairs a teacher labels (DESIGN §5).

Three sources, each pair kept once (the first source that has it wins):

- `labelled`: pairs of the training log with a human relevance label;
- `unlabelled`: the other pairs of the training log (shown, no label);
- `unshown`: where the log records the coarse-ranking candidate set (the
  simulator does), the candidates of the training requests that the logging
  policy never showed — the part of the candidate space serving sees and a
  student trained on shown items never would.

Only training requests contribute, so nothing of the eval period leaks into
the encoder.
"""

import numpy as np
import pandas as pd

SOURCES = ("labelled", "unlabelled", "unshown")
PAIR_COLUMNS = ("query", "title", "label", "source", "true_level")


def teacher_pairs(log, candidates=None, items=None, requests=None):
    """The distinct pairs to label, with their human label where there is one.

    Args:
        log: impression log in the data contract (`query`, `item_title`,
            `relevance` nullable, `request_id`).
        candidates: optional candidate frame (`SimulatedLog.candidates`:
            `request_id`, `item_id`, `shown`, optionally the true
            `relevance`); adds the `unshown` source.
        items: with `candidates`: `item_id`, `item_title` of the catalogue.
        requests: optional request ids to keep (the training split's);
            `None` keeps all of `log`.

    Returns:
        DataFrame with `query`, `title` (str), `label` (int64, -1 when
        unlabelled), `source` (one of `SOURCES`) and `true_level` (int64,
        the simulator's true level where `candidates` has it, else -1),
        ordered by source, then first appearance.

    Example:
    >>> log = pd.DataFrame({"request_id": ["r1", "r1"], "query": ["drill"] * 2,
    ...                     "item_title": ["acme drill", "red hose"],
    ...                     "relevance": pd.array([3, None], dtype="Int64")})
    >>> teacher_pairs(log)[["title", "label", "source"]].values.tolist()
    [['acme drill', 3, 'labelled'], ['red hose', -1, 'unlabelled']]
    """
    if requests is not None:
        log = log[log["request_id"].astype(str).isin(set(map(str, requests)))]
    relevance = log["relevance"].astype("Int64")
    labelled = relevance.notna().to_numpy()
    frames = [
        pd.DataFrame({"query": log["query"].to_numpy()[labelled],
                      "title": log["item_title"].to_numpy()[labelled],
                      "label": relevance.to_numpy()[labelled].astype(np.int64),
                      "source": "labelled"}),
        pd.DataFrame({"query": log["query"].to_numpy()[~labelled],
                      "title": log["item_title"].to_numpy()[~labelled],
                      "label": -1, "source": "unlabelled"}),
    ]
    truth = None
    if candidates is not None:
        if items is None:
            raise ValueError("candidates need the items frame (item_id, item_title)")
        shown_or_not, truth = _candidate_pairs(log, candidates, items)
        frames.append(shown_or_not[~shown_or_not["shown"]].assign(label=-1, source="unshown")
                      [["query", "title", "label", "source"]])
    pairs = pd.concat(frames, ignore_index=True)
    pairs = pairs.drop_duplicates(["query", "title"], keep="first").reset_index(drop=True)
    pairs["label"] = pairs["label"].astype(np.int64)
    pairs["true_level"] = np.int64(-1)
    if truth is not None:
        keys = pd.MultiIndex.from_frame(pairs[["query", "title"]])
        pairs["true_level"] = truth.reindex(keys).fillna(-1).to_numpy().astype(np.int64)
    return pairs[list(PAIR_COLUMNS)]


def _candidate_pairs(log, candidates, items):
    """Every candidate of the log's requests as (query, title, shown), and the
    true level per pair when the candidates carry it."""
    first = log.drop_duplicates("request_id")
    request_query = pd.Series(first["query"].to_numpy(),
                              index=first["request_id"].astype(str).to_numpy())
    request = candidates["request_id"].astype(str)
    keep = request.isin(request_query.index).to_numpy()
    cand = candidates[keep]
    titles = items.set_index(items["item_id"].astype(str))["item_title"]
    item = cand["item_id"].astype(str)
    missing = ~item.isin(titles.index)
    if missing.any():
        raise ValueError(f"candidate item {item[missing].iloc[0]!r} is not in the items frame")
    frame = pd.DataFrame({"query": request_query.reindex(request[keep].to_numpy()).to_numpy(),
                          "title": titles.reindex(item).to_numpy(),
                          "shown": cand["shown"].to_numpy().astype(bool)})
    truth = None
    if "relevance" in cand:
        levels = frame.assign(level=cand["relevance"].to_numpy().astype(np.int64))
        truth = levels.drop_duplicates(["query", "title"]).set_index(["query", "title"])["level"]
    return frame, truth


def split_by_query(queries, validation_fraction, seed=0):
    """Boolean mask of the validation rows: a random `validation_fraction` of
    the distinct queries (at least one when the fraction is > 0), all of
    their rows — no query on both sides.

    Example:
    >>> split_by_query(["a", "a", "b", "c"], 0.34, seed=0).sum() in (1, 2)
    True
    """
    queries = np.asarray(queries, dtype=object)
    distinct = np.array(sorted(set(queries.tolist())), dtype=object)
    if validation_fraction <= 0 or len(distinct) < 2:
        return np.zeros(len(queries), bool)
    n = min(len(distinct) - 1, max(1, int(round(validation_fraction * len(distinct)))))
    chosen = np.random.default_rng(seed).permutation(len(distinct))[:n]
    return np.isin(queries, distinct[chosen])
