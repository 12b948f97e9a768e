"""Does the split encoder learn relevance? Stage-0 SFT by arrangement and
early-stopping patience (issue 8: the split arrangement is the one that
serves, so its quality must be known).

Simulates the default simulator at `--requests` requests (x10 impressions;
users = requests / 5, the same data as `serving_latency.py` at the same seed),
builds it, then for every `--split-layers` x `--patience` trains a stage-0
SFT student (`pretrain_encoder`: early stopping on held-out queries, up to
`--max-epochs` epochs of at least 100 steps) and prints its relevance head on
the full candidate space of the eval requests, its best epoch, and its
per-epoch train / validation loss (a plateau followed by a drop is the
pattern to look for). Per-run numbers go to `--out`.

    python benchmarks/split_stage0.py --split-layers 2 --patience 10
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--split-layers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--patience", type=int, nargs="+", default=[3])
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--work-dir", help="keep the dataset and students here")
    parser.add_argument("--out", default=os.path.join("runs", "split_stage0.json"))
    args = parser.parse_args(argv)

    from prectr_tf.data.simulator import SimulatorConfig
    from _common import simulated_dataset
    from prectr_tf.evaluation.full_space import full_space_examples
    from prectr_tf.evaluation.relevance import student_diagnostics
    from prectr_tf.models.config import EncoderConfig, preset
    from prectr_tf.models.training import TrainConfig, pretrain_encoder

    work = args.work_dir or tempfile.mkdtemp(prefix="split-stage0-")
    sim_config = SimulatorConfig(num_users=args.requests // 5, num_requests=args.requests,
                                 seed=args.seed)
    sim, _, data_dir = simulated_dataset(sim_config, work)
    space = full_space_examples(sim, data_dir, "eval")
    runs = {}
    for split in args.split_layers:
        for patience in args.patience:
            config = preset("prectr_v2", encoder=EncoderConfig(num_split_layers=split))
            train = TrainConfig(seed=args.seed, encoder_patience=patience,
                                encoder_sft_epochs=args.max_epochs)
            started = time.perf_counter()
            student = pretrain_encoder(data_dir, config, train,
                                       os.path.join(work, f"split{split}_patience{patience}"),
                                       verbose=0)
            d = student_diagnostics(student, space)
            with open(os.path.join(student, "student.json")) as fh:
                history = json.load(fh)["history"]
            key = f"split{split} patience{patience}"
            runs[key] = {**d, "seconds": time.perf_counter() - started,
                         "loss": history["loss"], "val_loss": history["val_loss"]}
            print(f"{key}: full-space accuracy {d['relevance_accuracy']:.3f} (majority "
                  f"{d['majority_accuracy']:.3f}), level-0 recall {d['level0_recall']:.3f}, "
                  f"NDCG@10 by E[level] {d['ndcg_at_10_expected_level']:.3f}; best epoch "
                  f"{d['best_epoch'] + 1} of {d['epochs_run']}, "
                  f"{runs[key]['seconds']:.0f}s", flush=True)
            print("  loss     " + " ".join(f"{x:.3f}" for x in history["loss"]))
            print("  val_loss " + " ".join(f"{x:.3f}" for x in history["val_loss"]), flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump({"requests": args.requests, "seed": args.seed, "runs": runs}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
