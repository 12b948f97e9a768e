"""The relevance student: distillation and SFT train to convergence with
early stopping by query, end on the best epoch, and resume after a kill."""

import json

import keras
import numpy as np
import pytest

from prectr_tf.data.simulator import SimulatorConfig, simulate
from prectr_tf.distill import (ResumableEarlyStopping, SimulatedJudge, StudentConfig, build_student,
                               distill_encoder, judge_pairs, load_student,
                               relevance_probabilities, teacher_pairs, train_student)
from prectr_tf.layers.text_preprocessing import learn_wordpiece_vocabulary
from prectr_tf.models.config import EncoderConfig

ENCODER = EncoderConfig(max_length=16, num_layers=1, hidden_dim=16, num_heads=2,
                        intermediate_dim=32)
IDENTITY = tuple(tuple(float(i == j) for j in range(4)) for i in range(4))


@pytest.fixture(scope="module")
def pairs_and_vocabulary():
    sim = simulate(SimulatorConfig(num_users=40, num_requests=300, num_items=300, num_queries=60,
                                   num_candidates=20, page_size=5, seed=5))
    pairs = teacher_pairs(sim.log, sim.candidates, sim.items)
    texts = sorted(set(pairs["query"]) | set(pairs["title"]))
    return pairs, learn_wordpiece_vocabulary(texts, vocabulary_size=300)


def _accuracy(model, pairs):
    probs = relevance_probabilities(model, pairs["query"].to_numpy(), pairs["title"].to_numpy())
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    return float((probs.argmax(1) == pairs["true_level"].to_numpy()).mean())


def test_distilling_a_perfect_judge_learns_and_ends_on_its_best_epoch(pairs_and_vocabulary,
                                                                       tmp_path):
    pairs, vocabulary = pairs_and_vocabulary
    teacher = judge_pairs(pairs, SimulatedJudge(confusion=IDENTITY))
    config = StudentConfig(batch_size=64, max_epochs=4, patience=4, learning_rate=3e-3,
                           min_steps_per_epoch=1)
    model, meta = distill_encoder(pairs, teacher, vocabulary, ENCODER, 4, tmp_path / "s", config,
                                  teacher_name="identity judge", verbose=0)
    losses = meta["history"]["loss"]
    assert losses[-1] < 0.9 * losses[0]
    majority = np.bincount(pairs["true_level"]).max() / len(pairs)
    assert _accuracy(model, pairs) >= majority
    assert meta["method"] == "distillation" and meta["teacher"] == "identity judge"
    assert meta["num_pairs"]["by_source"]["unshown"] > 0
    assert meta["num_pairs"]["train"] + meta["num_pairs"]["validation"] == len(pairs)
    # it ends on the best epoch: the best validation loss is the minimum logged
    assert meta["best_val_loss"] == pytest.approx(min(meta["history"]["val_loss"]), rel=1e-6)
    assert meta["best_epoch"] == int(np.argmin(meta["history"]["val_loss"]))
    # the folder round-trips, with identical predictions
    again, vocab_again, _ = load_student(tmp_path / "s", ENCODER)
    assert vocab_again == vocabulary
    q, t = pairs["query"].to_numpy()[:50], pairs["title"].to_numpy()[:50]
    np.testing.assert_allclose(relevance_probabilities(again, q, t),
                               relevance_probabilities(model, q, t), atol=1e-6)
    with pytest.raises(ValueError, match="the model wants"):
        load_student(tmp_path / "s", EncoderConfig())
    with pytest.raises(FileNotFoundError, match="prectr distill"):
        load_student(tmp_path / "missing")


def test_sft_uses_labelled_pairs_only(pairs_and_vocabulary, tmp_path):
    pairs, vocabulary = pairs_and_vocabulary
    class CountSteps(keras.callbacks.Callback):
        steps = 0

        def on_train_batch_end(self, batch, logs=None):
            CountSteps.steps += 1

    _, meta = train_student(pairs, vocabulary, ENCODER, 4, tmp_path,
                            StudentConfig(batch_size=64, max_epochs=1, min_steps_per_epoch=25),
                            verbose=0, callbacks=[CountSteps()])
    # the ~400 labelled pairs make 7 batches of 64; the epoch repeats them to 25 steps
    assert CountSteps.steps == 25
    labelled = int((pairs["label"] >= 0).sum())
    assert meta["method"] == "sft"
    assert meta["num_pairs"]["labelled"] == labelled
    assert meta["num_pairs"]["train"] + meta["num_pairs"]["validation"] == labelled


