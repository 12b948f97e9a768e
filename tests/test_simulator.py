import numpy as np
import pandas as pd
import pytest

from prectr_tf.data.schema import DataSchema
from prectr_tf.data.simulator import SimulatorConfig, read_simulated_log, simulate
from prectr_tf.data.simulator.click_model import examination_probability
from prectr_tf.data.simulator.stats import simulation_stats
from prectr_tf.data.validation import validate_log

TINY = dict(num_items=400, num_queries=40, num_users=60, num_requests=300,
            num_candidates=20, page_size=5, num_item_features=3)
# Large enough for per-level / per-position rates to be estimated well.
MEDIUM = dict(num_items=1000, num_queries=100, num_users=2000, num_requests=20_000,
              num_candidates=50, page_size=10, num_item_features=0)


@pytest.fixture(scope="module")
def tiny():
    return simulate(SimulatorConfig(seed=7, **TINY))


@pytest.fixture(scope="module")
def medium():
    return simulate(SimulatorConfig(seed=3, **MEDIUM))


def test_same_seed_same_log_different_seed_different(tiny):
    again = simulate(SimulatorConfig(seed=7, **TINY))
    pd.testing.assert_frame_equal(tiny.log, again.log)
    pd.testing.assert_frame_equal(tiny.candidates, again.candidates)
    other = simulate(SimulatorConfig(seed=8, **TINY))
    assert not tiny.log["item_id"].equals(other.log["item_id"])
    assert not tiny.log["user_id"].equals(other.log["user_id"])


def test_log_columns_and_dtypes_follow_the_schema(tiny):
    schema = DataSchema(num_item_features=3)
    assert tuple(tiny.log.columns) == schema.log_columns()
    features = tiny.log["item_features"]
    assert all(f.dtype == np.float32 and f.shape == (3,) for f in features)
    assert str(tiny.log["click"].dtype) == "Int64" and str(tiny.log["relevance"].dtype) == "Int64"
    no_features = simulate(SimulatorConfig(**{**TINY, "num_item_features": 0}))
    assert tuple(no_features.log.columns) == DataSchema().log_columns()


def test_log_passes_the_validator(tiny):
    schema = DataSchema(num_item_features=3)
    clean, report = validate_log(tiny.log, schema, source="sim")
    assert report.count == 0 and len(clean) == len(tiny.log)


def test_requests_share_user_query_time_and_fill_a_page(tiny):
    log, config = tiny.log, tiny.config
    assert len(log) == config.num_impressions
    assert log["timestamp"].is_monotonic_increasing
    assert log["impression_id"].is_unique
    groups = log.groupby("request_id")
    assert (groups[["user_id", "query", "timestamp"]].nunique() == 1).all().all()
    assert (groups["position"].apply(sorted).map(tuple) == tuple(range(5))).all()
    assert (groups["item_id"].nunique() == 5).all()
    # Distinct requests happen at distinct times (histories are strictly ordered).
    assert groups["timestamp"].first().is_unique
    assert log["timestamp"].max() < config.time_span_seconds


def test_users_match_the_log(tiny):
    per_user = tiny.log.groupby("user_id")["request_id"].nunique()
    users = tiny.users.set_index("user_id")
    assert users["num_requests"].sum() == tiny.config.num_requests
    pd.testing.assert_series_equal(per_user.sort_index(), users["num_requests"].sort_index(),
                                   check_names=False)


def test_cold_start_share(medium):
    single = (medium.users["num_requests"] == 1).mean()
    assert single == pytest.approx(medium.config.cold_start_share, abs=1e-9)
    assert medium.users.loc[medium.users["num_requests"] > 1, "num_requests"].min() >= 2


def test_labels_agree_with_the_candidates(tiny):
    candidates = tiny.candidates
    shown = candidates[candidates["shown"]].astype({"request_id": str, "item_id": str})
    merged = tiny.log.merge(shown, on=["request_id", "item_id"], suffixes=("", "_true"))
    assert len(merged) == len(tiny.log)
    assert (merged["position"] == merged["position_true"]).all()
    assert (merged["click"] == merged["click_true"]).all()
    labelled = merged["relevance"].notna()
    assert (merged.loc[labelled, "relevance"] == merged.loc[labelled, "relevance_true"]).all()
    assert len(candidates) == tiny.config.num_requests * tiny.config.num_candidates
    assert (candidates.groupby("request_id", observed=True)["shown"].sum() == 5).all()
    assert (candidates.loc[~candidates["shown"], ["position", "click"]] == -1).all().all()


