"""The simulator's catalogue: items, queries and each query's candidate set.

`build_catalogue` dispatches on `SimulatorConfig.catalogue` to the synthetic
(`synthetic_catalogue.py`) or the Home Depot (`homedepot_catalogue.py`)
builder; both return a `Catalogue`.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass
class Catalogue:
    """Items, queries and the true relevance of every candidate.

    Attributes:
        item_ids: object [I] of str, unique.
        item_titles: object [I] of str.
        item_categories: object [I] of str (`""` where unknown).
        popularity: float64 [I], standardised (mean 0, std 1); drives the
            click model's popularity term.
        item_features: float32 [I, F], see `item_feature_matrix`.
        queries: object [Q] of str, distinct normalised query texts.
        candidate_items: int64 [Q, C] item indices of each query's candidate
            set, distinct within a row.
        candidate_levels: int8 [Q, C] true relevance level of each candidate.
        item_interest_groups: int64 [I, G] the interest groups of each item
            (synthetic: its category and its brand; Home Depot: the item
            itself); the click model's latent item vector is the sum of its
            groups' vectors.
        description: one line stating how candidates and levels were made
            (reported with every result that depends on it).
    """

    item_ids: np.ndarray
    item_titles: np.ndarray
    item_categories: np.ndarray
    popularity: np.ndarray
    item_features: np.ndarray
    queries: np.ndarray
    candidate_items: np.ndarray
    candidate_levels: np.ndarray
    item_interest_groups: np.ndarray
    description: str

    @property
    def num_items(self):
        return len(self.item_ids)

    @property
    def num_queries(self):
        return len(self.queries)

    @property
    def num_interest_groups(self):
        return int(self.item_interest_groups.max()) + 1


def build_catalogue(config, rng):
    """The catalogue `config.catalogue` names, drawn with `rng`."""
    # Imported here so the synthetic path never loads the Home Depot reader.
    if config.catalogue == "homedepot":
        from prectr_tf.data.simulator.homedepot_catalogue import homedepot_catalogue
        return homedepot_catalogue(config, rng)
    from prectr_tf.data.simulator.synthetic_catalogue import synthetic_catalogue
    return synthetic_catalogue(config, rng)


def standardise(values):
    """(values − mean) / std, or zeros when the values are constant."""
    values = np.asarray(values, dtype=np.float64)
    std = values.std()
    return (values - values.mean()) / std if std > 0 else np.zeros_like(values)


def item_feature_matrix(popularity, log_price, num_features, rng):
    """Dense item features: [popularity, standardised log price, noise...].

    Args:
        popularity: float [I], already standardised.
        log_price: float [I].
        num_features: F, the width; the first min(F, 2) columns are the two
            real features, the rest independent N(0, 1) features that have no
            effect on clicks (distractors a model should learn to ignore).
        rng: numpy `Generator` for the distractors.

    Returns:
        float32 [I, F].
    """
    if num_features == 0:
        return np.zeros((len(popularity), 0), np.float32)
    columns = [popularity, standardise(log_price)][:num_features]
    noise = rng.standard_normal((len(popularity), max(num_features - 2, 0)))
    return np.column_stack(columns + [noise]).astype(np.float32)
