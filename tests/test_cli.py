"""The `prectr` command line and its YAML configs, run as a user would
(`python -m prectr_tf.cli`, in-process via `main` to keep TensorFlow imports
to one process)."""

import json
import subprocess
import sys

import pytest
import yaml

from prectr_tf.cli import main
from prectr_tf.config import ConfigError, load_config
from prectr_tf.data.build import BuildConfig, read_dataset_info
from prectr_tf.data.schema import DataSchema
from prectr_tf.data.simulator import SimulatorConfig
from prectr_tf.distill import SimulatedJudge, StudentConfig
from prectr_tf.models.config import PRECTRConfig
from prectr_tf.models.training import TrainConfig

TINY = {"simulator": {"num_users": 40, "num_requests": 300, "num_items": 200, "num_queries": 30,
                      "num_candidates": 20, "page_size": 5, "seed": 7},
        "schema": {"history_length": 3, "context_length": 4},
        "build": {"num_shards": 2, "eval_fraction": 0.2, "history": {"context_events": "all"}}}
SECTIONS = {"schema": DataSchema, "simulator": SimulatorConfig, "build": BuildConfig,
            "model": PRECTRConfig, "train": TrainConfig, "distill": StudentConfig,
            "judge": SimulatedJudge}


def _config(tmp_path, data):
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_help_lists_only_working_subcommands():
    out = subprocess.run([sys.executable, "-m", "prectr_tf.cli", "--help"],
                         capture_output=True, text=True, check=True).stdout
    for command in ("demo", "simulate", "build", "convert", "distill", "train", "evaluate",
                    "export", "rank", "config"):
        assert f"    {command}" in out


