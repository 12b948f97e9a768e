"""Full-space evaluation on the simulator: candidate examples, scoring, metrics on the space."""

import numpy as np
import pytest

from prectr_tf.data.schema import CANDIDATE_FIELDS
from prectr_tf.evaluation.full_space import full_space_examples, score_candidates
from prectr_tf.evaluation.soft_metrics import full_space_metrics

NUM_CANDIDATES = 30


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """`(sim, data_dir, space)`: a small simulation with its candidates, built."""
    from prectr_tf.data.build import BuildConfig, build_dataset
    from prectr_tf.data.schema import DataSchema
    from prectr_tf.data.simulator import SimulatorConfig, simulate
    from prectr_tf.data.validation import validate_log

    config = SimulatorConfig(num_users=60, num_requests=300, num_items=300, num_queries=30,
                             num_candidates=NUM_CANDIDATES, page_size=5, num_item_features=2,
                             seed=5)
    sim = simulate(config)
    out = tmp_path_factory.mktemp("full_space") / "dataset"
    schema = DataSchema(history_length=4, context_length=4, num_item_features=2)
    # build_dataset takes a frame as already validated: validate it (typed labels, -1 missing).
    frame, _ = validate_log(sim.log, schema, "simulated")
    build_dataset(frame, out, schema, BuildConfig(eval_fraction=0.3), progress=False)
    return sim, out, full_space_examples(sim, out)


def _eval_examples(data_dir):
    from prectr_tf.data.pipeline import make_dataset

    parts = {}
    for features, _ in make_dataset(data_dir, "eval", batch_size=1000, shuffle=False):
        for name, value in features.items():
            parts.setdefault(name, []).append(value.numpy())
    return {name: np.concatenate(v) for name, v in parts.items()}


# --- the candidate examples ---------------------------------------------------
def test_every_candidate_of_every_eval_request(simulated):
    sim, data_dir, space = simulated
    logged = _eval_examples(data_dir)
    eval_requests = {r.decode() for r in logged["request_id"]}
    table = space.table
    assert set(table["request_id"]) == eval_requests
    assert len(table) == len(eval_requests) * NUM_CANDIDATES
    assert (table.groupby("request_id").size() == NUM_CANDIDATES).all()
    # Every shown candidate of the split is there, and unshown ones too.
    assert table["shown"].sum() == len(logged["request_id"])
    assert (~table["shown"]).sum() > 0
    truth = sim.candidates.set_index(["request_id", "item_id"], drop=False)
    truth = truth.loc[list(zip(table["request_id"], table["item_id"]))]
    np.testing.assert_allclose(table["click_prob"], truth["click_prob"].to_numpy())
    np.testing.assert_array_equal(table["relevance"], truth["relevance"].to_numpy())
    for name, value in space.features.items():
        assert len(value) == len(table), name


def test_substitution_changes_item_fields_only(simulated):
    sim, _, space = simulated
    features, table = space.features, space.table
    request_fields = [n for n in features if n not in CANDIDATE_FIELDS + ("impression_id",)]
    assert "user_history_item_id" in request_fields and "query_context_click" in request_fields
    for _, rows in table.groupby("request_id").indices.items():
        for name in request_fields:
            value = features[name][rows]
            assert (value == value[:1]).all(), name  # identical across the request
        assert len(set(features["item_id"][rows])) == NUM_CANDIDATES  # items do differ
    items = sim.items.set_index("item_id")
    row = items.loc[table["item_id"]]
    np.testing.assert_array_equal(features["item_id"], [i.encode() for i in table["item_id"]])
    np.testing.assert_array_equal(features["item_title"], [t.encode() for t in row["item_title"]])
    np.testing.assert_array_equal(features["item_category"],
                                  [c.encode() for c in row["item_category"]])
    np.testing.assert_allclose(features["item_features"], np.stack(row["item_features"]),
                               rtol=1e-6)


def test_shown_candidates_reproduce_their_logged_examples(simulated):
    _, data_dir, space = simulated
    logged = _eval_examples(data_dir)
    index = {(r, i): n for n, (r, i) in
             enumerate(zip(space.features["request_id"], space.features["item_id"]))}
    rows = np.array([index[(r, i)] for r, i in zip(logged["request_id"], logged["item_id"])])
    for name, value in logged.items():
        if name in ("impression_id", "position"):
            continue
        np.testing.assert_array_equal(space.features[name][rows], value, err_msg=name)


def test_scoring_a_model_matches_scoring_the_logged_examples(simulated):
    import tensorflow as tf

    from prectr_tf.models.config import preset
    from prectr_tf.models.prectr_model import PRECTRModel

    _, data_dir, space = simulated
    model = PRECTRModel.from_dataset(data_dir, preset("dnn"))
    model.build()
    scores = score_candidates(model, space.features, batch_size=700)  # a ragged last batch
    assert scores.shape == (len(space),) and np.all((scores > 0) & (scores < 1))
    logged = _eval_examples(data_dir)
    logged_scores = model({k: tf.constant(v) for k, v in logged.items()},
                          training=False)["score"].numpy()
    index = {(r, i): n for n, (r, i) in
             enumerate(zip(space.features["request_id"], space.features["item_id"]))}
    rows = [index[(r, i)] for r, i in zip(logged["request_id"], logged["item_id"])]
    np.testing.assert_allclose(scores[rows], logged_scores, rtol=1e-5, atol=1e-6)
    several = score_candidates(model, space.features, batch_size=700,
                               outputs=("score", "click_logits"))
    np.testing.assert_array_equal(several["score"], scores)
    assert several["click_logits"].shape == (len(space), 1)