def test_killed_distillation_resumes_where_it_stopped(pairs_and_vocabulary, tmp_path,
                                                      kill_after_epoch):
    pairs, vocabulary = pairs_and_vocabulary
    teacher = judge_pairs(pairs, SimulatedJudge(confusion=IDENTITY))
    logits = teacher.lookup(pairs["query"].to_numpy(), pairs["title"].to_numpy())
    config = StudentConfig(batch_size=64, max_epochs=4, patience=4, min_steps_per_epoch=1)
    with pytest.raises(KeyboardInterrupt):
        train_student(pairs, vocabulary, ENCODER, 4, tmp_path, config, teacher_logits=logits,
                      verbose=0, callbacks=[kill_after_epoch(1)])
    assert not (tmp_path / "student.weights.h5").exists()
    state = json.loads((tmp_path / "early_stopping" / "state.json").read_text())
    assert state["best_epoch"] in (0, 1)
    _, meta = train_student(pairs, vocabulary, ENCODER, 4, tmp_path, config,
                            teacher_logits=logits, verbose=0)
    assert len(meta["history"]["loss"]) == 2  # epochs 2 and 3 only
    # a finished folder is reused, not retrained
    _, again = train_student(pairs, vocabulary, ENCODER, 4, tmp_path, config,
                             teacher_logits=logits, verbose=0)
    assert again == meta


def test_resumable_early_stopping_state(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.stop_training = False  # as fit sets it
    stop = ResumableEarlyStopping(tmp_path, patience=2)
    stop.set_model(model)
    stop.on_train_begin()
    best = None
    for epoch, value in enumerate([3.0, 2.0, 2.5]):
        if value == 2.0:
            best = [w.copy() for w in model.get_weights()]
        stop.on_epoch_end(epoch, {"val_loss": value})
        model.set_weights([w + 1.0 for w in model.get_weights()])  # "training" moves them
    assert not model.stop_training and stop.wait == 1
    # a new process picks the state up: one more bad epoch stops it
    resumed = ResumableEarlyStopping(tmp_path, patience=2)
    resumed.set_model(model)
    resumed.on_train_begin()
    assert (resumed.best, resumed.best_epoch, resumed.wait) == (2.0, 1, 1)
    resumed.on_epoch_end(3, {"val_loss": 2.2})
    assert model.stop_training and resumed.stopped_epoch == 3
    resumed.on_train_end()
    for got, want in zip(model.get_weights(), best):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(KeyError, match="val_loss"):
        resumed.on_epoch_end(4, {"loss": 1.0})


@pytest.mark.parametrize("batch_size", [7, 64, 4096])
def test_relevance_probabilities_match_the_model_for_any_batching(pairs_and_vocabulary,
                                                                  batch_size):
    pairs, vocabulary = pairs_and_vocabulary
    keras.utils.set_random_seed(3)
    model = build_student(vocabulary, ENCODER, 4)
    q, t = pairs["query"].to_numpy()[:45], pairs["title"].to_numpy()[:45]
    direct = keras.ops.convert_to_numpy(keras.ops.softmax(
        model({"query": np.asarray(q, str), "item_title": np.asarray(t, str)}, training=False)))
    # the padded last batch and the XLA-compiled scorer change nothing
    np.testing.assert_allclose(relevance_probabilities(model, q, t, batch_size=batch_size),
                               direct, atol=1e-5)
    assert relevance_probabilities(model, q[:0], t[:0]).shape == (0, 4)


def test_relevance_probabilities_take_utf8_bytes_and_str_alike(pairs_and_vocabulary):
    pairs, vocabulary = pairs_and_vocabulary
    model = build_student(vocabulary, ENCODER, 4)
    q = np.array(["perceuse sans fil", "電動ドリル"], object)
    t = np.array(["scie à métaux", "ドリル セット"], object)
    as_bytes = relevance_probabilities(model, np.array([x.encode() for x in q], object),
                                       np.array([x.encode() for x in t], object))
    np.testing.assert_allclose(as_bytes, relevance_probabilities(model, q, t), atol=1e-6)


def test_resumable_early_stopping_min_delta(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.stop_training = False
    stop = ResumableEarlyStopping(tmp_path, patience=2, min_delta=0.1)
    stop.set_model(model)
    stop.on_train_begin()
    for epoch, value in enumerate([3.0, 2.95, 2.91, 2.7]):
        stop.on_epoch_end(epoch, {"val_loss": value})
        if model.stop_training:
            break
    # 2.95 and 2.91 fall by less than 0.1 from the best, 3.0: two epochs
    # without a better loss; epoch 3 never runs.
    assert (stop.best, stop.best_epoch, stop.stopped_epoch) == (3.0, 0, 2)
