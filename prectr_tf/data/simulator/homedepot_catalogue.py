"""The Home Depot catalogue: real queries, real titles, human grades.

* Items are the 54,667 products of Home Depot's training split, titled with
  their real product titles (the 13 products with two title spellings keep
  the first), id = `product_uid`; category `""` (the file has none).
* Queries are the normalised search terms (11,793), or a random subset of
  `num_queries` of them.
* A query's candidate set is its judged products, each at the level of its
  human mean rating (`relevance_level_from_mean_rating`; the 5 (query,
  product) pairs judged twice under two spellings average their ratings),
  plus products drawn uniformly from the whole catalogue among those **not**
  judged for this query, which are **assumed irrelevant (level 0)** — also
  as their relevance label in the log. The assumption is mostly right (a
  random product rarely fits a query) but not always; every result on this
  catalogue depends on it. A query with more
  judged products than `num_candidates` keeps a random subset of them.
* Home Depot gives no popularity or price, so both are drawn at random
  (lognormal), unrelated to the product.
"""

import numpy as np
import pandas as pd

from prectr_tf.data.readers.homedepot import (
    normalize_query_text, read_homedepot_pairs, relevance_level_from_mean_rating)
from prectr_tf.data.simulator.catalogue import (
    Catalogue, item_feature_matrix, standardise)


def homedepot_catalogue(config, rng):
    """Build the catalogue from `config.homedepot_dir` (module docstring).

    Args:
        config: `SimulatorConfig` (uses `homedepot_dir`, `num_queries`,
            `num_candidates`, `num_relevance_levels`, `num_item_features`).
        rng: numpy `Generator`.

    Returns:
        `Catalogue`.
    """
    pairs = read_homedepot_pairs(config.homedepot_dir, config.num_relevance_levels)
    query_text = normalize_query_text(pairs["search_term"])
    item_code, item_uids = pd.factorize(pairs["product_uid"], sort=True)
    titles = pairs.groupby(item_code)["product_title"].first().to_numpy(dtype=object)
    num_items = len(item_uids)
    if config.num_candidates > num_items:
        raise ValueError(f"SimulatorConfig.num_candidates must be <= {num_items} (Home Depot "
                         f"products), got {config.num_candidates}")

    judged = (pd.DataFrame({"query": query_text, "item": item_code,
                            "rating": pairs["relevance"]})
              .groupby(["query", "item"], as_index=False, sort=True)["rating"].mean())
    all_queries = judged["query"].unique()
    if config.num_queries is not None and config.num_queries > len(all_queries):
        raise ValueError(f"SimulatorConfig.num_queries must be <= {len(all_queries)} (Home "
                         f"Depot queries) or None, got {config.num_queries}")
    if config.num_queries is not None:
        keep = np.sort(rng.choice(len(all_queries), config.num_queries, replace=False))
        all_queries = all_queries[keep]
        judged = judged[judged["query"].isin(all_queries)]
    queries = np.asarray(all_queries, dtype=object)
    q = pd.Index(queries).get_indexer(judged["query"])
    level = relevance_level_from_mean_rating(judged["rating"].to_numpy(),
                                             config.num_relevance_levels)
    items, levels = _candidate_sets(q, judged["item"].to_numpy(), level, len(queries),
                                    num_items, config.num_candidates, rng)

    popularity = standardise(rng.normal(0.0, 1.0, num_items))
    log_price = rng.normal(3.5, 1.0, num_items)
    return Catalogue(
        item_ids=np.asarray(item_uids.astype(str), dtype=object),
        item_titles=titles,
        item_categories=np.full(num_items, "", dtype=object),
        popularity=popularity,
        item_features=item_feature_matrix(popularity, log_price, config.num_item_features, rng),
        queries=queries,
        candidate_items=items,
        candidate_levels=levels,
        # No categories or brands in the file: each product is its own group.
        item_interest_groups=np.arange(num_items, dtype=np.int64)[:, None],
        description=(
            f"Home Depot catalogue: {len(queries)} real queries, {num_items} real product "
            "titles; candidates = judged products at their human grade + products not judged "
            "for the query, assumed irrelevant (level 0)"))


def _candidate_sets(query, item, level, num_queries, num_items, num_candidates, rng):
    """[Q, C] candidate items and levels: judged pairs first, then level-0
    fillers, then each row shuffled so the column carries no information."""
    # Shuffle the judged pairs so a truncated query keeps a random subset.
    order = np.lexsort((rng.random(len(query)), query))
    query, item, level = query[order], item[order], level[order]
    rank = np.arange(len(query)) - np.searchsorted(query, query)
    fits = rank < num_candidates
    items = rng.integers(0, num_items, (num_queries, num_candidates))
    levels = np.zeros((num_queries, num_candidates), np.int8)
    items[query[fits], rank[fits]] = item[fits]
    levels[query[fits], rank[fits]] = level[fits]
    is_filler = np.ones(items.shape, bool)
    is_filler[query[fits], rank[fits]] = False
    judged_keys = query.astype(np.int64) * num_items + item
    row_keys = np.arange(num_queries, dtype=np.int64)[:, None] * num_items
    while True:
        # A filler is bad if it was judged for this query (even if truncated
        # away) or repeats an earlier column of its row.
        order = np.argsort(items, axis=1, kind="stable")
        ordered = np.take_along_axis(items, order, axis=1)
        repeat = np.zeros(items.shape, bool)
        np.put_along_axis(repeat, order, np.pad(ordered[:, 1:] == ordered[:, :-1],
                                                ((0, 0), (1, 0))), axis=1)
        bad = is_filler & (repeat | np.isin(row_keys + items, judged_keys))
        if not bad.any():
            break
        items[bad] = rng.integers(0, num_items, int(bad.sum()))
    shuffle = np.argsort(rng.random(items.shape), axis=1)
    return (np.take_along_axis(items, shuffle, axis=1).astype(np.int64),
            np.take_along_axis(levels, shuffle, axis=1))
