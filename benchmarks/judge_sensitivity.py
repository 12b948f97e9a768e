"""How good must the teacher be? Stage 0 by SFT vs distilled from judges of
known accuracy, on the full candidate space (issue 7).

For each seed: simulate the default simulator at `--requests` requests (x10
impressions; users = requests / 5), build it (eval: the latest 20 % of
requests), then train stage-0 students that differ only in their teacher:

* `sft`: no teacher, the labelled pairs of the train split (`pretrain_encoder`:
  early stopping by query, up to `--max-epochs`);
* `judge:default`: `SimulatedJudge()` — the MiniLM teacher's Home Depot
  confusion (the demo's and `quality.py --encoder-init distilled`'s judge);
* `judge:<a>`: `SimulatedJudge.with_accuracy(a)`, right with probability a
  on every level and wrong only by one level.

Each distilled student learns from every distinct pair of the training
requests' candidate sets (labelled, unlabelled, unshown) with the judge's
logits, plus CE on the labelled pairs. Printed per student: full-space
accuracy, level-0 recall, macro-F1, NDCG@10 by expected level (`relevance_
diagnostics` over every candidate of the eval requests), the judge's own
argmax accuracy on the eval candidates, epochs and seconds. Per-seed numbers
go to `--out`.

    python benchmarks/judge_sensitivity.py --seeds 1 --judges default 0.7 0.9 1.0
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

COLUMNS = ("relevance_accuracy", "level0_recall", "relevance_macro_f1",
           "ndcg_at_10_expected_level", "judge_accuracy", "best_epoch", "seconds")


def run_seed(seed, args, work):
    from prectr_tf.data.build import BuildConfig, build_dataset
    from prectr_tf.data.schema import DataSchema
    from prectr_tf.data.simulator import SimulatorConfig, simulate
    from prectr_tf.data.validation import validate_log
    from prectr_tf.distill import SimulatedJudge, distill_encoder, judge_pairs, simulation_pairs
    from prectr_tf.evaluation.full_space import full_space_examples
    from prectr_tf.evaluation.relevance import student_diagnostics
    from prectr_tf.models.config import preset
    from prectr_tf.models.training import (TrainConfig, pretrain_encoder, student_config,
                                           wordpiece_vocabulary)

    config = SimulatorConfig(seed=seed, num_users=args.requests // 5, num_requests=args.requests)
    sim = simulate(config)
    schema = DataSchema(num_relevance_levels=config.num_relevance_levels,
                        num_item_features=config.num_item_features)
    frame, _ = validate_log(sim.log, schema, f"simulated-seed-{seed}")
    data_dir = os.path.join(work, "dataset")
    build_dataset(frame, data_dir, schema, BuildConfig(eval_fraction=0.2), overwrite=True,
                  progress=False)
    space = full_space_examples(sim, data_dir, "eval")
    train = TrainConfig(encoder_sft_epochs=args.max_epochs, wordpiece_vocabulary_size=2000,
                        seed=seed)
    model = preset("prectr_v2")
    vocabulary = wordpiece_vocabulary(data_dir, work, train.wordpiece_vocabulary_size)
    pairs = simulation_pairs(sim, data_dir)
    eval_queries = [q.decode("utf-8") for q in space.features["query"]]
    eval_titles = [t.decode("utf-8") for t in space.features["item_title"]]
    results = {}
    for name in ["sft"] + [f"judge:{j}" for j in args.judges]:
        started = time.perf_counter()
        if name == "sft":
            student_dir = pretrain_encoder(data_dir, model, train, work, verbose=0)
            judge_accuracy = float("nan")
        else:
            value = name.split(":", 1)[1]
            judge = (SimulatedJudge(seed=seed) if value == "default"
                     else SimulatedJudge.with_accuracy(float(value), seed=seed))
            student_dir = os.path.join(work, name.replace(":", "_"))
            distill_encoder(pairs, judge_pairs(pairs, judge), vocabulary, model.encoder,
                            model.num_relevance_levels, student_dir, student_config(train),
                            teacher_name=name, verbose=0)
            judged = judge.judged_levels(eval_queries, eval_titles, space.table["relevance"])
            judge_accuracy = float((judged == space.table["relevance"].to_numpy()).mean())
        d = student_diagnostics(student_dir, space)
        results[name] = {**{k: d[k] for k in COLUMNS[:4]}, "judge_accuracy": judge_accuracy,
                         "best_epoch": d["best_epoch"], "epochs_run": d["epochs_run"],
                         "seconds": time.perf_counter() - started}
        print(f"  seed {seed} {name:<14} " + "  ".join(
            f"{k} {results[name][k]:.3f}" for k in COLUMNS), flush=True)
    return {"seed": seed, "pairs": {k: int(v) for k, v in pairs["source"].value_counts().items()},
            "students": results}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--judges", nargs="+", default=["default", "0.7", "0.9", "1.0"])
    parser.add_argument("--out", default=os.path.join("runs", "judge_sensitivity.json"))
    args = parser.parse_args(argv)
    per_seed = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        with tempfile.TemporaryDirectory() as work:
            per_seed.append(run_seed(seed, args, work))
        with open(args.out, "w") as fh:
            json.dump({"settings": vars(args), "per_seed": per_seed}, fh, indent=1)
    names = list(per_seed[0]["students"])
    print(f"\n{len(per_seed)} seed(s), {args.requests * 10:,} impressions; mean over seeds")
    print("| student | " + " | ".join(COLUMNS) + " |")
    print("|---|" + "---|" * len(COLUMNS))
    for name in names:
        cells = [np.nanmean([s["students"][name][c] for s in per_seed]) for c in COLUMNS]
        print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
