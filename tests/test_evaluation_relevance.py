"""Full-space relevance diagnostics against scikit-learn, and a student's
diagnostics equal to scoring it directly."""

import dataclasses
import json
import types

import keras
import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score, ndcg_score, recall_score

from prectr_tf.distill import build_student, relevance_probabilities
from prectr_tf.distill.student import META_FILE, VOCABULARY_FILE, WEIGHTS_FILE
from prectr_tf.evaluation.relevance import relevance_diagnostics, student_diagnostics
from prectr_tf.layers.text_preprocessing import RESERVED_TOKENS, save_vocabulary
from prectr_tf.models.config import EncoderConfig


def _table(rng, requests=30, per_request=12, levels=4):
    n = requests * per_request
    return pd.DataFrame({"request_id": np.repeat([f"r{i}" for i in range(requests)], per_request),
                         "relevance": rng.integers(0, levels, n),
                         "click_prob": rng.uniform(0, 1, n)})


def test_relevance_diagnostics_match_sklearn():
    rng = np.random.default_rng(0)
    table = _table(rng)
    probs = rng.dirichlet(np.ones(4), len(table))  # continuous: no score ties
    d = relevance_diagnostics(table, probs)
    level, predicted = table["relevance"].to_numpy(), probs.argmax(1)
    assert d["relevance_accuracy"] == accuracy_score(level, predicted)
    assert d["level0_recall"] == recall_score(level == 0, predicted == 0)
    assert np.isclose(d["relevance_macro_f1"], f1_score(level, predicted, average="macro"))
    expected = probs @ np.arange(4)
    per_request = [ndcg_score([g["click_prob"].to_numpy()], [expected[g.index]], k=10)
                   for _, g in table.groupby("request_id")]
    assert np.isclose(d["ndcg_at_10_expected_level"], np.mean(per_request))


def test_relevance_diagnostics_of_the_truth_are_perfect():
    table = _table(np.random.default_rng(1))
    one_hot = np.eye(4)[table["relevance"]]
    d = relevance_diagnostics(table, one_hot)
    assert d["relevance_accuracy"] == 1.0 and d["level0_recall"] == 1.0
    assert d["relevance_macro_f1"] == 1.0


def test_student_diagnostics_score_the_saved_student(tmp_path):
    rng = np.random.default_rng(2)
    table = _table(rng, requests=8, per_request=6)
    words = ["drill", "saw", "paint", "brush", "oak", "pine", "white", "red"]
    queries = np.array([" ".join(rng.choice(words, 2)) for _ in range(len(table))], object)
    titles = np.array([" ".join(rng.choice(words, 4)) for _ in range(len(table))], object)
    vocabulary = [*RESERVED_TOKENS, *words]
    encoder = EncoderConfig(max_length=12, num_layers=1, hidden_dim=8, num_heads=2,
                            intermediate_dim=16)
    keras.utils.set_random_seed(0)
    model = build_student(vocabulary, encoder, 4)
    model.save_weights(tmp_path / WEIGHTS_FILE)
    save_vocabulary(vocabulary, tmp_path / VOCABULARY_FILE)
    meta = {"method": "sft", "num_levels": 4, "encoder": dataclasses.asdict(encoder),
            "best_epoch": 1, "history": {"loss": [1.0, 0.9, 0.95]}, "num_pairs": {"train": 5}}
    (tmp_path / META_FILE).write_text(json.dumps(meta))
    space = types.SimpleNamespace(table=table,
                                  features={"query": queries, "item_title": titles})
    d = student_diagnostics(str(tmp_path), space)
    direct = relevance_diagnostics(table, relevance_probabilities(model, queries, titles))
    for key, value in direct.items():
        assert np.isclose(d[key], value), key
    levels = table["relevance"].to_numpy()
    assert d["majority_accuracy"] == np.bincount(levels).max() / len(levels)
    assert (d["method"], d["best_epoch"], d["epochs_run"]) == ("sft", 1, 3)