def test_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--config", str(_config(tmp_path, TINY)), "--out", str(out),
                 "--quiet", "--skip-training"]) == 0
    printed = capsys.readouterr().out
    assert "exposure ratio" in printed and "position" in printed and "demo finished" in printed
    info = read_dataset_info(out / "dataset")
    assert info["num_impressions"] == 300 * 5
    assert info["schema"]["history_length"] == 3
    assert info["schema"]["num_item_features"] == SimulatorConfig().num_item_features
    assert info["config"]["num_shards"] == 2
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["simulator"]["seed"] == 7
    # refuses to clobber, unless asked
    assert main(["demo", "--config", str(_config(tmp_path, TINY)), "--out", str(out),
                 "--skip-training"]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_simulate_then_build_with_flags(tmp_path, capsys):
    cfg = _config(tmp_path, TINY)
    assert main(["simulate", "--config", str(cfg), "--out", str(tmp_path / "sim"),
                 "--seed", "3", "--num-requests", "200"]) == 0
    stats = json.loads((tmp_path / "sim" / "stats.json").read_text())
    assert "CTR" in capsys.readouterr().out and stats
    schema = dict(TINY["schema"], num_item_features=SimulatorConfig().num_item_features)
    cfg2 = _config(tmp_path, dict(TINY, schema=schema))
    assert main(["build", str(tmp_path / "sim" / "log.parquet"), "--config", str(cfg2),
                 "--out", str(tmp_path / "ds"), "--eval-fraction", "0", "--quiet"]) == 0
    info = read_dataset_info(tmp_path / "ds")
    assert info["num_impressions"] == 200 * 5 and list(info["splits"]) == ["train"]


def test_build_with_unexposed_negatives_from_the_judge_or_a_teacher_file(tmp_path, capsys):
    import numpy as np
    import pandas as pd

    from prectr_tf.data.pipeline import read_split_columns
    from prectr_tf.distill import write_teacher_logits

    data = dict(TINY, simulator=dict(TINY["simulator"], write_candidates=True))
    cfg = _config(tmp_path, data)
    sim = tmp_path / "sim"
    assert main(["simulate", "--config", str(cfg), "--out", str(sim)]) == 0
    flags = ["--candidates", str(sim / "candidates.parquet"), "--items", str(sim / "items.parquet")]
    schema = dict(TINY["schema"], num_item_features=SimulatorConfig().num_item_features)
    cfg = _config(tmp_path, dict(data, schema=schema))
    assert main(["build", str(sim / "log.parquet"), "--config", str(cfg), "--out",
                 str(tmp_path / "ds"), "--quiet", *flags]) == 0
    assert "unexposed negatives:" in capsys.readouterr().out
    info = read_dataset_info(tmp_path / "ds")
    assert info["schema"]["unexposed_negatives"]
    stats = info["unexposed_negatives"]
    log = pd.read_parquet(sim / "log.parquet")
    assert stats["rows_with_negative"] == stats["rows_with_teacher_level"] > 0
    assert stats["rows_with_negative"] <= int((log["click"] == 1).sum())
    # A teacher file that calls every pair level 1 labels every negative 1.
    candidates = pd.read_parquet(sim / "candidates.parquet")
    items = pd.read_parquet(sim / "items.parquet").set_index("item_id")
    queries = log.drop_duplicates("request_id").set_index("request_id")["query"]
    pairs = pd.DataFrame({"query": queries.loc[candidates["request_id"]].to_numpy(),
                          "title": items.loc[candidates["item_id"], "item_title"].to_numpy()})
    pairs = pairs.drop_duplicates()
    logits = np.tile([0.0, 5.0, 0.0, 0.0], (len(pairs), 1))
    write_teacher_logits(tmp_path / "teacher.parquet", pairs["query"].to_numpy(),
                         pairs["title"].to_numpy(), logits)
    assert main(["build", str(sim / "log.parquet"), "--config", str(cfg), "--out",
                 str(tmp_path / "ds2"), "--quiet", *flags,
                 "--teacher-logits", str(tmp_path / "teacher.parquet")]) == 0
    levels = read_split_columns(tmp_path / "ds2", "train", ["negative_relevance",
                                                           "negative_item_id"])
    has = levels["negative_item_id"] != ""
    assert has.any() and (levels["negative_relevance"][has] == 1).all()
    assert (levels["negative_relevance"][~has] == -1).all()
    assert main(["build", str(sim / "log.parquet"), "--out", str(tmp_path / "ds3"),
                 "--candidates", str(sim / "candidates.parquet")]) == 2
    assert "need both --candidates and --items" in capsys.readouterr().err


def test_build_reports_bad_input_and_exit_code(tmp_path, capsys):
    (tmp_path / "log.csv").write_text("impression_id,query\nx,y\n")
    assert main(["build", str(tmp_path / "log.csv"), "--out", str(tmp_path / "ds")]) == 2
    err = capsys.readouterr().err
    assert "log.csv" in err and "missing column" in err


def test_convert_trec(tmp_path, shared_data, capsys):
    out = tmp_path / "trec.parquet"
    assert main(["convert", "trec_session", "--data-dir", str(shared_data / "trec2014_session"),
                 "--split", "valid", "--out", str(out)]) == 0
    assert "3,610 impressions" in capsys.readouterr().out
    assert (tmp_path / "trec.rejects.csv").exists()
    assert main(["build", str(out), "--out", str(tmp_path / "ds"), "--quiet"]) == 0
    assert read_dataset_info(tmp_path / "ds")["num_impressions"] == 3_610


@pytest.mark.parametrize("data,message", [
    ({"simulator": {"num_user": 5}}, r"simulator: unknown key\(s\) \['num_user'\]"),
    ({"build": {"history": {"history_events": "some"}}}, "history_events must be one of"),
    ({"build": {"num_shards": "4"}}, r"build.num_shards: expected int, got '4'"),
    ({"schema": {"history_length": 0}}, "history_length must be >= 1"),
    ({"trainer": {}}, r"unknown section\(s\) \['trainer'\]"),
    ({"simulator": [1, 2]}, "expected a mapping"),
])
def test_config_errors_name_file_and_key(tmp_path, data, message):
    path = _config(tmp_path, data)
    with pytest.raises(ConfigError, match=message) as err:
        load_config(path, SECTIONS)
    assert str(path) in str(err.value)


def test_config_round_trip_through_prectr_config(tmp_path, capsys):
    assert main(["config"]) == 0
    path = tmp_path / "default.yaml"
    path.write_text(capsys.readouterr().out)
    loaded = load_config(path, SECTIONS)
    assert loaded["simulator"] == SimulatorConfig() and loaded["build"] == BuildConfig()
    assert loaded["model"] == PRECTRConfig() and loaded["train"] == TrainConfig()
    assert loaded["distill"] == StudentConfig() and loaded["judge"] == SimulatedJudge()


def test_schema_contradicting_simulator_is_an_error(tmp_path, capsys):
    bad = dict(TINY, schema={"num_relevance_levels": 5})
    assert main(["demo", "--config", str(_config(tmp_path, bad)), "--skip-training",
                 "--out", str(tmp_path / "d")]) == 2
    assert "contradicts simulator.num_relevance_levels" in capsys.readouterr().err


def test_demo_trains_exports_and_ranks_in_a_fresh_process(tmp_path, capsys):
    tiny = dict(TINY, train={"batch_size": 64, "rsl_epochs": 1, "joint_epochs": 1,
                             "steps_per_epoch": 3, "wordpiece_vocabulary_size": 300},
                distill={"batch_size": 64, "max_epochs": 1, "min_steps_per_epoch": 2},
                model={"encoder": {"num_layers": 1, "hidden_dim": 16, "num_heads": 2,
                                   "intermediate_dim": 32}})
    out = tmp_path / "demo"
    assert main(["demo", "--config", str(_config(tmp_path, tiny)), "--out", str(out),
                 "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "[6/6] export PRECTR-V2" in printed
    assert (out / "exports" / "prectr_v2" / "1" / "saved_model.pb").exists()
    request = json.loads((out / "request.json").read_text())
    table = printed[printed.index("user " + repr(request["user_id"])):].splitlines()
    rows = [line.split() for line in table[2:12]]
    assert [int(r[0]) for r in rows] == list(range(1, 11))
    scores = [float(r[2]) for r in rows]
    assert scores == sorted(scores, reverse=True) and all(0 < s < 1 for s in scores)
    assert {r[1] for r in rows} <= set(request["candidates"])
    assert len(request["candidates"]) == TINY["simulator"]["num_candidates"]
