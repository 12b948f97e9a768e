"""Training impressions per second: one process against a localhost cluster
of `MultiWorkerMirroredStrategy` workers (issue 11, DESIGN §9).

Simulates a log (default 30,000 impressions) and builds it with one train
file per worker, learns a WordPiece vocabulary, then for each `--workers`
count N starts N worker processes (N = 1: no strategy, a plain process)
that each build the model under the strategy and run one `fit` of
`1 + --runs` epochs of `--steps` global steps at the global `--batch-size`
(each worker reads its own files; epoch 0 traces and warms up). Epoch times
are taken by worker 0 from `on_epoch_begin` to `on_epoch_end`; the workers
are in lockstep (every step all-reduces the gradients), so worker 0's time
is the cluster's.

Honest about 2 cores: on this machine the workers share the same two cores,
so N = 2 measures what the all-reduce over gRPC and the second input
pipeline cost, not what a second machine would add. Prints impressions/s
(mean ± std, min, max over the runs) per model and worker count, the ratio
to one process, machine and versions.

    python benchmarks/distributed_throughput.py                    # ~5 min
    python benchmarks/distributed_throughput.py --models dnn --steps 10 --runs 1
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import textwrap  # noqa: E402

import numpy as np  # noqa: E402

from _common import machine_line  # noqa: E402

MODELS = ("dnn", "prectr_v1", "prectr_v2")

WORKER = textwrap.dedent("""
    import contextlib, json, os, sys, time
    import keras
    from prectr_tf.data.pipeline import make_dataset
    from prectr_tf.layers.id_embedding import load_vocabulary
    from prectr_tf.models.config import preset
    from prectr_tf.models.distribute import is_chief, make_strategy
    from prectr_tf.models.prectr_model import PRECTRModel
    data_dir, vocab_path, name, batch, steps, runs, out = sys.argv[1:8]
    batch, steps, runs = int(batch), int(steps), int(runs)
    multi = "TF_CONFIG" in os.environ
    strategy = make_strategy("multi_worker_mirrored") if multi else None
    keras.utils.set_random_seed(0)
    vocab = load_vocabulary(vocab_path)
    with strategy.scope() if multi else contextlib.nullcontext():
        model = PRECTRModel.from_dataset(data_dir, preset(name), wordpiece_vocabulary=vocab)
        model.build()
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
    times = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.started)

    data = make_dataset(data_dir, "train", batch_size=batch, repeat=True, drop_remainder=True,
                        seed=0, shard_by="file" if multi else "data")
    model.fit(data, epochs=1 + runs, steps_per_epoch=steps, verbose=0, callbacks=[Clock()])
    if is_chief():
        with open(out, "w") as fh:
            json.dump({"seconds": times[1:], "warmup": times[0],
                       "replicas": strategy.num_replicas_in_sync if multi else 1}, fh)
""")


def run(data_dir, vocab_path, name, workers, args, work):
    """One measurement: `workers` processes; returns worker 0's record."""
    from prectr_tf.models.distribute import local_cluster  # noqa: PLC0415

    out = os.path.join(work, f"{name}-{workers}.json")
    argv = [sys.executable, "-c", WORKER, data_dir, vocab_path, name, str(args.batch_size),
            str(args.steps), str(args.runs), out]
    env = dict(os.environ)
    env.pop("TF_CONFIG", None)
    configs = local_cluster(workers) if workers > 1 else [None]
    procs = []
    for config in configs:
        worker_env = dict(env, **({"TF_CONFIG": config} if config else {}))
        procs.append(subprocess.Popen(argv, env=worker_env, stdout=subprocess.DEVNULL,
                                      stderr=open(out + f".{len(procs)}.log", "w")))
    codes = [p.wait() for p in procs]
    if any(codes):
        raise SystemExit(f"{name} with {workers} worker(s) failed: see {out}.*.log")
    with open(out) as fh:
        return json.load(fh)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--impressions", type=int, default=30_000)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--batch-size", type=int, default=512, help="global batch")
    parser.add_argument("--steps", type=int, default=30, help="steps per timed epoch")
    parser.add_argument("--runs", type=int, default=3, help="timed epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args(argv)

    import keras  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    from prectr_tf.data.build import BuildConfig, build_dataset  # noqa: PLC0415
    from prectr_tf.data.schema import DataSchema  # noqa: PLC0415
    from prectr_tf.data.simulator import SimulatorConfig, simulate  # noqa: PLC0415
    from prectr_tf.layers.text_preprocessing import (learn_wordpiece_vocabulary,  # noqa: PLC0415
                                                     save_vocabulary)

    print("# training throughput: one process vs MultiWorkerMirroredStrategy on localhost")
    print(machine_line())
    print(f"versions: tensorflow {tf.__version__}, keras {keras.__version__}")
    print(f"load average at start: {os.getloadavg()}")
    requests = args.impressions // 10
    sim_config = SimulatorConfig(num_requests=requests, num_users=max(1, requests // 5),
                                 seed=args.seed)
    result = {"args": vars(args), "machine": machine_line(), "runs": {}}
    with tempfile.TemporaryDirectory(prefix="distributed-throughput-") as work:
        sim = simulate(sim_config)
        data_dir = os.path.join(work, "dataset")
        shards = max(args.workers)
        train_rows = int(len(sim.log) * 0.8)
        build_dataset(sim.log, data_dir, DataSchema(num_item_features=sim_config.num_item_features),
                      BuildConfig(eval_fraction=0.2, num_shards=shards,
                                  chunk_size=max(1, -(-train_rows // shards))),
                      overwrite=True, progress=False)
        vocab_path = os.path.join(work, "wordpiece.txt")
        save_vocabulary(learn_wordpiece_vocabulary(
            sorted(set(sim.log["query"]) | set(sim.log["item_title"])), vocabulary_size=2000),
            vocab_path)
        print(f"data: {len(sim.log):,} impressions, {shards} train files; global batch "
              f"{args.batch_size}, {args.steps} steps x {args.runs} timed epochs (+1 warm-up)")
        print(f"{'model':<10} {'workers':>7} {'impressions/s':>18} {'min':>8} {'max':>8} "
              f"{'vs 1':>6}")
        for name in args.models:
            base = None
            for workers in args.workers:
                record = run(data_dir, vocab_path, name, workers, args, work)
                rates = args.batch_size * args.steps / np.asarray(record["seconds"])
                mean = float(rates.mean())
                base = base or mean
                std = float(rates.std(ddof=1)) if len(rates) > 1 else float("nan")
                result["runs"][f"{name}/{workers}"] = dict(record, rates=rates.tolist())
                print(f"{name:<10} {workers:>7} {mean:>10,.0f} ± {std:>5,.0f} "
                      f"{rates.min():>8,.0f} {rates.max():>8,.0f} {mean / base:>6.2f}",
                      flush=True)
    print(f"load average at end: {os.getloadavg()}")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
