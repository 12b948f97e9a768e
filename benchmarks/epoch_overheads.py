"""What a 200k quality seed spends outside the training step, before and after.

Reads the dataset and trained models that `quality.py` left in a work
directory (`--work-dir <dir>/seed-<S>`) and measures, `--runs` times each:

1. one pass over the train part of the train split, the 10 % held-out
   requests filtered out, by the pipeline's chunked filter
   (`make_dataset(holdout_fraction=0.1)`) and by a one-record-at-a-time
   filter (what the pipeline did before: `parse_single_example` per record);
2. one pass over the held-out slice, as read before (shuffled, and filtered
   one record at a time, every epoch), shuffled with the chunked filter, and
   from the in-memory cache (`cache=True`, a second pass);
3. full-space scoring of each model in `--models` (`model.keras` under
   `models/`) over the seed's 400,000 eval candidates, every row encoded and
   each distinct (query, title) pair encoded once; the largest score
   difference and both full-space AUC and NDCG@10.

Prints machine, versions, min / median / max over the runs; JSON to `--out`.

    python benchmarks/epoch_overheads.py --work-dir ../runs/q200k_p1/seed-5 --seed 5
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from _common import machine_line  # noqa: E402


def _timed(make, runs):
    """Seconds of one full pass over `make()`'s dataset, `runs` times."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        for _ in make():
            pass
        times.append(time.perf_counter() - started)
    return times


def _one_by_one(data_dir, fraction, holdout):
    """The train split filtered a record at a time, as the pipeline did before."""
    import tensorflow as tf  # noqa: PLC0415

    from prectr_tf.data import pipeline  # noqa: PLC0415

    spec = {"request_id": tf.io.FixedLenFeature([], tf.string)}

    def keep(records, fraction, holdout):
        return records.filter(lambda record: tf.equal(pipeline.held_out_request(
            tf.io.parse_single_example(record, spec)["request_id"], fraction), holdout))

    chunked, pipeline._keep_requests = pipeline._keep_requests, keep
    try:
        return pipeline.make_dataset(data_dir, "train", batch_size=512, seed=1,
                                     holdout_fraction=fraction, holdout=holdout)
    finally:
        pipeline._keep_requests = chunked


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", required=True, help="a quality.py seed folder")
    parser.add_argument("--seed", type=int, required=True, help="its simulator seed")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--models", nargs="+", default=["prectr_v2", "v2_noise_r"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    import keras  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    import prectr_tf.models.prectr_model  # noqa: F401, PLC0415  (registers the model)
    from prectr_tf.data.pipeline import make_dataset  # noqa: PLC0415
    from prectr_tf.data.simulator import SimulatorConfig, simulate  # noqa: PLC0415
    from prectr_tf.evaluation.full_space import (full_space_examples,  # noqa: PLC0415
                                                 score_candidates)
    from prectr_tf.evaluation.soft_metrics import full_space_metrics  # noqa: PLC0415

    print(machine_line())
    print(f"versions: tensorflow {tf.__version__}, keras {keras.__version__}")
    data_dir = os.path.join(args.work_dir, "dataset")
    result = {"pipeline": {
        "train part, chunked filter": _timed(lambda: make_dataset(
            data_dir, "train", batch_size=512, seed=1, holdout_fraction=0.1), args.runs),
        "train part, one-by-one filter": _timed(
            lambda: _one_by_one(data_dir, 0.1, False), args.runs),
        "held-out slice, one-by-one filter": _timed(
            lambda: _one_by_one(data_dir, 0.1, True), args.runs),
        "held-out slice, chunked filter": _timed(lambda: make_dataset(
            data_dir, "train", batch_size=512, seed=1, holdout_fraction=0.1, holdout=True),
            args.runs)}}
    cached = make_dataset(data_dir, "train", batch_size=512, shuffle=False, cache=True,
                          holdout_fraction=0.1, holdout=True)
    for _ in cached:  # the first pass fills the cache
        pass
    result["pipeline"]["held-out slice, cached"] = _timed(lambda: cached, args.runs)
    for name, times in result["pipeline"].items():
        print(f"{name:<40} {np.median(times):6.2f} s "
              f"(min {min(times):.2f}, max {max(times):.2f}, {len(times)} runs)")

    sim = simulate(SimulatorConfig(seed=args.seed, num_users=args.requests // 5,
                                   num_requests=args.requests))
    space = full_space_examples(sim, data_dir, "eval")
    pairs = len(set(zip(space.features["query"], space.features["item_title"])))
    print(f"full space: {len(space):,} candidates, {pairs:,} distinct (query, title) pairs")
    result["full_space"] = {"candidates": len(space), "distinct_pairs": pairs, "models": {}}
    for name in args.models:
        model = keras.models.load_model(os.path.join(args.work_dir, "models", name,
                                                     "model.keras"))
        row = {}
        for label, once in (("every row", False), ("distinct pairs", True)):
            times, scores = [], None
            for _ in range(args.runs):
                started = time.perf_counter()
                scores = score_candidates(model, space.features, encode_distinct_pairs=once)
                times.append(time.perf_counter() - started)
            metrics = full_space_metrics(space.table, scores)
            row[label] = {"seconds": times, "auc": metrics["auc"],
                          "ndcg_at_10": metrics["ndcg_at_10"], "scores": scores}
        gap = float(np.abs(row["every row"]["scores"] - row["distinct pairs"]["scores"]).max())
        for label in row:
            del row[label]["scores"]
            print(f"{name:<18} {label:<15} {np.median(row[label]['seconds']):6.1f} s (min "
                  f"{min(row[label]['seconds']):.1f}, max {max(row[label]['seconds']):.1f}); "
                  f"AUC {row[label]['auc']:.6f} NDCG@10 {row[label]['ndcg_at_10']:.6f}")
        print(f"{name:<18} largest score difference {gap:.1e}")
        result["full_space"]["models"][name] = dict(row, max_score_difference=gap)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
