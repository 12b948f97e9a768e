"""`PRECTRConfig.relevance_id_features`: a relevance head that also reads the
(query, item) ids, for data without text (issue 10, TREC Session)."""

import numpy as np
import tensorflow as tf

from prectr_tf.data.pipeline import make_dataset
from prectr_tf.models.config import EncoderConfig, preset
from prectr_tf.models.prectr_model import PRECTRModel
from prectr_tf.models.training import TrainConfig, pretrain_encoder, train_staged

SMALL = dict(embedding_dim=8, hidden_units=(16,), encoder=EncoderConfig(
    max_length=16, num_layers=1, hidden_dim=16, num_heads=2, intermediate_dim=32))


def _logits_without_titles(tiny_dataset, **overrides):
    data_dir, vocab = tiny_dataset
    model = PRECTRModel.from_dataset(data_dir, preset("prectr_v1", **SMALL, **overrides),
                                     wordpiece_vocabulary=vocab)
    model.build()
    features, _ = next(iter(make_dataset(data_dir, "train", batch_size=256, shuffle=False)))
    features = dict(features, item_title=tf.fill(tf.shape(features["item_title"]), ""))
    out = model(features, training=False)
    return features["query"].numpy().ravel(), out["relevance_logits"].numpy()


def test_without_text_only_the_id_features_make_relevance_depend_on_the_item(tiny_dataset):
    for on in (False, True):
        query, logits = _logits_without_titles(tiny_dataset, relevance_id_features=on)
        spreads = [np.ptp(logits[query == q], axis=0).max() for q in set(query)
                   if (query == q).sum() > 1]
        assert len(spreads) > 5
        if on:
            assert min(spreads) > 1e-4  # each item of a query gets its own relevance
        else:
            assert max(spreads) < 1e-5  # r, and so the head, sees the query alone


def test_the_head_starts_as_the_students_and_the_run_round_trips(tiny_dataset, tmp_path):
    import keras

    from prectr_tf.distill.student import load_student

    data_dir, _ = tiny_dataset
    config = preset("prectr_v1", **SMALL, relevance_id_features=True)
    train = TrainConfig(batch_size=128, encoder_sft_epochs=1, encoder_min_steps_per_epoch=3,
                        rsl_epochs=0, joint_epochs=0, wordpiece_vocabulary_size=300)
    student_dir = pretrain_encoder(data_dir, config, train, tmp_path, verbose=0)
    model, _ = train_staged(data_dir, config, train, tmp_path / "v1", student_dir=student_dir,
                            verbose=0)
    student, _, _ = load_student(student_dir, config.encoder)
    features, _ = next(iter(make_dataset(data_dir, "eval", batch_size=64, shuffle=False)))
    r = model.encoder(model.tokenizer(features["query"], features["item_title"]))
    np.testing.assert_allclose(model(features)["relevance_logits"], student.head(r),
                               rtol=1e-5, atol=1e-5)
    restored = keras.models.load_model(tmp_path / "v1" / "model.keras")
    assert restored.config.relevance_id_features
    np.testing.assert_allclose(restored(features)["score"], model(features)["score"], atol=1e-6)


def test_the_default_turns_the_id_features_on_exactly_when_no_title_is_in_the_data(tmp_path):
    from prectr_tf.data.build import BuildConfig, build_dataset, read_dataset_info
    from prectr_tf.data.schema import DataSchema
    from prectr_tf.data.simulator import SimulatorConfig, simulate
    from prectr_tf.layers.text_preprocessing import learn_wordpiece_vocabulary

    log = simulate(SimulatorConfig(num_users=30, num_requests=60, num_items=50, num_queries=10,
                                   num_candidates=10, page_size=5, seed=3)).log
    untitled = log.assign(item_title="")
    vocab = learn_wordpiece_vocabulary(sorted(set(log["query"]) | set(log["item_title"])), 200)
    partly = log.assign(item_title=np.where(np.arange(len(log)) % 3 == 0, log["item_title"], ""))
    for name, frame, expected in (("titled", log, False), ("untitled", untitled, True),
                                  ("partly", partly, False)):
        out = tmp_path / name
        build_dataset(frame, out, DataSchema(history_length=3, context_length=3),
                      BuildConfig(eval_fraction=0.25), progress=False)
        train = read_dataset_info(out)["splits"]["train"]
        # num_titled counts the train examples with a title (the split is by time)
        ordered = frame.sort_values("timestamp", kind="stable")
        assert train["num_titled"] == (ordered["item_title"].iloc[:train["num_examples"]]
                                       != "").sum()
        assert (train["num_titled"] == 0) == expected
        model = PRECTRModel.from_dataset(out, preset("prectr_v1", **SMALL), vocab)
        assert model.config.relevance_id_features is expected
        forced = PRECTRModel.from_dataset(out, preset("prectr_v1", **SMALL,
                                                      relevance_id_features=False), vocab)
        assert forced.config.relevance_id_features is False
