"""Evaluation cost against evaluation size: is `model.evaluate` linear?

Simulates a small log (default 3,000 requests), builds it, and evaluates a
`prectr_v1` model (random weights: the cost does not depend on them) on N
rows for each N in `--sizes` (default 125,000 to 1,000,000): the eval split's
rows repeated, each copy under new request ids (so there are N / list size
lists), with a random relevance representation attached (the
`RelevanceCache` path, so the encoder does not dominate and the metrics'
cost shows). Each N runs in a fresh child process: wall time of one
`model.evaluate(..., return_dict=True)` (every metric, grouped ones
included) and the child's peak resident memory (`VmHWM`). A child that runs
past `--timeout` seconds is stopped and reported as such, and the larger
sizes are not run.

The script uses only what every version of the package has, so it also
measures an older checkout: `PYTHONPATH=<old checkout> python
benchmarks/eval_scaling.py`. It prints machine, versions, the package's
path and the table; JSON to `--out`.

    python benchmarks/eval_scaling.py                       # ~5 min on 2 cores
    python benchmarks/eval_scaling.py --sizes 20000 40000   # smoke run
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse  # noqa: E402
import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from _common import machine_line, peak_rss_mb, simulated_dataset  # noqa: E402


def _evaluate(data_dir, vocab_path, rows, batch_size, conn):
    """Child: build the model, evaluate it on `rows` rows; send the result."""
    import keras  # noqa: PLC0415 (child process)
    import tensorflow as tf  # noqa: PLC0415

    from prectr_tf.data.pipeline import make_dataset
    from prectr_tf.layers.id_embedding import load_vocabulary
    from prectr_tf.models.config import preset
    from prectr_tf.models.prectr_model import PRECTRModel
    from prectr_tf.models.relevance_cache import FEATURE

    keras.utils.set_random_seed(0)
    model = PRECTRModel.from_dataset(data_dir, preset("prectr_v1"),
                                     wordpiece_vocabulary=load_vocabulary(vocab_path))
    model.build()
    model.compile(optimizer="adam")
    dim = model.config.encoder.hidden_dim
    eval_rows = sum(1 for _ in make_dataset(data_dir, "eval", batch_size=1, shuffle=False))

    def copy(index, example):
        features, labels = example
        features = dict(features)
        # A new request id per copy of the split: lists stay list-sized.
        features["request_id"] = tf.strings.join(
            [features["request_id"], tf.strings.as_string(index // eval_rows)], "#")
        features[FEATURE] = tf.random.stateless_normal(
            [dim], seed=tf.stack([tf.cast(index, tf.int32), 0]))
        return features, labels

    data = (make_dataset(data_dir, "eval", batch_size=1, shuffle=False).unbatch().repeat()
            .take(rows).enumerate().map(copy).batch(batch_size)
            .prefetch(tf.data.AUTOTUNE))
    started = time.perf_counter()
    results = model.evaluate(data, return_dict=True, verbose=0)
    seconds = time.perf_counter() - started
    conn.send({"rows": rows, "seconds": seconds, "peak_rss_mb": peak_rss_mb(),
               "gauc_user": float(results["gauc_user"]), "mrr": float(results["mrr"])})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--sizes", type=int, nargs="+",
                        default=[125_000, 250_000, 500_000, 1_000_000])
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--out", default=os.path.join("runs", "eval_scaling.json"))
    args = parser.parse_args(argv)

    import prectr_tf  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    from prectr_tf.data.simulator import SimulatorConfig  # noqa: PLC0415
    from prectr_tf.layers.text_preprocessing import learn_wordpiece_vocabulary  # noqa: PLC0415

    work = tempfile.mkdtemp(prefix="eval_scaling_")
    sim, _, data_dir = simulated_dataset(
        SimulatorConfig(seed=1, num_users=args.requests // 5, num_requests=args.requests), work)
    vocab_path = os.path.join(work, "wordpiece.txt")
    texts = sorted(set(sim.log["query"]) | set(sim.log["item_title"]))
    with open(vocab_path, "w") as fh:
        fh.write("\n".join(learn_wordpiece_vocabulary(texts, vocabulary_size=2000)) + "\n")

    context = mp.get_context("spawn")
    results = []
    for rows in args.sizes:
        if results and results[-1]["seconds"] is None:
            results.append({"rows": rows, "seconds": None, "not_run": True})
            continue
        parent_end, child_end = context.Pipe()
        proc = context.Process(target=_evaluate, args=(data_dir, vocab_path, rows,
                                                       args.batch_size, child_end))
        proc.start()
        child_end.close()
        deadline = time.monotonic() + args.timeout
        while not parent_end.poll(1.0) and proc.is_alive() and time.monotonic() < deadline:
            pass
        if parent_end.poll():
            results.append(parent_end.recv())
        elif proc.is_alive():
            proc.kill()
            results.append({"rows": rows, "seconds": None, "timed_out_after": args.timeout})
        else:
            raise RuntimeError(f"the child evaluating {rows:,} rows died (exit code "
                               f"{proc.exitcode}); its traceback is above")
        proc.join()
        print(f"  {rows:,} rows: {results[-1]}", flush=True)

    print("\n# evaluation cost against size (prectr_v1 on cached r, every metric)")
    print(machine_line())
    print(f"versions: tensorflow {tf.__version__}; package from "
          f"{os.path.dirname(prectr_tf.__file__)}; batch size {args.batch_size}; one run per N")
    print("\n| rows | seconds | µs per row | peak RSS MB |\n|---|---|---|---|")
    for r in results:
        if r.get("not_run"):
            print(f"| {r['rows']:,} | not run (a smaller size timed out) | | |")
        elif r["seconds"] is None:
            print(f"| {r['rows']:,} | > {r['timed_out_after']:.0f} (stopped) | | |")
        else:
            print(f"| {r['rows']:,} | {r['seconds']:.1f} | {1e6 * r['seconds'] / r['rows']:.1f} "
                  f"| {r['peak_rss_mb']:.0f} |")
    done = [r for r in results if r["seconds"] is not None]
    if len(done) >= 2:
        a, b = done[0], done[-1]
        print(f"\ntime ratio {b['rows']:,} / {a['rows']:,} rows: "
              f"{b['seconds'] / a['seconds']:.2f}× for {b['rows'] / a['rows']:.0f}× the rows")
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump({"argv": sys.argv, "package": os.path.dirname(prectr_tf.__file__),
                   "results": results}, fh, indent=2)


if __name__ == "__main__":
    main()
