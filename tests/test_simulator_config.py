import json

import numpy as np
import pytest

from prectr_tf.data.simulator import SimulatorConfig


def test_defaults_are_valid_and_documented():
    config = SimulatorConfig()
    assert config.num_impressions == config.num_requests * config.page_size
    assert config.threshold == 1.5  # (K - 1) / 2
    doc = SimulatorConfig.__doc__
    for name in config.to_dict():
        assert f"{name}:" in doc, f"parameter {name} is not documented"


def test_dict_round_trip_is_json_able():
    config = SimulatorConfig(seed=np.int64(3), num_users=100, num_requests=1000,
                             relevance_threshold=2)
    values = json.loads(json.dumps(config.to_dict()))
    assert SimulatorConfig.from_dict(values) == config
    assert isinstance(config.seed, int) and isinstance(config.relevance_threshold, float)


def test_from_dict_rejects_unknown_keys_listing_valid_ones():
    with pytest.raises(ValueError) as err:
        SimulatorConfig.from_dict({"num_user": 10, "seed": 1})
    assert "num_user" in str(err.value) and "'num_users'" in str(err.value)


@pytest.mark.parametrize("key, value", [
    ("cold_start_share", 1.2), ("relevance_label_share", -0.1), ("click_base_rate", 1.0),
    ("page_size", 101), ("num_candidates", 0), ("num_relevance_levels", 1),
    ("relevance_threshold", 3.5), ("policy_sharpness", -1.0), ("user_tolerance_std", float("nan")),
    ("catalogue", "amazon"), ("num_item_features", -1), ("time_span_seconds", 10),
    ("num_requests", 100), ("num_queries", None), ("seed", -1),
    ("num_users", "5"), ("seed", True), ("write_candidates", 1), ("popularity_weight", "x"),
])
def test_bad_values_name_the_key(key, value):
    with pytest.raises(ValueError, match=f"SimulatorConfig.{key}[ :]"):
        SimulatorConfig.from_dict({key: value})


def test_homedepot_needs_its_directory():
    with pytest.raises(ValueError, match="homedepot_dir"):
        SimulatorConfig(catalogue="homedepot")
    config = SimulatorConfig(catalogue="homedepot", homedepot_dir="/data", num_queries=None)
    assert config.num_queries is None


def test_request_budget_accounts_for_cold_and_active_users():
    # 10 users, 3 cold: needs 3 + 2 * 7 = 17 requests.
    SimulatorConfig(num_users=10, cold_start_share=0.3, num_requests=17)
    with pytest.raises(ValueError, match="num_requests must be >= 17"):
        SimulatorConfig(num_users=10, cold_start_share=0.3, num_requests=16)
    SimulatorConfig(num_users=10, cold_start_share=1.0, num_requests=10)
    with pytest.raises(ValueError, match="num_requests must equal num_users"):
        SimulatorConfig(num_users=10, cold_start_share=1.0, num_requests=11)
