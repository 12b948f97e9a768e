"""Coarse-ranking serving: latency and quality of the exports (issue 8, DESIGN §6).

1. Simulate the default simulator at `--requests` (default 3,000: 30,000
   impressions; users = requests / 5), build it (eval fraction 0.2).
2. Stage 0 (SFT to convergence) and `train_staged` per model: `prectr_v1`
   (joint encoder, frozen) and `prectr_v2` with the **split encoder**, the
   arrangement that serves, at each `--split-layers` depth (default 2 and 1
   of 3: one or two joint layers on top; one joint layer lets the export
   cache the top layer's title keys and values). The stage-0 students' own
   relevance head on the full candidate space says how well each
   arrangement learns relevance.
3. Export `v2/split<s> split` for each depth, `v2/split<s> exact` for the
   first, and `v1 exact`: seconds and SavedModel size.
4. Quality through each export: the eval requests' full candidate space sent
   as ranking requests (user, query, history as logged; every candidate with
   its title), scored by the loaded export: full-space AUC and NDCG@10
   (`full_space_metrics`; the query context is the export's, as of now).
5. Latency, each export in a **fresh process** with 2 intra-op and 2 inter-op
   threads: for each N in `--sizes`, `--warmup` untimed calls, then
   `--repeats` timed calls of one request of N known candidates: p50, p99,
   mean (ms, wall time of the signature call including the copy out).
6. Export seconds and size of the split export for item feeds of 5,000 (the
   simulator's catalogue) and 50,000 items (its titles repeated under new ids).

Prints machine, versions, load averages and the tables; JSON to `--out`.

    python benchmarks/serving_latency.py             # ~20 min on 2 cores, unloaded
    python benchmarks/serving_latency.py --quick     # smoke run, ~3 min
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402



def _size_mb(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path)
               for f in files) / 2**20


def measure(path, sizes, warmup, repeats):
    """Latency of one export, in this (fresh) process: {N: [seconds]}."""
    import tensorflow as tf  # noqa: PLC0415

    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(2)
    import tensorflow_text  # noqa: F401, PLC0415

    from prectr_tf.serving.client import (RankingRequest, export_info, request_arrays,
                                          schema_of_export)
    from prectr_tf.serving.tables import item_catalogue

    info = export_info(path)
    schema = schema_of_export(path)
    items = list(item_catalogue(info["dataset"]).item_id)
    rank = tf.saved_model.load(path).signatures["rank"]
    out = {}
    for n in sizes:
        candidates = [items[i % len(items)] for i in range(n)]
        arrays = request_arrays([RankingRequest("latency-user", "cordless drill", candidates)],
                                schema)
        request = {k: tf.constant(v) for k, v in arrays.items()}
        for _ in range(warmup):
            rank(**request)["score"].numpy()
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            rank(**request)["score"].numpy()
            times.append(time.perf_counter() - started)
        out[n] = times
    return out


def _requests_of_space(space, schema):
    """The full candidate space as `rank` inputs, one request per eval request."""
    features, table = space.features, space.table
    ids = table["request_id"].to_numpy()
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    counts = np.diff(np.r_[starts, len(ids)])
    width = int(counts.max())
    cols = np.arange(width)
    rows = starts[:, None] + np.minimum(cols[None, :], counts[:, None] - 1)
    out = {name: features[name][starts] for name, _, _ in schema.request_features()}
    for name, _, _ in schema.candidate_features():
        out[name] = features[name][rows]
    out["num_candidates"] = counts.astype(np.int64)
    return out, rows, cols[None, :] < counts[:, None]


def score_space(path, space, schema, batch=16):
    import tensorflow as tf  # noqa: PLC0415

    rank = tf.saved_model.load(path).signatures["rank"]
    inputs, rows, valid = _requests_of_space(space, schema)
    scores = np.zeros(len(space), np.float64)
    for start in range(0, len(inputs["num_candidates"]), batch):
        part = {k: tf.constant(v[start:start + batch]) for k, v in inputs.items()}
        got = rank(**part)["score"].numpy()
        keep = valid[start:start + batch]
        scores[rows[start:start + batch][keep]] = got[keep]
    return scores


def run(args):
    import keras  # noqa: PLC0415
    import pandas as pd  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    from prectr_tf.data.simulator import SimulatorConfig
    from _common import simulated_dataset
    from prectr_tf.evaluation.full_space import full_space_examples
    from prectr_tf.evaluation.relevance import student_diagnostics
    from prectr_tf.evaluation.soft_metrics import full_space_metrics
    from prectr_tf.models.config import EncoderConfig, preset
    from prectr_tf.models.training import TrainConfig, pretrain_encoder, train_staged
    from prectr_tf.serving import export_model

    work = args.work_dir or tempfile.mkdtemp(prefix="serving-latency-")
    sim_config = (SimulatorConfig(num_users=100, num_requests=500, num_items=400,
                                  num_queries=40, num_candidates=30, seed=args.seed)
                  if args.quick else
                  SimulatorConfig(num_users=args.requests // 5, num_requests=args.requests,
                                  seed=args.seed))
    sim, schema, data_dir = simulated_dataset(sim_config, work)
    train = (TrainConfig(batch_size=128, encoder_sft_epochs=2, encoder_min_steps_per_epoch=5,
                         joint_epochs=1, steps_per_epoch=10, wordpiece_vocabulary_size=400,
                         seed=args.seed)
             if args.quick else TrainConfig(seed=args.seed))
    configs = {f"prectr_v2/split{s}": preset("prectr_v2",
                                             encoder=EncoderConfig(num_split_layers=s))
               for s in args.split_layers}
    configs["prectr_v1"] = preset("prectr_v1")
    first = f"prectr_v2/split{args.split_layers[0]}"
    exports = [(first, "exact")] + [(name, "split") for name in configs if name != "prectr_v1"]
    exports.append(("prectr_v1", "exact"))
    space = full_space_examples(sim, data_dir, "eval")
    results = {"exports": {}, "feeds": {}, "students": {}}
    models = {}
    for name, config in configs.items():
        started = time.perf_counter()
        folder = os.path.join(work, name.replace("/", "_"))
        student = pretrain_encoder(data_dir, config, train, folder, verbose=0)
        diagnostics = student_diagnostics(student, space)
        results["students"][name] = diagnostics
        models[name], _ = train_staged(data_dir, config, train, folder, student_dir=student,
                                       verbose=0)
        print(f"  trained {name} in {time.perf_counter() - started:.0f}s; stage-0 student on "
              f"the full space: accuracy {diagnostics['relevance_accuracy']:.3f}, NDCG@10 by "
              f"E[level] {diagnostics['ndcg_at_10_expected_level']:.3f} (best epoch "
              f"{diagnostics['best_epoch'] + 1} of {diagnostics['epochs_run']})", flush=True)
    for name, mode in exports:
        started = time.perf_counter()
        path = export_model(models[name],
                            os.path.join(work, "exports", f"{name.replace('/', '_')}_{mode}"),
                            data_dir, mode=mode)
        seconds = time.perf_counter() - started
        scores = score_space(path, space, schema)
        metrics = full_space_metrics(space.table, scores)
        key = f"{name} {mode}"
        results["exports"][key] = {"path": path, "export_seconds": seconds,
                                   "size_mb": _size_mb(path),
                                   "full_space_auc": metrics["auc"],
                                   "full_space_ndcg_at_10": metrics["ndcg_at_10"]}
        print(f"  exported {key} in {seconds:.1f}s ({_size_mb(path):.1f} MB): full-space AUC "
              f"{metrics['auc']:.4f}, NDCG@10 {metrics['ndcg_at_10']:.4f}", flush=True)
    for key, entry in results["exports"].items():
        done = subprocess.run(
            [sys.executable, __file__, "--measure", entry["path"], "--sizes",
             *map(str, args.sizes), "--warmup", str(args.warmup), "--repeats",
             str(args.repeats)], capture_output=True, text=True, check=True)
        times = json.loads(done.stdout.strip().splitlines()[-1])
        entry["latency_ms"] = {n: {"p50": 1e3 * float(np.percentile(t, 50)),
                                   "p99": 1e3 * float(np.percentile(t, 99)),
                                   "mean": 1e3 * float(np.mean(t))} for n, t in times.items()}
    items = sim.items
    for size in ((400, 4000) if args.quick else (5_000, 50_000)):
        copies = -(-size // len(items))
        feed = pd.concat([items.assign(item_id=items["item_id"].astype(str) + f"~{c}")
                          for c in range(copies)], ignore_index=True).iloc[:size]
        started = time.perf_counter()
        path = export_model(models[first], os.path.join(work, "feeds", str(size)),
                            data_dir, mode="split", items=feed)
        results["feeds"][size] = {"export_seconds": time.perf_counter() - started,
                                  "size_mb": _size_mb(path)}
        print(f"  split export with {size:,} items: "
              f"{results['feeds'][size]['export_seconds']:.1f}s, "
              f"{results['feeds'][size]['size_mb']:.1f} MB", flush=True)
    results["meta"] = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                                  f"{platform.platform()}, Python {platform.python_version()}",
                       "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
                       "simulator": {"num_requests": sim_config.num_requests,
                                     "num_items": sim_config.num_items},
                       "sizes": args.sizes, "warmup": args.warmup, "repeats": args.repeats,
                       "load_average_end": list(os.getloadavg())}
    return results


def report(results):
    meta = results["meta"]
    lines = ["# serving latency (one request of N candidates, 2 intra-op + 2 inter-op threads)",
             f"machine: {meta['machine']}",
             f"versions: tensorflow {meta['versions']['tensorflow']}, keras "
             f"{meta['versions']['keras']}",
             f"{meta['warmup']} warm-up + {meta['repeats']} timed calls per N; load average at "
             f"the end {', '.join(f'{x:.2f}' for x in meta['load_average_end'])}", "",
             "| export | N | p50 ms | p99 ms | mean ms |", "|---|---|---|---|---|"]
    for key, entry in results["exports"].items():
        for n, t in entry["latency_ms"].items():
            lines.append(f"| {key} | {int(n):,} | {t['p50']:.1f} | {t['p99']:.1f} | "
                         f"{t['mean']:.1f} |")
    lines += ["", "| export | full-space AUC | full-space NDCG@10 | export s | size MB |",
              "|---|---|---|---|---|"]
    for key, e in results["exports"].items():
        lines.append(f"| {key} | {e['full_space_auc']:.4f} | {e['full_space_ndcg_at_10']:.4f} "
                     f"| {e['export_seconds']:.1f} | {e['size_mb']:.1f} |")
    lines += ["", "| split export, item feed | export s | size MB |", "|---|---|---|"]
    for size, e in results["feeds"].items():
        lines.append(f"| {int(size):,} items | {e['export_seconds']:.1f} | {e['size_mb']:.1f} |")
    lines += ["", "| stage-0 student | full-space accuracy | level-0 recall | NDCG@10 by "
              "E[level] | best epoch / run |", "|---|---|---|---|---|"]
    for name, d in results.get("students", {}).items():
        lines.append(f"| {name} | {d['relevance_accuracy']:.3f} | {d['level0_recall']:.3f} | "
                     f"{d['ndcg_at_10_expected_level']:.3f} | {d['best_epoch'] + 1} / "
                     f"{d['epochs_run']} |")
    exports = results["exports"]
    v1 = exports.get("prectr_v1 exact")
    for key, entry in exports.items():
        if v1 is None or not key.endswith(" split"):
            continue
        for n, t in entry["latency_ms"].items():
            ratio = t["p50"] / v1["latency_ms"][n]["p50"]
            lines.append(f"N = {int(n):,}: {key} / v1 p50 = {ratio:.2f}x")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--split-layers", type=int, nargs="+", default=[2, 1],
                        help="num_split_layers of each split V2 trained (of 3 layers)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000, 5000])
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="tiny simulator, short training")
    parser.add_argument("--work-dir", help="keep the dataset, models and exports here")
    parser.add_argument("--out", default=os.path.join("runs", "serving_latency.json"))
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # child: time one export
    args = parser.parse_args(argv)
    if args.measure:
        times = measure(args.measure, args.sizes, args.warmup, args.repeats)
        print(json.dumps({str(n): t for n, t in times.items()}))
        return 0
    if args.quick:
        args.sizes, args.warmup, args.repeats = [10, 100], 1, 3
    results = run(args)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(results, fh, indent=1)
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
