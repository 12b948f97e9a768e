"""`simulate`: run the generative process documented on `SimulatorConfig`."""

import functools

import numpy as np
import pandas as pd

from prectr_tf.data.schema import DataSchema
from prectr_tf.data.simulator.catalogue import build_catalogue
from prectr_tf.data.simulator.click_model import (
    attractiveness, draw_preferences, examination_probability, query_thresholds)
from prectr_tf.data.simulator.config import SimulatorConfig
from prectr_tf.data.simulator.logging_policy import choose_pages
from prectr_tf.data.simulator.simulated_log import SimulatedLog
from prectr_tf.data.simulator.traffic import draw_requests
from prectr_tf.data.simulator.users import draw_users

# One independent random stream per step, so that e.g. a new page_size does
# not change the users or the catalogue. New streams go at the end: the
# children of a SeedSequence do not depend on how many are spawned.
STREAMS = ("catalogue", "users", "traffic", "thresholds", "policy", "clicks", "labels",
           "sensitivity", "interests")


def simulate(config=SimulatorConfig()):
    """Simulate a search log (and everything the logging policy did not show).

    Args:
        config: `SimulatorConfig`.

    Returns:
        `SimulatedLog` with `.log` (the impression log, exactly
        `DataSchema(num_relevance_levels=K, num_item_features=F).log_columns()`,
        sorted by timestamp then position), `.candidates` (every
        (request, candidate) pair with its true click probability and the
        reference scorers' probabilities, built lazily), `.users`, `.queries`
        and `.items`.

    Example:
    >>> config = SimulatorConfig(num_users=20, num_requests=60, num_items=300,
    ...                          num_queries=30, num_candidates=20)
    >>> sim = simulate(config)
    >>> len(sim.log), len(sim.candidates)
    (600, 1200)
    """
    rng = _streams(config)
    catalogue = build_catalogue(config, rng["catalogue"])
    users = draw_users(config, rng["users"])
    requests = draw_requests(config, users, catalogue.num_queries, rng["traffic"])
    thresholds = query_thresholds(config, catalogue.num_queries, rng["thresholds"])
    prefs = draw_preferences(config, len(users.ids), catalogue, rng["sensitivity"],
                             rng["interests"])

    # [R, C]: every request's candidate set, its levels and true attractiveness.
    items = catalogue.candidate_items[requests.query]
    levels = catalogue.candidate_levels[requests.query]
    popularity = catalogue.popularity[items]
    affinity = prefs.affinity(requests.user, items)
    s_q = prefs.query_sensitivity[requests.query][:, None]
    theta_q = thresholds[requests.query][:, None]
    click_prob = attractiveness(levels, theta_q, users.tolerance[requests.user][:, None],
                                popularity, config,
                                prefs.user_sensitivity[requests.user][:, None] + s_q, affinity)
    # Reference scorers: the click model with the user's preferences (t_u,
    # s_u), then also the query's (θ_q, s_q), set to their means.
    references = {
        "query_preference_oracle": attractiveness(levels, theta_q, 0.0, popularity, config,
                                                  s_q, affinity),
        "no_preference_oracle": attractiveness(levels, config.threshold, 0.0, popularity,
                                               config, 0.0, affinity),
    }

    # [R, P]: the shown page, column p at position p.
    pages = choose_pages(levels, config.page_size, config.policy_sharpness, rng["policy"])
    examination = examination_probability(np.arange(config.page_size),
                                          config.position_bias_exponent)
    shown_prob = np.take_along_axis(click_prob, pages, axis=1) * examination
    clicks = rng["clicks"].random(shown_prob.shape) < shown_prob
    labelled = rng["labels"].random(shown_prob.shape) < config.relevance_label_share

    request_ids = np.array([f"req-{r}" for r in range(config.num_requests)], dtype=object)
    log = _log_frame(config, catalogue, users, requests, request_ids,
                     np.take_along_axis(items, pages, axis=1),
                     np.take_along_axis(levels, pages, axis=1), clicks, labelled)
    position = np.full(items.shape, -1, np.int16)
    np.put_along_axis(position, pages, np.arange(config.page_size, dtype=np.int16)[None], axis=1)
    candidate_click = np.full(items.shape, -1, np.int8)
    np.put_along_axis(candidate_click, pages, clicks.astype(np.int8), axis=1)
    return SimulatedLog(
        config=config, log=log,
        users=pd.DataFrame({"user_id": users.ids, "num_requests": users.num_requests,
                            "tolerance": users.tolerance,
                            "sensitivity": prefs.user_sensitivity}),
        queries=pd.DataFrame({"query": catalogue.queries, "threshold": thresholds,
                              "sensitivity": prefs.query_sensitivity,
                              "num_requests": np.bincount(requests.query,
                                                          minlength=catalogue.num_queries)}),
        items=_items_frame(catalogue),
        candidates=functools.partial(_candidate_frame, request_ids, catalogue.item_ids, items,
                                     levels, click_prob, position, candidate_click,
                                     references),
        description=catalogue.description)


