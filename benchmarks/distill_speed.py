"""Inference speed: the compact student vs the MiniLM teacher, same pairs (issue 7).

Both score the same `--pairs` real Home Depot (search term, product title)
pairs, tokenisation included, in batches of `--batch-size`:

* student: `build_student` (3 layers, d=64, 32 tokens — the paper-sized
  encoder of DESIGN §4.1) with a WordPiece vocabulary learned on the pairs
  (`--wordpiece-size`), weights random (speed does not depend on them),
  through `relevance_probabilities` (tokenizer in one `tf.function`, encoder
  and head XLA-compiled);
* teacher: `MiniLMTeacher.predict_logits` (pretrained all-MiniLM-L6-v2,
  6 layers, d=384, `--teacher-max-length` tokens), torch on the CPU.

One warm-up pass each, then `--runs` timed passes, alternating student and
teacher so load from other processes falls on both. Prints pairs per second
(mean ± std over the runs), the student/teacher ratio of the means, the
parameter counts, machine and versions. Each framework uses its default
thread pools (all cores).

    python benchmarks/distill_speed.py            # ~3 min on 2 cores
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from _common import machine_line  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=os.path.join("..", "shared", "data", "homedepot"))
    parser.add_argument("--pairs", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--wordpiece-size", type=int, default=8000)
    parser.add_argument("--teacher-max-length", type=int, default=48)
    args = parser.parse_args(argv)

    import keras  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415
    import torch  # noqa: PLC0415

    from prectr_tf.data.readers.homedepot import read_homedepot_pairs
    from prectr_tf.distill import build_student, relevance_probabilities
    from prectr_tf.distill.teachers.minilm import MiniLMTeacher
    from prectr_tf.layers.text_preprocessing import learn_wordpiece_vocabulary
    from prectr_tf.models.config import EncoderConfig

    pairs = read_homedepot_pairs(args.data_dir).sample(args.pairs, random_state=0)
    queries = pairs["search_term"].to_numpy(dtype=object)
    titles = pairs["product_title"].to_numpy(dtype=object)
    vocabulary = learn_wordpiece_vocabulary(list(queries) + list(titles),
                                            vocabulary_size=args.wordpiece_size)
    keras.utils.set_random_seed(0)
    student = build_student(vocabulary, EncoderConfig(), 4)
    teacher = MiniLMTeacher(num_levels=4, max_length=args.teacher_max_length)

    def run_student():
        relevance_probabilities(student, queries, titles, batch_size=args.batch_size)

    def run_teacher():
        teacher.predict_logits(list(queries), list(titles), batch_size=args.batch_size,
                               progress=False)

    runs = {"student": [], "teacher": []}
    load_before = os.getloadavg()
    for name, fn in (("student", run_student), ("teacher", run_teacher)):
        fn()  # warm-up: tracing, allocator, lazy loading
    for _ in range(args.runs):
        for name, fn in (("student", run_student), ("teacher", run_teacher)):
            started = time.perf_counter()
            fn()
            runs[name].append(args.pairs / (time.perf_counter() - started))
    load_after = os.getloadavg()

    print("# inference speed: student vs teacher")
    print(machine_line())
    print(f"versions: tensorflow {tf.__version__}, keras {keras.__version__}, torch "
          f"{torch.__version__}, numpy {np.__version__}")
    print(f"{args.pairs:,} Home Depot pairs, batch {args.batch_size}, 1 warm-up + {args.runs} "
          f"timed passes each, alternating; student 32 tokens, teacher "
          f"{args.teacher_max_length} tokens")
    print(f"load average before {', '.join(f'{x:.2f}' for x in load_before)}; after "
          f"{', '.join(f'{x:.2f}' for x in load_after)}")
    print()
    print("| model | parameters | pairs/s (mean ± std) | min | max |")
    print("|---|---|---|---|---|")
    params = {"student": student.count_params(), "teacher": teacher.num_parameters}
    for name, rates in runs.items():
        rates = np.asarray(rates)
        print(f"| {name} | {params[name]:,} | {rates.mean():,.0f} ± {rates.std():,.0f} "
              f"| {rates.min():,.0f} | {rates.max():,.0f} |")
    print()
    print(f"student/teacher = {np.mean(runs['student']) / np.mean(runs['teacher']):.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
