"""The `unexposed` debias variant: real unshown candidates as hard negatives,
labelled by the teacher (issue 10)."""

import numpy as np
import pandas as pd
import pytest

from prectr_tf.data.schema import NEGATIVE_FIELDS, DataSchema
from prectr_tf.data.unexposed import attach_unexposed_negatives
from prectr_tf.distill import SimulatedJudge, TeacherLogits, judge_pairs, teacher_pairs
from prectr_tf.models.config import DEBIAS_VARIANTS

SCHEMA = DataSchema(history_length=5, context_length=5, num_item_features=2,
                    unexposed_negatives=True)


@pytest.fixture(scope="module")
def sim():
    from prectr_tf.data.simulator import SimulatorConfig, simulate

    return simulate(SimulatorConfig(num_users=80, num_requests=400, num_items=300,
                                    num_queries=40, num_candidates=30, page_size=5,
                                    num_item_features=2, seed=11))


@pytest.fixture(scope="module")
def teacher(sim):
    pairs = teacher_pairs(sim.log, sim.candidates, sim.items)
    return judge_pairs(pairs, SimulatedJudge.with_accuracy(0.8, seed=3))


@pytest.fixture(scope="module")
def attached(sim, teacher):
    return attach_unexposed_negatives(sim.log, sim.candidates, sim.items, teacher, seed=5)


def test_each_clicked_row_gets_an_unshown_candidate_of_its_own_request(sim, attached):
    frame, stats = attached
    clicked = frame["click"].fillna(0).to_numpy() == 1
    has = frame["negative_item_id"].to_numpy() != ""
    assert has.sum() == stats["rows_with_negative"] > 0
    assert not has[~clicked].any()  # only the possible anchors
    unshown = set(zip(sim.candidates.loc[~sim.candidates["shown"], "request_id"],
                      sim.candidates.loc[~sim.candidates["shown"], "item_id"]))
    shown = set(zip(sim.log["request_id"], sim.log["item_id"]))
    pairs = set(zip(frame["request_id"][has], frame["negative_item_id"][has]))
    assert pairs <= unshown and not pairs & shown
    # Every clicked row of a request with unshown candidates has one.
    with_unshown = set(r for r, _ in unshown)
    assert has[clicked].sum() == np.isin(frame["request_id"][clicked], list(with_unshown)).sum()
    items = sim.items.set_index("item_id")
    rows = frame[has]
    assert (items.loc[rows["negative_item_id"], "item_title"].to_numpy()
            == rows["negative_item_title"].to_numpy()).all()
    assert (items.loc[rows["negative_item_id"], "item_category"].to_numpy()
            == rows["negative_item_category"].to_numpy()).all()
    np.testing.assert_array_equal(
        np.stack(items.loc[rows["negative_item_id"], "item_features"].to_numpy()),
        np.stack(rows["negative_item_features"].to_numpy()))
    assert not np.stack(frame.loc[~has, "negative_item_features"]).any()


def test_the_level_is_the_teachers_argmax_and_the_draw_is_seeded(sim, teacher, attached):
    frame, stats = attached
    has = frame["negative_item_id"].to_numpy() != ""
    level = frame["negative_relevance"]
    assert level[~has].isna().all() and level[has].notna().all()
    expected = np.argmax(teacher.lookup(frame["query"][has].to_numpy(),
                                        frame["negative_item_title"][has].to_numpy()), axis=1)
    np.testing.assert_array_equal(level[has].to_numpy(np.int64), expected)
    assert sum(stats["teacher_level_counts"].values()) == stats["rows_with_teacher_level"]
    again, _ = attach_unexposed_negatives(sim.log, sim.candidates, sim.items, teacher, seed=5)
    other, _ = attach_unexposed_negatives(sim.log, sim.candidates, sim.items, teacher, seed=6)
    assert (again["negative_item_id"] == frame["negative_item_id"]).all()
    assert (other["negative_item_id"] != frame["negative_item_id"]).any()
    # The draw is uniform over a request's unshown candidates: with every
    # row given a negative, each request's draws spread over many of them.
    every, _ = attach_unexposed_negatives(sim.log, sim.candidates, sim.items, teacher,
                                          clicked_only=False)
    per_request = every.groupby("request_id")["negative_item_id"].nunique()
    assert per_request.mean() > 3.5  # 5 rows per request, 25 unshown candidates