def test_encoding_each_distinct_pair_once_scores_like_every_row(simulated):
    import keras

    from prectr_tf.layers.text_preprocessing import learn_wordpiece_vocabulary
    from prectr_tf.models.config import EncoderConfig, preset
    from prectr_tf.models.prectr_model import PRECTRModel

    sim, data_dir, space = simulated
    pairs = set(zip(space.features["query"], space.features["item_title"]))
    assert len(pairs) < len(space)  # the requests of a query share candidates
    texts = sorted(set(sim.log["query"]) | set(sim.log["item_title"]))
    keras.utils.set_random_seed(0)
    config = preset("prectr_v2", embedding_dim=8, hidden_units=(16,), encoder=EncoderConfig(
        max_length=16, num_layers=2, hidden_dim=16, num_heads=2, intermediate_dim=32))
    model = PRECTRModel.from_dataset(data_dir, config, wordpiece_vocabulary=(
        learn_wordpiece_vocabulary(texts, vocabulary_size=300)))
    model.build()
    # A random encoder gives every pair its own r: a row scored with another
    # pair's r would not match.
    names = ("score", "relevance_probs")
    once = score_candidates(model, space.features, batch_size=700, outputs=names)
    every = score_candidates(model, space.features, batch_size=700, outputs=names,
                             encode_distinct_pairs=False)
    for name in names:
        np.testing.assert_allclose(once[name], every[name], rtol=1e-5, atol=1e-6)


# --- the metrics on the simulated space ---------------------------------------
def test_oracle_is_best_reversed_oracle_worst_constant_half(simulated):
    _, _, space = simulated
    table = space.table
    p = table["click_prob"].to_numpy()
    oracle = full_space_metrics(table, p)
    reversed_ = full_space_metrics(table, -p)
    constant = full_space_metrics(table, np.full(len(p), 0.3))
    assert oracle["ndcg_at_10"] == pytest.approx(1.0)
    for bucket in ("cold", "low", "high"):
        if oracle[f"count/{bucket}"]:
            assert oracle[f"ndcg_at_10/{bucket}"] == pytest.approx(1.0)
    for name in ("auc", "gauc_user", "gauc_query"):
        assert constant[name] == pytest.approx(0.5)
        assert oracle[name] > 0.5 > reversed_[name]
        # No ties in p: reversing every pair gives exactly 1 - AUC per group.
        assert reversed_[name] == pytest.approx(1.0 - oracle[name])
    assert reversed_["ndcg_at_10"] < constant["ndcg_at_10"] < oracle["ndcg_at_10"]
    # Nothing beats the oracle: noisy versions of it, the relevance level alone, random.
    rng = np.random.default_rng(0)
    others = [p + rng.normal(0, s, len(p)) for s in (0.01, 0.05, 0.2)]
    others += [table["relevance"].to_numpy().astype(float), rng.random(len(p))]
    for scores in others:
        other = full_space_metrics(table, scores)
        for name in ("auc", "gauc_user", "gauc_query", "ndcg_at_10"):
            assert reversed_[name] <= other[name] <= oracle[name] + 1e-12, name
    # Ranking by the true level is near-perfect on the level-gain NDCG.
    by_level = full_space_metrics(table, table["relevance"].to_numpy() + 1e-3 * p)
    assert by_level["ndcg_at_10_relevance"] == pytest.approx(1.0)


def test_slicing_by_any_column_gives_each_slice_its_own_metrics(simulated):
    _, _, space = simulated
    table = space.table.assign(parity=np.where(space.table["query_id"] % 2 == 0, "even", "odd"))
    scores = np.random.default_rng(1).random(len(table)) + table["click_prob"].to_numpy()
    sliced = full_space_metrics(table, scores, by="parity")
    assert sliced["count/even"] + sliced["count/odd"] == len(table)
    assert "count/cold" not in sliced
    for bucket in ("even", "odd"):
        rows = (table["parity"] == bucket).to_numpy()
        alone = full_space_metrics(table[rows], scores[rows])
        for name in ("auc", "gauc_user", "gauc_query", "ndcg_at_10", "num_requests"):
            assert sliced[f"{name}/{bucket}"] == alone[name], name


def test_reference_space_without_a_build_equals_the_built_space(simulated):
    """`reference_space` counts activity from the log as the builder does, and
    takes the same latest requests; the metrics of the references agree."""
    from prectr_tf.evaluation.headroom import REFERENCE_SCORERS, reference_metrics, reference_space

    sim, _, space = simulated
    built = space.table.sort_values(["request_id", "item_id"]).reset_index(drop=True)
    direct = reference_space(sim, eval_fraction=0.3)
    direct = direct.sort_values(["request_id", "item_id"]).reset_index(drop=True)
    assert list(direct["request_id"]) == list(built["request_id"])
    np.testing.assert_array_equal(direct["user_event_count"], built["user_event_count"])
    for column in REFERENCE_SCORERS.values():
        np.testing.assert_allclose(direct[column], built[column])
    via_build, via_log = reference_metrics(space.table), reference_metrics(direct)
    for name in REFERENCE_SCORERS:
        for metric in ("auc", "gauc_user", "ndcg_at_10", "ndcg_at_10/cold"):
            assert via_log[name][metric] == pytest.approx(via_build[name][metric], nan_ok=True)
