import numpy as np
import pytest
import tensorflow as tf
import keras

from prectr_tf.metrics import GroupAUC, exact_auc, grouped_auc
from prectr_tf.metrics.reference import auc, group_auc


def random_rows(seed, n=500, groups=40):
    rng = np.random.default_rng(seed)
    users = rng.integers(0, groups, n)
    labels = rng.integers(0, 2, n)
    labels[users == 1] = 0  # one-class users
    labels[users == 2] = 1
    labels[rng.random(n) < 0.1] = -1  # missing clicks
    scores = (rng.integers(0, 20, n) / 19.0).astype("float32")  # ties
    weights = rng.uniform(0.5, 2.0, n).astype("float32")
    return users, labels, scores, weights


def test_hand_computed_one_class_groups_and_ties():
    m = GroupAUC("user_id")
    # a: pos .9 vs negs .5, .9 -> (1 + .5)/2 = .75 over 3 rows; b: one class; c: AUC 0, 2 rows
    m.update_state({"labels": [1, 0, 0, 1, 1, 0], "user_id": list("aaabcc")},
                   [0.9, 0.5, 0.9, 0.3, 0.2, 0.8])
    assert float(m.result()) == pytest.approx((3 * 0.75 + 2 * 0.0) / 5)
    assert m.name == "gauc_user_id"


@pytest.mark.parametrize("seed", range(3))
def test_streaming_matches_numpy_reference(seed):
    users, labels, scores, weights = random_rows(seed)
    m = GroupAUC("user_id", name="gauc_user")
    for chunk in np.array_split(np.arange(len(users)), 7):  # users span batches
        m.update_state({"labels": labels[chunk], "user_id": users[chunk].astype(str)},
                       scores[chunk][:, None], sample_weight=weights[chunk])
    expected = group_auc(labels, scores, users, weights)
    assert float(m.result()) == pytest.approx(expected, abs=1e-6)
    unweighted = GroupAUC("user_id")
    unweighted.update_state({"labels": labels, "user_id": users}, scores)
    assert float(unweighted.result()) == pytest.approx(group_auc(labels, scores, users), abs=1e-6)


def test_exact_auc_is_one_group():
    users, labels, scores, weights = random_rows(5)
    m = exact_auc()
    m.update_state(labels, scores, sample_weight=weights)
    assert m.name == "auc"
    assert float(m.result()) == pytest.approx(auc(labels, scores, weights), abs=1e-7)


def test_masked_rows_are_not_negatives():
    m = GroupAUC("user_id")
    m.update_state({"labels": [1, 0, -1], "user_id": [1, 1, 1]}, [0.5, 0.1, 0.9])
    assert float(m.result()) == 1.0  # the -1 row with the top score is ignored


def test_empty_or_single_class_gives_zero_and_reset_clears():
    m = GroupAUC("query_id")
    assert float(m.result()) == 0.0
    m.update_state({"labels": [1, 1], "query_id": [3, 4]}, [0.2, 0.4])
    assert float(m.result()) == 0.0
    m.update_state({"labels": [0], "query_id": [3]}, [0.1])
    assert float(m.result()) == 1.0
    m.reset_state()
    assert float(m.result()) == 0.0


def test_runs_in_tf_function_with_varying_batch_sizes():
    users, labels, scores, _ = random_rows(1)
    m = GroupAUC("user_id")

    @tf.function
    def step(y, u, s):
        m.update_state({"labels": y, "user_id": u}, s)
        return m.result()

    for chunk in np.array_split(np.arange(len(users)), 5):
        value = step(labels[chunk], users[chunk], scores[chunk])
    assert float(value) == pytest.approx(group_auc(labels, scores, users), abs=1e-6)


def test_grouped_auc_function():
    gauc, used = grouped_auc([5, 5, 6, 6, 7], [1, 0, 0, 1, 1], [0.3, 0.2, 0.9, 0.1, 0.5])
    assert float(gauc) == pytest.approx(0.5) and int(used) == 2


def test_model_evaluate_without_xla():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 3)).astype("float32")
    y = (x[:, 0] > 0).astype("float32")
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(inputs))
    model.compile(loss="binary_crossentropy", metrics=[exact_auc()], jit_compile=False)
    logs = model.evaluate(x, y, batch_size=20, verbose=0, return_dict=True)
    assert logs["auc"] == pytest.approx(auc(y, model.predict(x, verbose=0).ravel()), abs=1e-6)


def test_serialization_round_trip():
    m = GroupAUC("query_id", label_key="click", name="gauc_query")
    restored = keras.metrics.deserialize(keras.metrics.serialize(m))
    assert isinstance(restored, GroupAUC) and restored.get_config() == m.get_config()
    restored.update_state({"click": [1, 0], "query_id": ["q", "q"]}, [0.9, 0.1])
    assert float(restored.result()) == 1.0
