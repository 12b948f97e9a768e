"""Where a training step's time goes: the top TensorFlow ops of a profiler trace.

Simulates a log (default 30,000 impressions), builds it, learns a WordPiece
vocabulary, and for each model in `--models` (default `prectr_v2`) runs
`fit` for `--warmup` steps, then `--steps` steps under
`tf.profiler.experimental` (a trace of the host CPU). The trace's op events
(`name:Type` on the executor threads) are summed by op type and by the
model part in the op's name scope (`encoder`, `ctr_tower`, ...); function-call
ops, which contain other ops, are left out so no time counts twice.

Prints the top `--top` op types and the parts with their share of op time,
machine and versions; JSON to `--out`. Compare two checkouts by running the
script with `PYTHONPATH=<checkout>`.

    python benchmarks/profile_train_step.py                       # ~3 min on 2 cores
    python benchmarks/profile_train_step.py --models prectr_v1 dcn_v2 --steps 10
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse  # noqa: E402
import collections  # noqa: E402
import glob  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from _common import machine_line, simulated_dataset  # noqa: E402

# Ops that run other ops (their events enclose the inner ops' events).
CALL_OPS = {"PartitionedCall", "StatefulPartitionedCall", "While", "If", "StatelessIf",
            "StatelessWhile", "__inference", "IteratorGetNext", "OptionalGetValue"}


def op_times(logdir):
    """`(by_type, by_part)`: summed op seconds from the trace under `logdir`."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2  # noqa: PLC0415

    by_type, by_part = collections.Counter(), collections.Counter()
    for path in glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True):
        space = xplane_pb2.XSpace()
        with open(path, "rb") as fh:
            space.ParseFromString(fh.read())
        for plane in space.planes:
            if plane.name != "/host:CPU":
                continue
            names = {key: meta.name for key, meta in plane.event_metadata.items()}
            for line in plane.lines:
                for event in line.events:
                    name = names.get(event.metadata_id, "")
                    # TF ops are `scope/name:Type`; executor and tf.data
                    # events (`ExecutorState::Process`, `Iterator::Root::...`)
                    # are not ops.
                    if ":" not in name or "::" in name or name.startswith("__"):
                        continue
                    scope, op_type = name.rsplit(":", 1)
                    if op_type in CALL_OPS or not op_type or " " in op_type:
                        continue
                    seconds = event.duration_ps * 1e-12
                    by_type[op_type] += seconds
                    parts = [p for p in scope.split("/") if p]
                    by_part[_part(parts)] += seconds
    return by_type, by_part


def _part(scopes):
    for name in ("encoder", "tokenizer", "ctr_tower", "event_encoder", "global_preference",
                 "personal_preference", "incentive", "relevance_head", "hard_negative",
                 "fusion", "cross", "deep", "embedding"):
        if any(name in s for s in scopes):
            return name
    if any(s.startswith("gradient") or "Grad" in s for s in scopes):
        return "gradients (unscoped)"
    return "other"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["prectr_v2"],
                        choices=["prectr_v1", "prectr_v2", "dcn_v2"])
    parser.add_argument("--impressions", type=int, default=30_000)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--out", default=os.path.join("runs", "profile_train_step.json"))
    args = parser.parse_args(argv)

    import keras  # noqa: PLC0415
    import prectr_tf  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    from prectr_tf.data.pipeline import make_dataset  # noqa: PLC0415
    from prectr_tf.data.simulator import SimulatorConfig  # noqa: PLC0415
    from prectr_tf.layers.text_preprocessing import learn_wordpiece_vocabulary  # noqa: PLC0415
    from prectr_tf.models.config import preset  # noqa: PLC0415
    from prectr_tf.models.dcn import DCNv2Baseline  # noqa: PLC0415
    from prectr_tf.models.prectr_model import PRECTRModel  # noqa: PLC0415

    work = tempfile.mkdtemp(prefix="profile_")
    requests = args.impressions // 10
    sim, _, data_dir = simulated_dataset(
        SimulatorConfig(seed=1, num_users=requests // 5, num_requests=requests), work)
    vocabulary = learn_wordpiece_vocabulary(
        sorted(set(sim.log["query"]) | set(sim.log["item_title"])), vocabulary_size=2000)
    report = {}
    for name in args.models:
        keras.utils.set_random_seed(0)
        model = (DCNv2Baseline.from_dataset(data_dir) if name == "dcn_v2" else
                 PRECTRModel.from_dataset(data_dir, preset(name), wordpiece_vocabulary=vocabulary))
        model.build()
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        data = make_dataset(data_dir, "train", batch_size=args.batch_size, repeat=True,
                            drop_remainder=True, seed=0)
        model.fit(data, epochs=1, steps_per_epoch=args.warmup, verbose=0)
        logdir = os.path.join(work, f"trace_{name}")
        tf.profiler.experimental.start(logdir)
        started = time.perf_counter()
        model.fit(data, epochs=1, steps_per_epoch=args.steps, verbose=0)
        seconds = time.perf_counter() - started
        tf.profiler.experimental.stop()
        by_type, by_part = op_times(logdir)
        total = sum(by_type.values())
        report[name] = {"seconds_per_step": seconds / args.steps, "op_seconds": total,
                        "by_type": by_type.most_common(), "by_part": by_part.most_common()}

    print("\n# top ops of a profiled training step")
    print(machine_line())
    print(f"versions: tensorflow {tf.__version__}, keras {keras.__version__}; package from "
          f"{os.path.dirname(prectr_tf.__file__)}")
    print(f"{args.impressions:,} impressions, batch {args.batch_size}, {args.warmup} warm-up + "
          f"{args.steps} traced steps, one run (op time sums both cores' threads)")
    for name, r in report.items():
        total = r["op_seconds"] or 1.0
        print(f"\n## {name}: {1000 * r['seconds_per_step']:.0f} ms per step (traced), "
              f"{1000 * r['op_seconds'] / args.steps:.0f} ms of op time per step")
        print("\n| op type | ms per step | share |\n|---|---|---|")
        for op, sec in r["by_type"][:args.top]:
            print(f"| {op} | {1000 * sec / args.steps:.1f} | {100 * sec / total:.1f} % |")
        print("\n| model part | ms per step | share |\n|---|---|---|")
        for part, sec in r["by_part"]:
            print(f"| {part} | {1000 * sec / args.steps:.1f} | {100 * sec / total:.1f} % |")
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump({"argv": sys.argv, "package": os.path.dirname(prectr_tf.__file__),
                   "report": report}, fh, indent=2)


if __name__ == "__main__":
    main()
