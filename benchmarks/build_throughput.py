"""Build throughput: histories + cross-user contexts on a simulated log.

Simulates a log (default 1,000,000 impressions), then times, over --runs
repeats, (a) `ExampleBuilder` deriving every impression's user history and
own-user-free query context (the step the issue's 50,000 impressions/s target
is about) and (b) the whole `build_dataset` (read + validate + histories +
TFRecord serialisation + vocabularies). Prints impressions per second
(mean ± std, min, max), peak resident memory of each phase (measured in a
fresh child process so phases do not inherit each other's peak), machine
and versions.

    python benchmarks/build_throughput.py                 # 1M impressions, 3 runs
    python benchmarks/build_throughput.py --impressions 200000 --runs 1
    python benchmarks/build_throughput.py --runs 1 --beam-workers 1 2

With `--beam-workers`, the same log is also built by the Beam pipeline
(`prectr build --runner DirectRunner`), one run per worker count, and its
speed is given as a ratio to the whole `build_dataset` of the same run, with
the peak memory of the driver alone and of the driver and its worker
processes together. A phase killed by the OOM killer is reported, not waited
for.
"""

import os

# Quiet TensorFlow in this process and in the spawned children (inherited).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse
import filecmp
import json
import multiprocessing as mp
import queue as queue_module
import sys
import tempfile
import time

import numpy as np

from _common import TreeMemorySampler, machine_line, peak_rss_mb


def _histories(log_path, schema_json, runs, queue):
    import pandas as pd  # noqa: PLC0415 (child process)

    from prectr_tf.data.examples import ExampleBuilder
    from prectr_tf.data.schema import DataSchema
    from prectr_tf.data.validation import validate_log

    schema = DataSchema.from_json(schema_json)
    frame, _ = validate_log(pd.read_parquet(log_path), schema, log_path)
    rows = np.arange(len(frame))
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        builder = ExampleBuilder(frame, schema)
        for start in range(0, len(rows), 100_000):
            builder.lists(rows[start:start + 100_000])
        seconds.append(time.perf_counter() - started)
    queue.put({"seconds": seconds, "peak_rss_mb": peak_rss_mb()})


def _full_build(log_path, schema_json, runs, keep, queue):
    """`runs` timed builds; the last one's dataset is left in `keep`."""
    from prectr_tf.data.build import build_dataset
    from prectr_tf.data.schema import DataSchema

    schema = DataSchema.from_json(schema_json)
    seconds, phases = [], None
    for run in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            out = keep if run == runs - 1 else os.path.join(tmp, "ds")
            started = time.perf_counter()
            info = build_dataset(log_path, out, schema, progress=False, overwrite=True)
            seconds.append(time.perf_counter() - started)
            phases = info["seconds"]
    queue.put({"seconds": seconds, "last_phases": phases, "peak_rss_mb": peak_rss_mb()})


def _differing_file(beam_dir, reference_dir):
    """The first file in which the Beam build's dataset differs from
    `build_dataset`'s (`dataset.json` but for `runner` and `seconds`), or None."""
    def files(root):
        return sorted(os.path.relpath(os.path.join(d, f), root)
                      for d, _, names in os.walk(root) for f in names)

    def description(path):
        with open(path) as fh:
            return {k: v for k, v in json.load(fh).items() if k not in ("runner", "seconds")}

    names = files(reference_dir)
    if files(beam_dir) != names:
        return "the list of files"
    for name in names:
        a, b = os.path.join(beam_dir, name), os.path.join(reference_dir, name)
        if name == "dataset.json":
            if description(a) != description(b):
                return name
        elif not filecmp.cmp(a, b, shallow=False):
            return name
    return None


def _beam_build(log_path, schema_json, workers, reference_dir, queue):
    from prectr_tf.data.beam_build import build_dataset_beam
    from prectr_tf.data.schema import DataSchema

    schema = DataSchema.from_json(schema_json)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        build_dataset_beam(log_path, os.path.join(tmp, "ds"), schema, num_workers=workers)
        seconds = time.perf_counter() - started
        differing = (_differing_file(os.path.join(tmp, "ds"), reference_dir)
                     if os.path.exists(reference_dir) else "no reference (--full-build-runs 0)")
    queue.put({"seconds": [seconds], "peak_rss_mb": peak_rss_mb(), "differing": differing})


