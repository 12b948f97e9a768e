"""`DistillationLoss`: T²·KL(teacher ‖ student) + α·CE on labelled pairs,
against a float64 numpy reference."""

import keras
import numpy as np
import pytest

from prectr_tf.losses import DistillationLoss, distillation_loss, pack_distillation_targets


def log_softmax(z):
    z = np.asarray(z, np.float64)
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def numpy_distillation(labels, teacher, student, temperature, alpha, kd_weight=1.0):
    log_q = log_softmax(np.asarray(teacher) / temperature)
    log_s = log_softmax(np.asarray(student) / temperature)
    kl = (np.exp(log_q) * (log_q - log_s)).sum(-1)
    ce = np.array([-log_softmax(student)[i, y] if y >= 0 else 0.0 for i, y in enumerate(labels)])
    return kd_weight * temperature ** 2 * kl + alpha * ce


@pytest.mark.parametrize("temperature,alpha,kd_weight", [(1.0, 1.0, 1.0), (2.0, 0.5, 1.0),
                                                         (4.0, 0.0, 1.0), (2.0, 1.0, 0.0)])
def test_per_row_matches_numpy(temperature, alpha, kd_weight):
    rng = np.random.default_rng(0)
    b, k = 64, 4
    teacher = rng.normal(0, 2, (b, k)).astype("float32")
    student = rng.normal(0, 2, (b, k)).astype("float32")
    labels = rng.integers(-1, k, b)
    got = distillation_loss(labels, teacher, student, temperature, alpha, kd_weight)
    np.testing.assert_allclose(got, numpy_distillation(labels, teacher, student, temperature,
                                                       alpha, kd_weight), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "none"])
def test_reductions_and_sample_weight(reduction):
    rng = np.random.default_rng(1)
    b, k = 40, 3
    teacher, student = rng.normal(size=(b, k)), rng.normal(size=(b, k)).astype("float32")
    labels = rng.integers(-1, k, b)
    weights = rng.uniform(0.1, 2, b).astype("float32")
    per_row = numpy_distillation(labels, teacher, student, 2.0, 1.0) * weights
    expected = {"none": per_row, "sum": per_row.sum(),
                "sum_over_batch_size": per_row.sum() / b}[reduction]
    loss = DistillationLoss(reduction=reduction)
    got = loss(pack_distillation_targets(labels, teacher), student, sample_weight=weights)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_hand_computed_cases():
    z = np.log(np.array([[0.7, 0.2, 0.1]], "float32"))
    # student == teacher: KL is 0, so an unlabelled pair costs nothing and a
    # labelled one costs α·(−log p_y)
    assert float(distillation_loss([-1], z, z)[0]) == pytest.approx(0.0, abs=1e-6)
    assert float(distillation_loss([1], z, z, alpha=0.5)[0]) == pytest.approx(
        -0.5 * np.log(0.2), rel=1e-5)
    # a uniform student against a one-hot-ish teacher at T=1: KL = log K − H(q)
    q = np.array([[0.97, 0.01, 0.01, 0.01]])
    kl = np.log(4) + (q * np.log(q)).sum()
    assert float(distillation_loss([-1], np.log(q), np.zeros((1, 4)), temperature=1.0)[0]) == \
        pytest.approx(kl, rel=1e-5)


def test_minimising_it_recovers_the_teacher_on_unlabelled_pairs():
    rng = np.random.default_rng(2)
    teacher = rng.normal(0, 1.5, (8, 4)).astype("float32")
    logits = keras.Variable(np.zeros((8, 4), "float32"))
    optimizer = keras.optimizers.Adam(0.1)
    loss = DistillationLoss(temperature=1.0)
    y = pack_distillation_targets(np.full(8, -1), teacher)
    import tensorflow as tf
    for _ in range(400):
        with tf.GradientTape() as tape:
            value = loss(y, logits)
        optimizer.apply([tape.gradient(value, logits)], [logits])
    np.testing.assert_allclose(np.exp(log_softmax(logits.numpy())), np.exp(log_softmax(teacher)),
                               atol=5e-3)


def test_config_round_trip_and_bad_temperature():
    loss = DistillationLoss(temperature=3.0, alpha=0.25, kd_weight=0.5, name="kd")
    again = DistillationLoss.from_config(loss.get_config())
    assert (again.temperature, again.alpha, again.kd_weight, again.name) == (3.0, 0.25, 0.5, "kd")
    with pytest.raises(ValueError, match="temperature"):
        DistillationLoss(temperature=0)