def test_a_pair_the_teacher_did_not_label_gets_no_level_and_a_bad_item_is_named(sim, teacher,
                                                                                 attached):
    half = TeacherLogits(teacher.query[::2], teacher.title[::2], teacher.logits[::2])
    frame, stats = attach_unexposed_negatives(sim.log, sim.candidates, sim.items, half, seed=5)
    assert 0 < stats["rows_with_teacher_level"] < stats["rows_with_negative"]
    assert frame["negative_relevance"].notna().sum() == stats["rows_with_teacher_level"]
    with pytest.raises(ValueError, match="not in the items frame"):
        attach_unexposed_negatives(sim.log, sim.candidates, sim.items.iloc[:10], teacher)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['shown'\]"):
        attach_unexposed_negatives(sim.log, sim.candidates.drop(columns="shown"), sim.items,
                                   teacher)


def test_negatives_survive_validation_build_and_parsing(attached, tmp_path):
    from prectr_tf.data.build import BuildConfig, build_dataset
    from prectr_tf.data.pipeline import read_split_columns
    from prectr_tf.data.validation import DataError, validate_log

    frame, _ = attached
    with pytest.raises(DataError, match="negative_item_id"):
        validate_log(frame.drop(columns="negative_item_id"), SCHEMA, "test")
    build_dataset(frame, tmp_path / "data", SCHEMA, BuildConfig(eval_fraction=0.25),
                  progress=False)
    names = ["impression_id"] + [f.name for f in NEGATIVE_FIELDS]
    got = pd.DataFrame({k: list(v) for k, v in read_split_columns(
        tmp_path / "data", "train", names).items()}).set_index("impression_id")
    want = frame.set_index("impression_id").loc[got.index]
    for name in ("negative_item_id", "negative_item_title", "negative_item_category"):
        assert (got[name] == want[name]).all()
    np.testing.assert_array_equal(got["negative_relevance"].to_numpy(),
                                  want["negative_relevance"].fillna(-1).to_numpy(np.int64))
    np.testing.assert_allclose(np.stack(got["negative_item_features"]),
                               np.stack(want["negative_item_features"]))


@pytest.fixture(scope="module")
def unexposed_dataset(attached, tmp_path_factory):
    from prectr_tf.data.build import BuildConfig, build_dataset
    from prectr_tf.layers.text_preprocessing import learn_wordpiece_vocabulary

    frame, _ = attached
    out = tmp_path_factory.mktemp("unexposed") / "data"
    build_dataset(frame, out, SCHEMA, BuildConfig(eval_fraction=0.25), progress=False)
    texts = sorted(set(frame["query"]) | set(frame["item_title"])
                   | set(frame["negative_item_title"]) - {""})
    return out, learn_wordpiece_vocabulary(texts, vocabulary_size=300)


def _model(data, **overrides):
    from prectr_tf.models.config import EncoderConfig, preset
    from prectr_tf.models.prectr_model import PRECTRModel

    overrides = {"debias": "unexposed", **overrides}
    config = preset("prectr_v2", embedding_dim=8, hidden_units=(16,),
                    encoder=EncoderConfig(max_length=16, num_layers=1, hidden_dim=16,
                                          num_heads=2, intermediate_dim=32, dropout=0.0),
                    **overrides)
    model = PRECTRModel.from_dataset(data[0], config, wordpiece_vocabulary=data[1])
    model.build()
    return model


def _batch(data, size=128):
    from prectr_tf.data.pipeline import make_dataset

    return next(iter(make_dataset(data[0], "train", batch_size=size, shuffle=False)))


def test_the_negative_is_scored_as_its_item_would_be_for_the_same_user_and_query(
        unexposed_dataset):
    import tensorflow as tf

    from prectr_tf.models.tasks import debias_anchor_mask

    model = _model(unexposed_dataset, use_incentive=False)  # no Gumbel noise in training
    features, labels = _batch(unexposed_dataset)
    anchors = debias_anchor_mask(labels, features, 4, teacher_negatives=True).numpy()
    assert 0 < anchors.sum() < len(anchors)
    level, rel = features["negative_relevance"].numpy(), labels["relevance"].numpy()
    np.testing.assert_array_equal(anchors, (labels["click"].numpy() == 1) & (rel >= 2)
                                  & (level >= 0) & (level < rel))
    out = model(features, training=True, hard_negative_anchors=tf.constant(anchors))
    swapped = dict(features)
    for name in ("item_id", "item_title", "item_category", "item_features"):
        swapped[name] = features["negative_" + name]
    reference = model(swapped, training=False)
    np.testing.assert_allclose(out["negative_log_p_click"].numpy()[anchors],
                               reference["log_p_click"].numpy()[anchors], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["negative_relevance_logits"].numpy()[anchors],
                               reference["relevance_logits"].numpy()[anchors], atol=1e-5)
    assert not out["negative_log_p_click"].numpy()[~anchors].any()
    # The negative really is another item: its scores differ from the anchor's.
    assert np.abs(out["negative_relevance_logits"].numpy()[anchors]
                  - out["relevance_logits"].numpy()[anchors]).max() > 1e-4


