"""`prectr distill` end to end: the simulated judge or a teacher-logits file
over a built dataset, then `prectr train` from the distilled student."""

import json

import numpy as np
import pytest
import yaml

from prectr_tf.cli import main
from prectr_tf.distill import load_student, read_teacher_logits, write_teacher_logits

SMALL = {"simulator": {"num_users": 40, "num_requests": 200, "num_items": 200,
                       "num_queries": 25, "num_candidates": 15, "page_size": 5, "seed": 2,
                       "write_candidates": True},
         "build": {"eval_fraction": 0.2},
         "model": {"embedding_dim": 8, "hidden_units": [16],
                   "encoder": {"max_length": 16, "num_layers": 1, "hidden_dim": 16,
                               "num_heads": 2, "intermediate_dim": 32}},
         "train": {"batch_size": 128, "rsl_epochs": 1, "joint_epochs": 1,
                   "encoder_min_steps_per_epoch": 5,
                   "wordpiece_vocabulary_size": 300},
         "distill": {"batch_size": 128, "max_epochs": 2, "patience": 1, "min_steps_per_epoch": 5}}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_distill")
    config = root / "cfg.yaml"
    config.write_text(yaml.safe_dump(SMALL))
    assert main(["simulate", "--config", str(config), "--out", str(root / "sim")]) == 0
    assert main(["build", str(root / "sim" / "log.parquet"), "--config", str(config), "--out",
                 str(root / "data"), "--quiet"]) == 0
    return root, config


def test_distill_from_the_simulated_judge_then_train(built, capsys):
    root, config = built
    out = root / "student"
    assert main(["distill", "--data", str(root / "data"), "--simulated", str(root / "sim"),
                 "--out", str(out), "--config", str(config), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "teacher: simulated judge" in printed and "unshown" in printed
    assert "encoder +" in printed and "parameters" in printed
    _, _, meta = load_student(out)
    assert meta["method"] == "distillation" and meta["num_pairs"]["by_source"]["unshown"] > 0
    teacher = read_teacher_logits(out / "teacher_logits.parquet", num_levels=4)
    assert len(teacher) == sum(meta["num_pairs"]["by_source"].values())
    # rerunning a finished distillation does not redo it
    assert main(["distill", "--data", str(root / "data"), "--simulated", str(root / "sim"),
                 "--out", str(out), "--config", str(config)]) == 0
    assert "already holds a finished student" in capsys.readouterr().out
    run = root / "v1"
    assert main(["train", "--data", str(root / "data"), "--preset", "prectr_v1", "--out",
                 str(run), "--config", str(config), "--encoder-init", "distilled",
                 "--distilled-encoder", str(out), "--quiet"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert 0.0 <= metrics["auc"] <= 1.0
    assert not (run / "stage0_encoder_sft").exists()  # it used the distilled student


def test_distill_from_a_teacher_file_and_bad_files(built, capsys, tmp_path):
    root, config = built
    # a teacher file over the dataset's training pairs (no simulator needed)
    import pandas as pd
    log = pd.read_parquet(root / "sim" / "log.parquet")
    pairs = log.drop_duplicates(["query", "item_title"])
    rng = np.random.default_rng(0)
    good = write_teacher_logits(tmp_path / "teacher.csv", pairs["query"].tolist(),
                                pairs["item_title"].tolist(), rng.normal(size=(len(pairs), 4)))
    out = tmp_path / "student"
    assert main(["distill", "--data", str(root / "data"), "--teacher-logits", str(good),
                 "--out", str(out), "--config", str(config), "--quiet"]) == 0
    _, _, meta = load_student(out)
    assert meta["teacher"] == f"file {good}"
    assert "unshown" not in meta["num_pairs"]["by_source"]
    bad = tmp_path / "bad.csv"
    bad.write_text("query,title,logit_0,logit_1,logit_2\nq,t,1,2,3\n")
    assert main(["distill", "--data", str(root / "data"), "--teacher-logits", str(bad),
                 "--out", str(tmp_path / "s2"), "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "logit_3" in err and "expected K=4" in err
    # a teacher that misses pairs of the log is an error naming one
    partial = write_teacher_logits(tmp_path / "partial.parquet", pairs["query"].tolist()[:3],
                                   pairs["item_title"].tolist()[:3], np.zeros((3, 4)))
    assert main(["distill", "--data", str(root / "data"), "--teacher-logits", str(partial),
                 "--out", str(tmp_path / "s3"), "--config", str(config)]) == 2
    assert "did not label the pair" in capsys.readouterr().err
    assert main(["distill", "--data", str(root / "data"), "--out", str(tmp_path / "s4")]) == 2
    assert "give a teacher" in capsys.readouterr().err
