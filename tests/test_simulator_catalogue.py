import pathlib

import numpy as np
import pandas as pd
import pytest

from prectr_tf.data.readers.homedepot import (
    normalize_query_text, read_homedepot_pairs, relevance_level_from_mean_rating)
from prectr_tf.data.simulator import SimulatorConfig
from prectr_tf.data.simulator.catalogue import build_catalogue, item_feature_matrix
from prectr_tf.data.simulator.homedepot_catalogue import _candidate_sets
from prectr_tf.data.simulator.synthetic_catalogue import (
    ATTRIBUTES, BRANDS, DEPARTMENTS, SIZES, grade_to_level, match_grade)

HOMEDEPOT_DIR = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data" / "homedepot"
needs_data = pytest.mark.skipif(
    not (HOMEDEPOT_DIR / "train.csv.zip").is_file(),
    reason=f"real Home Depot data not found at {HOMEDEPOT_DIR}")
DEPARTMENT_OF = {noun: dept for dept, nouns in DEPARTMENTS.items() for noun in nouns}


def _parse(text, has_size):
    """(brand, attribute, noun) named in a title or query, by string matching."""
    if has_size:
        size = next(s for s in SIZES if text.endswith(" " + s))
        text = text[:-len(size) - 1]
    noun = max((n for n in DEPARTMENT_OF if text == n or text.endswith(" " + n)), key=len)
    rest = text[:-len(noun)].strip()
    brand = next((b for b in BRANDS if rest == b or rest.startswith(b + " ")), None)
    attribute = rest[len(brand):].strip() if brand else rest
    assert attribute == "" or attribute in ATTRIBUTES
    return brand, attribute or None, noun


def _expected_grade(query, title):
    q_brand, q_attribute, q_noun = _parse(query, has_size=False)
    brand, attribute, noun = _parse(title, has_size=True)
    if noun != q_noun:
        return 1 if DEPARTMENT_OF[noun] == DEPARTMENT_OF[q_noun] else 0
    missed = (q_brand is not None and brand != q_brand) + \
        (q_attribute is not None and attribute != q_attribute)
    return max(3 - missed, 1)


def test_match_grade_hand_computed():
    # Query: category 0 ("drill"), attribute 1, brand 2.
    grade = match_grade(np.array([0]), np.array([1]), np.array([2]),
                        category=np.array([0, 0, 0, 0, 1, 5]),
                        attribute=np.array([1, 1, 3, 3, 1, 1]),
                        brand=np.array([2, 4, 2, 4, 2, 2]))
    # all match, brand missed, attribute missed, both missed, same dept, other dept.
    assert grade.tolist() == [[3, 2, 2, 1, 1, 0]]


def test_grade_to_level():
    assert grade_to_level(np.arange(4), 4).tolist() == [0, 1, 2, 3]
    assert grade_to_level(np.arange(4), 2).tolist() == [0, 0, 1, 1]
    assert grade_to_level(np.arange(4), 5).tolist() == [0, 1, 3, 4]


def test_synthetic_levels_agree_with_titles():
    config = SimulatorConfig(num_items=400, num_queries=40, num_candidates=30, page_size=5,
                             num_item_features=3)
    cat = build_catalogue(config, np.random.default_rng(0))
    assert cat.candidate_items.shape == cat.candidate_levels.shape == (40, 30)
    assert len(set(cat.queries)) == 40
    for q in range(cat.num_queries):
        row = cat.candidate_items[q]
        assert len(set(row)) == len(row)
        for item, level in zip(row, cat.candidate_levels[q]):
            assert level == _expected_grade(cat.queries[q], cat.item_titles[item])
    assert cat.item_features.shape == (400, 3) and cat.item_features.dtype == np.float32
    np.testing.assert_allclose(cat.item_features[:, 0], cat.popularity, rtol=1e-6)
    assert set(cat.item_categories) <= set(DEPARTMENT_OF)


def test_retrieval_sharpness_enriches_relevant_candidates():
    def mean_level(sharpness):
        config = SimulatorConfig(num_items=1000, num_queries=100, num_candidates=50,
                                 candidate_sharpness=sharpness)
        return build_catalogue(config, np.random.default_rng(0)).candidate_levels.mean()
    assert mean_level(0.0) + 0.5 < mean_level(3.0)


def test_item_features_layout():
    rng = np.random.default_rng(0)
    popularity = np.array([-1.0, 0.0, 1.0])
    features = item_feature_matrix(popularity, np.log([10.0, 100.0, 1000.0]), 4, rng)
    assert features.shape == (3, 4)
    np.testing.assert_allclose(features[:, 0], popularity)
    np.testing.assert_allclose(features[:, 1], [-1.2247449, 0.0, 1.2247449], atol=1e-6)
    assert item_feature_matrix(popularity, popularity, 1, rng).shape == (3, 1)
    assert item_feature_matrix(popularity, popularity, 0, rng).shape == (3, 0)


def test_homedepot_candidate_sets_fill_with_unjudged_items():
    # Query 0 judged items 1, 2 (levels 3, 2); query 1 judged 0..4, truncated to 3.
    query = np.array([0, 0, 1, 1, 1, 1, 1])
    item = np.array([1, 2, 0, 1, 2, 3, 4])
    level = np.array([3, 2, 1, 1, 1, 1, 1])
    items, levels = _candidate_sets(query, item, level, 2, 8, 3, np.random.default_rng(0))
    row0 = dict(zip(items[0], levels[0]))
    assert row0[1] == 3 and row0[2] == 2 and len(row0) == 3
    assert row0[[i for i in row0 if i not in (1, 2)][0]] == 0
    assert set(items[1]) <= {0, 1, 2, 3, 4} and len(set(items[1])) == 3
    assert (levels[1] == 1).all()  # a judged-but-truncated item never comes back as a filler


@needs_data
def test_homedepot_catalogue_uses_real_titles_and_grades():
    config = SimulatorConfig(catalogue="homedepot", homedepot_dir=str(HOMEDEPOT_DIR),
                             num_queries=200, num_candidates=40, page_size=5)
    cat = build_catalogue(config, np.random.default_rng(0))
    pairs = read_homedepot_pairs(HOMEDEPOT_DIR)
    assert cat.num_items == 54_667 and cat.num_queries == 200
    first = pairs.drop_duplicates("product_uid")  # 13 products have two title spellings
    title_of = dict(zip(first["product_uid"].astype(str), first["product_title"]))
    assert all(title_of[i] == t for i, t in zip(cat.item_ids, cat.item_titles))
    pairs["query"] = normalize_query_text(pairs["search_term"])
    judged = pairs.groupby(["query", pairs["product_uid"].astype(str)])["relevance"].mean()
    judged_levels = pd.Series(relevance_level_from_mean_rating(judged.to_numpy()),
                              index=judged.index)
    for q, text in enumerate(cat.queries):
        own = judged_levels.loc[text]
        shown = dict(zip(cat.item_ids[cat.candidate_items[q]], cat.candidate_levels[q]))
        assert len(shown) == 40
        for uid, lvl in own.items():  # every judged product, at its mapped grade
            assert shown[uid] == lvl
        assert all(lvl == 0 for uid, lvl in shown.items() if uid not in own.index)
    assert "assumed irrelevant" in cat.description
