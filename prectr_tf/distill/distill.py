"""Distil the relevance encoder from a teacher (DESIGN §5): pairs → teacher logits → student.

    pairs    = teacher_pairs(train log [, candidate sets])   labelled, unlabelled, unshown
    teacher  = a teacher-logits file, or the simulated judge on the simulator
    student  = train_student(pairs, teacher logits)           KD + CE, early stopping by query

`distill_encoder` is what `prectr distill` and the demo run; the student
folder it writes is what `train_staged` takes as `distilled_encoder`.
"""

import os

import numpy as np

from prectr_tf.distill.pairs import teacher_pairs
from prectr_tf.distill.student import StudentConfig, train_student
from prectr_tf.distill.teacher_logits import TeacherLogits, write_teacher_logits

TEACHER_FILE = "teacher_logits.parquet"


def judge_pairs(pairs, judge):
    """The simulated judge's `TeacherLogits` for pairs with a `true_level`."""
    levels = pairs["true_level"].to_numpy()
    if np.any(levels < 0):
        raise ValueError("the simulated judge needs every pair's true level (pairs built from "
                         "a SimulatedLog with its candidates)")
    queries = pairs["query"].to_numpy(dtype=object)
    titles = pairs["title"].to_numpy(dtype=object)
    return TeacherLogits(queries, titles, judge.logits(queries, titles, levels))


def simulation_pairs(sim, data_dir):
    """`teacher_pairs` of a simulated log's training requests (those of the
    built dataset's train split), with the unshown candidates."""
    from prectr_tf.data.pipeline import read_split_columns  # noqa: PLC0415 (imports TF)

    if sim.candidates is None:
        raise ValueError("the simulated log has no candidate sets: simulate with "
                         "simulator.write_candidates: true to distil on the candidate space")
    train_requests = np.unique(read_split_columns(data_dir, "train", ("request_id",))["request_id"])
    return teacher_pairs(sim.log, sim.candidates, sim.items, requests=train_requests)


def distill_encoder(pairs, teacher, vocabulary, encoder_config, num_levels, out_dir,
                    config=StudentConfig(), teacher_name=None, verbose=1):
    """Train the student on `pairs` against `teacher`'s logits.

    Args:
        pairs: `teacher_pairs` output (`query`, `title`, `label`, `source`).
        teacher: `TeacherLogits` covering every pair (extra pairs are fine).
        vocabulary: WordPiece tokens of the student.
        encoder_config: `EncoderConfig` of the student.
        num_levels: K; must equal the teacher's.
        out_dir: the student folder; the teacher logits used are written
            beside it as `teacher_logits.parquet`.
        config: `StudentConfig`.
        teacher_name: recorded in `student.json`.
        verbose: Keras progress output.

    Returns:
        `(student model, meta)` as `train_student`.
    """
    if teacher.num_levels != num_levels:
        raise ValueError(f"the teacher has K={teacher.num_levels} levels, the student "
                         f"{num_levels}")
    logits = teacher.lookup(pairs["query"].to_numpy(dtype=object),
                            pairs["title"].to_numpy(dtype=object))
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, TEACHER_FILE)
    if not os.path.exists(path):
        write_teacher_logits(path, pairs["query"].tolist(), pairs["title"].tolist(), logits)
    model, meta = train_student(pairs, vocabulary, encoder_config, num_levels, out_dir, config,
                                teacher_logits=logits, teacher=teacher_name, verbose=verbose)
    return model, meta
