import numpy as np
import pytest

from prectr_tf.data.simulator import SimulatorConfig
from prectr_tf.data.simulator.click_model import (
    attractiveness, examination_probability, query_thresholds)
from prectr_tf.data.simulator.logging_policy import choose_pages
from prectr_tf.data.simulator.traffic import draw_requests, zipf_weights
from prectr_tf.data.simulator.users import draw_users


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def test_attractiveness_known_values():
    config = SimulatorConfig(click_base_rate=0.2, relevance_slope=1.5, popularity_weight=0.4)
    base = np.log(0.2 / 0.8)
    level = np.array([0, 3, 2, 2])
    got = attractiveness(level, threshold=1.5, tolerance=np.array([0.0, 0.0, 0.5, -0.5]),
                         popularity=np.array([0.0, 0.0, 0.0, 1.0]), config=config)
    want = _sigmoid(base + np.array([1.5 * -1.5, 1.5 * 1.5, 1.5 * 1.0, 1.5 * 0.0 + 0.4]))
    np.testing.assert_allclose(got, want)


def test_examination_known_values():
    np.testing.assert_allclose(examination_probability([0, 1, 3], 2.0), [1.0, 0.25, 1 / 16])
    np.testing.assert_allclose(examination_probability([0, 5], 0.0), [1.0, 1.0])


def test_query_thresholds_spread():
    config = SimulatorConfig(query_tolerance_std=0.5, relevance_threshold=2.0)
    thresholds = query_thresholds(config, 20_000, np.random.default_rng(0))
    assert thresholds.mean() == pytest.approx(2.0, abs=0.02)
    assert thresholds.std() == pytest.approx(0.5, abs=0.02)


def test_pages_are_distinct_ordered_and_prefer_relevance():
    rng = np.random.default_rng(0)
    levels = rng.integers(0, 4, (2000, 30))
    pages = choose_pages(levels, 6, 2.0, rng)
    assert pages.shape == (2000, 6)
    assert all(len(set(row)) == 6 for row in pages)
    shown = np.take_along_axis(levels, pages, axis=1)
    # Higher positions hold more relevant items on average, and the page
    # is more relevant than the candidates.
    assert np.all(np.diff(shown.mean(axis=0)) < 0)
    assert shown.mean() > levels.mean() + 0.5
    full = choose_pages(levels[:5], 30, 1.0, rng)
    assert (np.sort(full, axis=1) == np.arange(30)).all()


def test_users_cold_start_and_zipf_activity():
    config = SimulatorConfig(num_users=1000, num_requests=20_000, cold_start_share=0.25,
                             activity_zipf_exponent=1.2, user_tolerance_std=0.7)
    users = draw_users(config, np.random.default_rng(0))
    counts = users.num_requests
    assert counts.sum() == 20_000
    assert (counts == 1).sum() == 250
    assert counts[counts > 1].min() >= 2
    top = np.sort(counts)[::-1]
    assert top[0] > 10 * np.median(counts)  # a heavy head
    flat = draw_users(SimulatorConfig(**{**config.to_dict(), "activity_zipf_exponent": 0.0}),
                      np.random.default_rng(0)).num_requests
    assert flat.max() < top[0] / 5
    assert users.tolerance.std() == pytest.approx(0.7, abs=0.05)
    assert len(set(users.ids)) == 1000


def test_requests_times_and_queries():
    config = SimulatorConfig(num_users=100, num_requests=5000, time_span_seconds=6000,
                             query_zipf_exponent=1.0)
    rng = np.random.default_rng(0)
    users = draw_users(config, rng)
    requests = draw_requests(config, users, 50, rng)
    assert np.all(np.diff(requests.timestamp) > 0)
    assert requests.timestamp.min() >= 0 and requests.timestamp.max() < 6000
    np.testing.assert_array_equal(np.bincount(requests.user, minlength=100), users.num_requests)
    share = np.sort(np.bincount(requests.query, minlength=50) / 5000)[::-1]
    zipf = 1 / np.arange(1, 51) / np.sum(1 / np.arange(1, 51))  # rank 1: 1 / H_50 = 0.22
    np.testing.assert_allclose(share[:3], zipf[:3], atol=0.02)


def test_zipf_weights():
    weights = zipf_weights(4, 1.0, np.random.default_rng(0))
    harmonic = 1 + 1 / 2 + 1 / 3 + 1 / 4
    np.testing.assert_allclose(np.sort(weights)[::-1], np.array([1, 1 / 2, 1 / 3, 1 / 4]) / harmonic)