def test_relevance_label_share(medium):
    labelled = medium.log["relevance"].notna().mean()
    assert labelled == pytest.approx(medium.config.relevance_label_share, abs=0.01)


def test_exposure_bias(medium):
    levels = simulation_stats(medium)["per_level"]
    assert levels[-1]["log_share"] > levels[-1]["candidate_share"]
    assert levels[0]["log_share"] < levels[0]["candidate_share"]


def test_uniform_policy_has_no_exposure_bias():
    sim = simulate(SimulatorConfig(seed=1, **{**MEDIUM, "policy_sharpness": 0.0}))
    for row in simulation_stats(sim)["per_level"]:
        assert row["log_share"] == pytest.approx(row["candidate_share"], abs=0.01)


def test_ctr_monotone_in_level_and_position(medium):
    stats = simulation_stats(medium)
    by_level = [row["ctr"] for row in stats["per_level"]]
    by_position = [row["ctr"] for row in stats["per_position"]]
    assert by_level == sorted(by_level) and by_level[0] < by_level[-1] / 3
    assert by_position == sorted(by_position, reverse=True)


def test_empirical_ctr_matches_true_click_probabilities(medium):
    c = medium.candidates
    shown = c[c["shown"]]
    prob = shown["click_prob"] * examination_probability(
        shown["position"], medium.config.position_bias_exponent)
    for level, group in shown.groupby("relevance"):
        p = prob[group.index]
        stderr = np.sqrt((p * (1 - p)).sum()) / len(p)
        assert abs(group["click"].mean() - p.mean()) < 4 * stderr + 1e-3, level
    # Attractiveness rises with level over the whole candidate space too.
    assert c.groupby("relevance")["click_prob"].mean().is_monotonic_increasing


def test_position_bias_only_depends_on_examination():
    sim = simulate(SimulatorConfig(seed=2, **{**MEDIUM, "position_bias_exponent": 0.0,
                                              "policy_sharpness": 0.0}))
    ctr = [row["ctr"] for row in simulation_stats(sim)["per_position"]]
    assert max(ctr) - min(ctr) < 0.02  # random order + no bias: flat


def test_steps_draw_from_independent_streams():
    base = simulate(SimulatorConfig(seed=5, **TINY))
    other = simulate(SimulatorConfig(seed=5, **{**TINY, "policy_sharpness": 3.0}))
    pd.testing.assert_frame_equal(base.users, other.users)
    pd.testing.assert_frame_equal(base.queries, other.queries)
    assert not base.log["item_id"].equals(other.log["item_id"])


def test_write_and_read_back(tiny, tmp_path):
    tiny.write(tmp_path / "plain")
    back = read_simulated_log(tmp_path / "plain")
    assert back.config == tiny.config and back.candidates is None
    pd.testing.assert_frame_equal(back.log.drop(columns="item_features"),
                                  tiny.log.drop(columns="item_features"))
    np.testing.assert_array_equal(np.stack(back.log["item_features"]),
                                  np.stack(tiny.log["item_features"]))
    for name in ("users", "queries"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(tiny, name))
    with pytest.raises(ValueError, match="stats.json"):
        simulation_stats(back)
    assert sorted(p.name for p in (tmp_path / "plain").iterdir()) == [
        "config.json", "items.parquet", "log.parquet", "queries.parquet", "stats.json",
        "users.parquet"]

    config = SimulatorConfig(seed=7, write_candidates=True, **TINY)
    simulate(config).write(tmp_path / "full")
    full = read_simulated_log(tmp_path / "full")
    assert len(full.candidates) == len(tiny.candidates)
    assert simulation_stats(full) == simulation_stats(tiny)


def test_read_rejects_a_folder_without_config(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        read_simulated_log(tmp_path)
