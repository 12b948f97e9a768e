"""A synthetic home-improvement catalogue with templated titles and queries.

Items are `(brand, attribute, category, size)`, titled
`"{brand} {attribute} {noun} {size}"`; categories are grouped into
departments. A query names a category noun and optionally an attribute and/or
a brand (`"{brand} {attribute} {noun}"`, parts optional; the four query shapes
are equally likely). The true match grade of (query, item), 0..3:

* 3: same category, and every attribute/brand the query names matches;
* 2: same category, one named attribute/brand missed;
* 1: same category with both missed, or another category of the same
  department;
* 0: another department.

For K != 4 levels the grade is rescaled to [0, K − 1] and rounded. All words
are invented or generic; no brand is real.
"""

import numpy as np

from prectr_tf.data.simulator.catalogue import (
    Catalogue, item_feature_matrix, standardise)

DEPARTMENTS = {
    "power tools": ("drill", "circular saw", "sander", "impact driver", "jigsaw"),
    "hand tools": ("hammer", "screwdriver set", "wrench", "tape measure", "utility knife"),
    "lighting": ("ceiling light", "floor lamp", "led bulb", "pendant light", "wall sconce"),
    "plumbing": ("faucet", "shower head", "toilet", "bathroom sink", "water heater"),
    "paint": ("interior paint", "paint brush", "paint roller", "primer", "spray paint"),
    "garden": ("garden hose", "lawn mower", "leaf blower", "planter", "pruning shears"),
    "flooring": ("vinyl plank", "carpet tile", "laminate flooring", "floor tile", "area rug"),
    "storage": ("shelving unit", "tool box", "storage bin", "garage cabinet", "wall hook"),
    "appliances": ("refrigerator", "dishwasher", "microwave", "washer", "dryer"),
    "hardware": ("door hinge", "cabinet knob", "deadbolt", "wood screw", "anchor bolt"),
}
ATTRIBUTES = ("cordless", "stainless steel", "black", "white", "brushed nickel",
              "heavy duty", "compact", "outdoor", "waterproof", "oak", "smart",
              "energy efficient")
BRANDS = ("acme", "northwood", "ironclad", "brightline", "everfix", "stonebridge",
          "trugrip", "hydroflo", "greenfield", "powerline", "maxwell", "summitco",
          "redrock", "bluestone", "craftwise", "homestead", "fairhaven", "vantage",
          "keystone", "pinnacle")
SIZES = ("10 in.", "24 in.", "36 in.", "2-pack", "4-pack", "1 gal.")
NOUNS = tuple(noun for nouns in DEPARTMENTS.values() for noun in nouns)
NOUN_DEPARTMENT = np.repeat(np.arange(len(DEPARTMENTS)),
                            [len(nouns) for nouns in DEPARTMENTS.values()])
MAX_GRADE = 3
_CELLS_PER_CHUNK = 4_000_000  # bounds the [queries, items] score block in memory