def test_the_loss_is_the_pair_loss_plus_cross_entropy_on_the_teacher_level(unexposed_dataset):
    from prectr_tf.losses.pairwise_debias import PairwiseDebiasLoss
    from prectr_tf.models.tasks import DebiasTask

    model = _model(unexposed_dataset)
    features, labels = _batch(unexposed_dataset)
    rng = np.random.default_rng(0)
    n = len(labels["click"])
    predictions = {"log_p_click": np.log(rng.uniform(0.05, 0.95, n)).astype("float32"),
                   "negative_log_p_click": np.log(rng.uniform(0.05, 0.95, n)).astype("float32"),
                   "negative_relevance_logits": rng.normal(0, 1, (n, 4)).astype("float32")}
    task = next(t for t in model.tasks if isinstance(t, DebiasTask))
    assert task.twin_label == "teacher"
    level, rel = features["negative_relevance"].numpy(), labels["relevance"].numpy()
    anchors = (labels["click"].numpy() == 1) & (rel >= 2) & (level >= 0) & (level < rel)
    pair = float(PairwiseDebiasLoss(margin=model.config.debias_margin,
                                    keep_fraction=model.config.debias_keep_fraction)(
        anchors, {"anchor": predictions["log_p_click"],
                  "negative": predictions["negative_log_p_click"]}))
    z = predictions["negative_relevance_logits"].astype(np.float64)
    log_p = z - z.max(1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(1, keepdims=True))
    ce = -log_p[anchors, level[anchors]].mean()
    got = float(task.loss(labels, predictions, features, None, True))
    assert got == pytest.approx(pair + ce, rel=1e-5)


def test_inference_ignores_the_negatives_and_training_uses_them(unexposed_dataset, tiny_dataset):
    model = _model(unexposed_dataset)
    features, labels = _batch(unexposed_dataset)
    scrambled = dict(features)
    for name in ("negative_item_id", "negative_item_title", "negative_item_category"):
        scrambled[name] = features[name][::-1]
    np.testing.assert_array_equal(model(features)["score"].numpy(),
                                  model(scrambled)["score"].numpy())
    model.compile(optimizer="adam")
    logs = model.train_on_batch(features, labels, return_dict=True)
    assert np.isfinite(logs["debias_loss"]) and logs["debias_loss"] > 0
    with pytest.raises(ValueError, match="unexposed negatives"):
        _model(tiny_dataset)


@pytest.mark.parametrize("variant", DEBIAS_VARIANTS)
def test_no_variant_leaves_a_random_or_hard_negative_op_at_inference(unexposed_dataset, variant):
    """Every debias variant's inference graph has no random op, no
    hard-negative op, and never reads the negative_* columns; the training
    graph of `unexposed` does read them (the check can fail)."""
    import tensorflow as tf

    model = _model(unexposed_dataset, debias=variant)
    features, _ = _batch(unexposed_dataset)

    def graph(training):
        fn = tf.function(lambda f: model(f, training=training))
        return fn.get_concrete_function(features)

    def reads_negatives(function):
        """Whether an output depends on a negative_* input (backward walk)."""
        # The first inputs are the batch's, in tf.nest's (sorted-key) order.
        keys = [k for k, _ in sorted(features.items())]
        inputs = {t.op.name for k, t in zip(keys, function.inputs) if k.startswith("negative_")}
        assert len(inputs) == len(NEGATIVE_FIELDS)
        seen, stack = set(), [t.op for t in function.outputs]
        while stack:
            op = stack.pop()
            if op.name not in seen:
                seen.add(op.name)
                stack.extend(t.op for t in op.inputs)
                stack.extend(op.control_inputs)
        return bool(inputs & seen)

    inference = graph(False)
    ops = inference.graph.get_operations()
    assert not any(op.type.startswith(("Random", "StatelessRandom")) for op in ops)
    assert not any("hard_negative" in op.name for op in ops)
    assert not reads_negatives(inference)
    assert reads_negatives(graph(True)) == (variant == "unexposed")
