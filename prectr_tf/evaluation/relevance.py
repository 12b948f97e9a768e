"""How good a relevance head is on the full candidate space (DESIGN §8).

Every candidate of the eval requests, shown or not, with its true level and
true click probability (`prectr_tf.evaluation.full_space`): the measure of
whether the encoder learned the candidate space serving sees, not only the
mostly relevant items the logging policy showed.
"""

import numpy as np

from prectr_tf.metrics.predictions import macro_f1, ndcg_per_list


def relevance_diagnostics(table, relevance_probs, k=10):
    """Accuracy, level-0 recall, macro-F1 and NDCG@k by expected level.

    Args:
        table: `FullSpace.table` (`request_id`, `relevance`, `click_prob`).
        relevance_probs: float `[N, K]`, the head's distribution per row.
        k: NDCG cut-off.

    Returns:
        dict: `relevance_accuracy` (argmax = true level), `level0_recall`
        (share of true level-0 candidates called level 0),
        `relevance_macro_f1`, and `ndcg_at_10_expected_level` — NDCG@k with
        gain = true p when ranking each request by Σ_k k·p_k alone, the
        relevance head's share of the ranking.

    Example:
    >>> import pandas as pd
    >>> table = pd.DataFrame({"request_id": ["a", "a"], "relevance": [0, 2],
    ...                       "click_prob": [0.1, 0.5]})
    >>> relevance_diagnostics(table, np.array([[.9, .1, 0], [0, .2, .8]]))["relevance_accuracy"]
    1.0
    """
    probs = np.asarray(relevance_probs, np.float64)
    level = table["relevance"].to_numpy()
    predicted = probs.argmax(axis=1)
    expected = probs @ np.arange(probs.shape[1])
    return {
        "relevance_accuracy": float((predicted == level).mean()),
        "level0_recall": float((predicted[level == 0] == 0).mean()),
        "relevance_macro_f1": float(macro_f1(level, predicted)),
        "ndcg_at_10_expected_level": float(np.nanmean(ndcg_per_list(
            table["request_id"].to_numpy(), table["click_prob"].to_numpy(), expected, k=k)[1])),
    }


def student_diagnostics(student_dir, space):
    """A stage-0 student's own relevance head on a full candidate space, and
    how it trained.

    Args:
        student_dir: a student folder (`prectr distill`, `pretrain_encoder`).
        space: `prectr_tf.evaluation.full_space.full_space_examples` output.

    Returns:
        dict: `relevance_diagnostics` of the student's head, plus
        `majority_accuracy` (always answering the space's commonest level),
        and from the folder's meta `method`, `best_epoch` (0-based),
        `epochs_run` and `num_pairs`.
    """
    from prectr_tf.distill.student import load_student, relevance_probabilities  # noqa: PLC0415

    model, _, meta = load_student(student_dir)
    probs = relevance_probabilities(model, space.features["query"], space.features["item_title"])
    levels = space.table["relevance"].to_numpy()
    return {**relevance_diagnostics(space.table, probs),
            "majority_accuracy": float(np.bincount(levels).max() / len(levels)),
            "method": meta["method"], "best_epoch": meta["best_epoch"],
            "epochs_run": len(meta["history"].get("loss", [])),
            "num_pairs": meta["num_pairs"]}