def _streams(config):
    return {name: np.random.default_rng(seed) for name, seed in
            zip(STREAMS, np.random.SeedSequence(config.seed).spawn(len(STREAMS)))}


def simulated_preferences(config):
    """The `Preferences` (sensitivities, interest and item vectors) that
    `simulate(config)` draws, without simulating the log: each step has its
    own random stream, so the catalogue, the users and the preferences are
    redrawn alone. For diagnostics that need the simulator's latent truth.

    Args:
        config: `SimulatorConfig`.

    Returns:
        `Preferences`, indexed like `simulate(config).users` and `.items`.
    """
    rng = _streams(config)
    catalogue = build_catalogue(config, rng["catalogue"])
    users = draw_users(config, rng["users"])
    return draw_preferences(config, len(users.ids), catalogue, rng["sensitivity"],
                            rng["interests"])


def _log_frame(config, catalogue, users, requests, request_ids, shown_items, shown_levels,
               clicks, labelled):
    num_requests, page_size = shown_items.shape
    request = np.repeat(np.arange(num_requests), page_size)
    item = shown_items.ravel()
    columns = {
        "impression_id": np.array([f"imp-{i}" for i in range(len(item))], dtype=object),
        "request_id": request_ids[request],
        "user_id": users.ids[requests.user][request],
        "query": catalogue.queries[requests.query][request],
        "item_id": catalogue.item_ids[item],
        "item_title": catalogue.item_titles[item],
        "item_category": catalogue.item_categories[item],
        "item_features": list(catalogue.item_features[item]),
        "position": np.tile(np.arange(page_size, dtype=np.int64), num_requests),
        "timestamp": requests.timestamp[request],
        "click": pd.array(clicks.ravel().astype(np.int64), dtype="Int64"),
        # Unlabelled impressions are <NA>, never level 0.
        "relevance": pd.arrays.IntegerArray(shown_levels.ravel().astype(np.int64),
                                            ~labelled.ravel()),
    }
    schema = DataSchema(num_relevance_levels=config.num_relevance_levels,
                        num_item_features=config.num_item_features)
    return pd.DataFrame({name: columns[name] for name in schema.log_columns()})


def _items_frame(catalogue):
    frame = pd.DataFrame({"item_id": catalogue.item_ids, "item_title": catalogue.item_titles,
                          "item_category": catalogue.item_categories,
                          "popularity": catalogue.popularity})
    if catalogue.item_features.shape[1]:
        frame["item_features"] = list(catalogue.item_features)
    return frame


def _candidate_frame(request_ids, item_ids, items, levels, click_prob, position, click,
                     references):
    num_requests, num_candidates = items.shape
    return pd.DataFrame({
        "request_id": pd.Categorical.from_codes(
            np.repeat(np.arange(num_requests), num_candidates), categories=request_ids),
        "item_id": pd.Categorical.from_codes(items.ravel(), categories=item_ids),
        "relevance": levels.ravel(),
        "click_prob": click_prob.ravel(),
        "shown": position.ravel() >= 0,
        "position": position.ravel(),
        "click": click.ravel(),
        **{name: probs.ravel() for name, probs in references.items()},
    })