def synthetic_catalogue(config, rng):
    """Draw items, queries and candidate sets (module docstring).

    Args:
        config: `SimulatorConfig` (uses `num_items`, `num_queries`,
            `num_candidates`, `candidate_sharpness`, `num_relevance_levels`,
            `num_item_features`).
        rng: numpy `Generator`.

    Returns:
        `Catalogue`.
    """
    n = config.num_items
    category = rng.integers(0, len(NOUNS), n)
    attribute = rng.integers(0, len(ATTRIBUTES), n)
    brand = rng.integers(0, len(BRANDS), n)
    size = rng.integers(0, len(SIZES), n)
    titles = np.array([f"{BRANDS[b]} {ATTRIBUTES[a]} {NOUNS[c]} {SIZES[s]}"
                       for b, a, c, s in zip(brand, attribute, category, size)], dtype=object)
    # Prices: lognormal around a per-category level; popularity: lognormal.
    log_price = rng.normal(3.5, 1.0, len(NOUNS))[category] + rng.normal(0.0, 0.5, n)
    popularity = standardise(rng.normal(0.0, 1.0, n))
    features = item_feature_matrix(popularity, log_price, config.num_item_features, rng)

    q_category, q_attribute, q_brand = _draw_queries(config.num_queries, rng)
    queries = np.array([" ".join(
        ([BRANDS[b]] if b >= 0 else []) + ([ATTRIBUTES[a]] if a >= 0 else []) + [NOUNS[c]])
        for c, a, b in zip(q_category, q_attribute, q_brand)], dtype=object)

    items_of, levels_of = [], []
    chunk = max(1, _CELLS_PER_CHUNK // n)
    for start in range(0, len(queries), chunk):
        rows = slice(start, start + chunk)
        grade = match_grade(q_category[rows], q_attribute[rows], q_brand[rows],
                            category, attribute, brand)
        # Retrieval: Gumbel top-k = sampling without replacement with weights
        # exp(sharpness * grade).
        score = config.candidate_sharpness * grade + rng.gumbel(size=grade.shape)
        top = np.argpartition(-score, config.num_candidates - 1, axis=1)
        top = top[:, :config.num_candidates]
        items_of.append(top)
        levels_of.append(np.take_along_axis(grade, top, axis=1))
    levels = grade_to_level(np.concatenate(levels_of), config.num_relevance_levels)
    return Catalogue(
        item_ids=np.array([f"item-{i}" for i in range(n)], dtype=object),
        item_titles=titles,
        item_categories=np.array(NOUNS, dtype=object)[category],
        popularity=popularity,
        item_features=features,
        queries=queries,
        candidate_items=np.concatenate(items_of).astype(np.int64),
        candidate_levels=levels,
        # Brands after the categories: one group index space.
        item_interest_groups=np.column_stack([category, len(NOUNS) + brand]).astype(np.int64),
        description=(
            f"synthetic catalogue: {n} templated items, {len(queries)} queries; candidates "
            f"drawn by retrieval with sharpness {config.candidate_sharpness}; levels from "
            "category/attribute/brand match"))


def _draw_queries(num_queries, rng):
    """Distinct (category, attribute or -1, brand or -1), shapes equally likely."""
    c, a, b = np.meshgrid(np.arange(len(NOUNS)), np.arange(-1, len(ATTRIBUTES)),
                          np.arange(-1, len(BRANDS)), indexing="ij")
    c, a, b = c.ravel(), a.ravel(), b.ravel()
    shape = (a >= 0).astype(int) + 2 * (b >= 0)
    if num_queries > len(c):
        raise ValueError(f"SimulatorConfig.num_queries must be <= {len(c)} (distinct synthetic "
                         f"queries), got {num_queries}")
    weight = 1.0 / np.bincount(shape, minlength=4)[shape]
    chosen = rng.choice(len(c), size=num_queries, replace=False, p=weight / weight.sum())
    return c[chosen], a[chosen], b[chosen]


def match_grade(q_category, q_attribute, q_brand, category, attribute, brand):
    """Match grade 0..3 of queries (rows) against items (columns).

    Args:
        q_category, q_attribute, q_brand: int [Q]; -1 means "not named".
        category, attribute, brand: int [I].

    Returns:
        int8 [Q, I].

    Example:
    >>> match_grade(np.array([0]), np.array([1]), np.array([-1]),
    ...             np.array([0, 0, 1, 9]), np.array([1, 2, 1, 1]),
    ...             np.array([0, 0, 0, 0])).tolist()
    [[3, 2, 1, 0]]
    """
    qc, qa, qb = q_category[:, None], q_attribute[:, None], q_brand[:, None]
    missed = ((qa >= 0) & (attribute[None] != qa)).astype(np.int8) + \
        ((qb >= 0) & (brand[None] != qb)).astype(np.int8)
    same_category = category[None] == qc
    same_department = NOUN_DEPARTMENT[category][None] == NOUN_DEPARTMENT[qc]
    grade = np.where(same_category, np.maximum(MAX_GRADE - missed, 1),
                     np.where(same_department, 1, 0))
    return grade.astype(np.int8)


def grade_to_level(grade, num_levels):
    """Rescale 0..3 grades to 0..K-1 levels (identity for K=4)."""
    return np.rint(np.asarray(grade) * ((num_levels - 1) / MAX_GRADE)).astype(np.int8)
