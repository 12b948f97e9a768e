"""`SimulatedLog`: the simulator's output, and writing / reading it."""

import json
import os

import pandas as pd

from prectr_tf.data.simulator.config import SimulatorConfig

FILES = ("log", "candidates", "users", "queries", "items")


class SimulatedLog:
    """A simulated search log with the ground truth behind it.

    Attributes:
        config: the `SimulatorConfig` that made it.
        log: the impression log in the data contract (sorted by timestamp,
            then position; `click` and `relevance` nullable `Int64`).
        users: `user_id`, `num_requests`, `tolerance` (t_u), `sensitivity`
            (s_u).
        queries: `query`, `threshold` (θ_q), `sensitivity` (s_q),
            `num_requests`.
        items: `item_id`, `item_title`, `item_category`, `popularity` and,
            when F > 0, `item_features`.
        candidates: one row per (request, candidate) — `request_id`,
            `item_id` (categorical), `relevance` (true level, int8),
            `click_prob` (attractiveness: the click probability if examined
            at position 0), `shown`, `position` (-1 if not shown), `click`
            (-1 if not shown), and two reference scorers' probabilities:
            `query_preference_oracle` (the click model with the user's t_u
            and s_u set to 0 — it knows the query's θ_q and s_q, the
            user's interests, the item's popularity and the true level) and
            `no_preference_oracle` (also θ_q at its mean and s_q at 0). Built on first access (it has
            `num_candidates` rows per request); `None` when read back from
            a folder written without it.
        description: how the catalogue's candidates and levels were made.
    """

    def __init__(self, config, log, users, queries, items, candidates, description):
        self.config = config
        self.log = log
        self.users = users
        self.queries = queries
        self.items = items
        self._candidates = candidates  # a DataFrame, None, or a builder
        self.description = description

    @property
    def candidates(self):
        if callable(self._candidates):
            self._candidates = self._candidates()
        return self._candidates

    def write(self, out_dir):
        """Write `log.parquet`, `users.parquet`, `queries.parquet`,
        `items.parquet`, `stats.json`, `config.json` and, if
        `config.write_candidates`, `candidates.parquet` into `out_dir`.

        Returns:
            `out_dir`.
        """
        from prectr_tf.data.simulator.stats import simulation_stats

        os.makedirs(out_dir, exist_ok=True)
        frames = {"log": self.log, "users": self.users, "queries": self.queries,
                  "items": self.items}
        if self.config.write_candidates:
            frames["candidates"] = self.candidates
        for name, frame in frames.items():
            frame.to_parquet(os.path.join(out_dir, f"{name}.parquet"), index=False)
        with open(os.path.join(out_dir, "config.json"), "w") as fh:
            json.dump(self.config.to_dict(), fh, indent=2)
        with open(os.path.join(out_dir, "stats.json"), "w") as fh:
            json.dump(simulation_stats(self), fh, indent=2)
        return out_dir


def read_simulated_log(directory):
    """Read a folder written by `SimulatedLog.write`.

    Args:
        directory: the folder.

    Returns:
        `SimulatedLog`; its `candidates` is `None` if they were not written.
    """
    path = os.path.join(directory, "config.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"not a simulated log folder (no config.json): {directory}")
    with open(path) as fh:
        config = SimulatorConfig.from_dict(json.load(fh))
    frames = {}
    for name in FILES:
        file = os.path.join(directory, f"{name}.parquet")
        if name == "candidates" and not os.path.isfile(file):
            frames[name] = None  # written only with config.write_candidates
        else:
            frames[name] = pd.read_parquet(file)
    with open(os.path.join(directory, "stats.json")) as fh:
        description = json.load(fh)["catalogue_description"]
    return SimulatedLog(config=config, description=description, **frames)
