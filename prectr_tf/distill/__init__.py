"""The LLM-distilled relevance encoder of PRECTR-V2 (DESIGN §5).

Teachers write teacher-logits files (`teacher_logits`); the simulated judge
stands in for an LLM on the simulator (`simulated_judge`); `teacher_pairs`
chooses what the teacher labels; `train_student` trains the compact encoder by
SFT or distillation, to convergence. The torch teacher lives in
`prectr_tf.distill.teachers.minilm` and is imported from nowhere else.
"""

from prectr_tf.distill.distill import distill_encoder, judge_pairs, simulation_pairs
from prectr_tf.distill.early_stopping import ResumableEarlyStopping
from prectr_tf.distill.pairs import SOURCES, split_by_query, teacher_pairs
from prectr_tf.distill.simulated_judge import HOMEDEPOT_MINILM_CONFUSION, SimulatedJudge
from prectr_tf.distill.student import (StudentConfig, build_student, load_student,
                                       relevance_probabilities, train_student)
from prectr_tf.distill.teacher_logits import (TeacherFileError, TeacherLogits,
                                              read_teacher_logits, write_teacher_logits)

__all__ = [
    "HOMEDEPOT_MINILM_CONFUSION",
    "ResumableEarlyStopping",
    "SOURCES",
    "SimulatedJudge",
    "StudentConfig",
    "TeacherFileError",
    "TeacherLogits",
    "build_student",
    "distill_encoder",
    "judge_pairs",
    "load_student",
    "read_teacher_logits",
    "relevance_probabilities",
    "simulation_pairs",
    "split_by_query",
    "teacher_pairs",
    "train_student",
    "write_teacher_logits",
]