def _in_child(target, *args):
    """`target(*args, queue)` in a spawned process -> what it put on the
    queue, or `{"failed": ...}` when the process died first (the OOM
    killer's SIGKILL leaves nothing on the queue)."""
    queue = mp.get_context("spawn").Queue()
    proc = mp.get_context("spawn").Process(target=target, args=(*args, queue))
    proc.start()
    with TreeMemorySampler(proc.pid) as memory:  # from here: no thread of ours in the child
        while True:
            try:
                result = queue.get(timeout=5)
                break
            except queue_module.Empty:
                if not proc.is_alive():
                    return {"failed": f"exit code {proc.exitcode}" + (
                        " (SIGKILL: out of memory?)" if proc.exitcode == -9 else "")}
    proc.join()
    return {**result, "peak_tree_rss_mb": memory.peak_mb}


def _summary(n, seconds):
    rates = n / np.asarray(seconds)
    return (f"{rates.mean():,.0f} ± {rates.std():,.0f} impressions/s "
            f"(min {rates.min():,.0f}, max {rates.max():,.0f}; {len(rates)} runs; "
            f"seconds {', '.join(f'{s:.2f}' for s in seconds)})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--impressions", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--full-build-runs", type=int, default=1,
                        help="runs of the whole build (slower: it writes TFRecords)")
    parser.add_argument("--beam-workers", type=int, nargs="*", default=[],
                        help="also build with the Beam pipeline on DirectRunner with each of "
                             "these worker counts (one run each; needs the `beam` extra)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from prectr_tf.data.schema import DataSchema
    from prectr_tf.data.simulator import SimulatorConfig, simulate

    page = 10
    # Default catalogue (5,000 items, 1,000 queries); users scale with the log.
    config = SimulatorConfig(seed=args.seed, num_users=args.impressions // 50,
                             num_requests=args.impressions // page, page_size=page,
                             num_candidates=100)
    started = time.perf_counter()
    sim = simulate(config)
    simulate_seconds = time.perf_counter() - started
    schema = DataSchema(num_item_features=config.num_item_features)
    with tempfile.TemporaryDirectory() as tmp:
        log_path = os.path.join(tmp, "log.parquet")
        sim.log.to_parquet(log_path)
        n = len(sim.log)
        hist = _in_child(_histories, log_path, schema.to_json(), args.runs)
        reference = os.path.join(tmp, "build_dataset")
        full = (_in_child(_full_build, log_path, schema.to_json(), args.full_build_runs,
                          reference) if args.full_build_runs else None)
        beam = {w: _in_child(_beam_build, log_path, schema.to_json(), w, reference)
                for w in args.beam_workers}

    import pandas as pd  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    print("# build throughput")
    print(machine_line())
    print(f"versions: tensorflow {tf.__version__}, numpy {np.__version__}, pandas {pd.__version__}")
    print(f"log: {n:,} impressions, {config.num_users:,} users, {config.num_queries:,} queries, "
          f"L_u={schema.history_length}, L_g={schema.context_length} "
          f"(simulated in {simulate_seconds:.1f}s, seed {args.seed})")
    print(f"histories + contexts: {_summary(n, hist['seconds'])}; "
          f"peak RSS {hist['peak_rss_mb']:,.0f} MB (target >= 50,000 impressions/s)")
    if full:
        print(f"full build (validate, histories, TFRecords, vocabularies): "
              f"{_summary(n, full['seconds'])}; peak RSS {full['peak_rss_mb']:,.0f} MB; "
              f"phases of the last run (s): {json.dumps(full['last_phases'])}")
    for workers, result in beam.items():
        if "failed" in result:
            print(f"Beam DirectRunner, {workers} worker(s): failed, {result['failed']}")
            continue
        ratio = (f"; {np.mean(full['seconds']) / result['seconds'][0]:.3f}x the whole build"
                 if full else "")
        print(f"Beam DirectRunner, {workers} worker(s): {_summary(n, result['seconds'])}{ratio}; "
              f"peak RSS of the driver {result['peak_rss_mb']:,.0f} MB, of the driver and its "
              f"workers together {result['peak_tree_rss_mb']:,.0f} MB (sampled each second); "
              + ("the same files as build_dataset's, byte for byte" if result["differing"] is None
                 else f"NOT the same files as build_dataset's: {result['differing']}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
