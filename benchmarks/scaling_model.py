"""A scaling model for a platform-size log (issue 11, DESIGN §9): the Beam
build's shuffle volume and the embedding memory of the training job, from
per-record sizes measured here.

Measured on a simulated log (default 20,000 impressions, the default schema:
L_u = L_g = 20), with the Beam builder's own functions and the coder a
runner writes to its shuffle for each element (the declared type's coder
where the pipeline declares one, rows by user and by query and the join's
parts; `FastPrimitivesCoder` for the untyped rest):

* every keyed element that a `GroupByKey` / `CoGroupByKey` of
  `prectr_tf.data.beam_build` shuffles, in bytes per impression: the rows
  grouped by impression id (several input files only), by user and by query,
  the (row, timestamp) pairs grouped by file, the three parts the join
  brings together (user history, query context, rank), and the serialised
  `tf.Example`s grouped by shard (their size read from the built TFRecord
  files);
* the bytes of one embedding row (`embedding_dim` float32) and, with Adam's
  two slots, what it costs in training.

Then, for `--impressions` (default 10^9) and `--users` (default 10^8;
`--items`, `--categories` too), it prints each shuffle's volume and their
sum, and the embedding tables' memory: per worker under
MultiWorkerMirroredStrategy (every worker holds every table) and per server
when the tables are split evenly over `--parameter-servers` servers.

    python benchmarks/scaling_model.py
    python benchmarks/scaling_model.py --impressions 1e9 --users 1e8 --items 1e7
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse  # noqa: E402
import glob  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

import numpy as np  # noqa: E402

from _common import machine_line  # noqa: E402

GB = 1e9


def _mean_bytes(coder, elements):
    sizes = [len(coder.encode(e)) for e in elements]
    return float(np.mean(sizes)) if sizes else 0.0


def measure(impressions, seed):
    """Bytes per impression of each shuffled element, and the dataset facts."""
    import pandas as pd  # noqa: PLC0415
    from apache_beam.coders import coders, registry  # noqa: PLC0415

    from prectr_tf.data import beam_build  # noqa: PLC0415
    from prectr_tf.data.build import BuildConfig, build_dataset, eval_start_time  # noqa: PLC0415
    from prectr_tf.data.schema import DataSchema  # noqa: PLC0415
    from prectr_tf.data.simulator import SimulatorConfig, simulate  # noqa: PLC0415

    coder = coders.FastPrimitivesCoder()
    # The collections the pipeline declares a type for get that type's coder.
    row_coder = registry.get_coder(beam_build._ROW_TYPE)
    part_coder = registry.get_coder(beam_build._PART_TYPE)
    requests = impressions // 10
    sim = simulate(SimulatorConfig(num_requests=requests, num_users=max(1, requests // 5),
                                   seed=seed))
    schema = DataSchema()
    config = BuildConfig(eval_fraction=0.1)
    with tempfile.TemporaryDirectory(prefix="scaling-model-") as work:
        path = os.path.join(work, "log.parquet")
        sim.log.to_parquet(path)
        rows = list(beam_build._ValidateFile(schema, config.out_of_order).process((0, path)))
        rows = [r for r in rows if not isinstance(r, beam_build.beam.pvalue.TaggedOutput)]
        frame = pd.DataFrame([row for _, row in rows])
        # The one grouping and the join's inputs as the pipeline encodes them.
        grouped = {}
        for kv in rows:
            for key, value in beam_build._grouping_keys(kv):
                grouped.setdefault(key, []).append(value)
        start = eval_start_time(np.unique(frame["timestamp"].to_numpy(np.int64)),
                                config.eval_fraction)
        make_parts = beam_build._GroupParts(schema, config.history)
        parts = {}
        for group in grouped.items():
            for part in make_parts.process(group, start):
                if not isinstance(part, beam_build.beam.pvalue.TaggedOutput):
                    parts.setdefault(beam_build._unpack(part[1])[0], []).append(part)
        data_dir = os.path.join(work, "dataset")
        info = build_dataset(sim.log, data_dir, schema, config, progress=False)
        record_bytes = sum(os.path.getsize(f) for f in glob.glob(
            os.path.join(data_dir, "*.tfrecord"))) / sum(
            s["num_examples"] for s in info["splits"].values())
    sample = rows[:: max(1, len(rows) // 5000)]
    shuffles = {
        "group ids (several files only)": _mean_bytes(
            coder, [(row["impression_id"], kv) for kv in sample for row in [kv[1]]]),
        **{f"group: a row under its {kind}": _mean_bytes(
            row_coder, [key_value for kv in sample
                        for key_value in beam_build._grouping_keys(kv)
                        if key_value[0][0] == kind]) for kind in ("user", "query", "file")},
        **{f"join: {kind} part": _mean_bytes(
            part_coder, parts[kind][:: max(1, len(rows) // 5000)])
           for kind in ("user", "query", "rank")},
        "group shards (serialised tf.Example)": record_bytes + _mean_bytes(
            coder, [(("train", 0, 64), (i, b"")) for i in range(100)]),
    }
    return {"shuffle_bytes_per_impression": shuffles, "log_rows": len(frame),
            "users": int(sim.log["user_id"].nunique()),
            "queries": int(sim.log["query"].nunique())}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample-impressions", type=int, default=20_000)
    parser.add_argument("--impressions", type=float, default=1e9)
    parser.add_argument("--users", type=float, default=1e8)
    parser.add_argument("--items", type=float, default=1e7)
    parser.add_argument("--categories", type=float, default=1e4)
    parser.add_argument("--parameter-servers", nargs="+", type=int, default=[8, 32, 128])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import apache_beam  # noqa: PLC0415

    from prectr_tf.models.config import PRECTRConfig  # noqa: PLC0415

    print("# scaling model: Beam shuffle volume and embedding memory")
    print(machine_line())
    print(f"apache-beam {apache_beam.__version__}; measured on a simulated log of "
          f"{args.sample_impressions:,} impressions (seed {args.seed})")
    measured = measure(args.sample_impressions, args.seed)
    print(f"sample: {measured['log_rows']:,} valid rows, {measured['users']:,} users, "
          f"{measured['queries']:,} queries")
    n = args.impressions
    print(f"\n## Beam build of {n:.3g} impressions: bytes shuffled per GroupByKey")
    print(f"{'shuffle':<40} {'bytes/impression':>16} {'volume':>12}")
    total = 0.0
    for name, size in measured["shuffle_bytes_per_impression"].items():
        total += size
        print(f"{name:<40} {size:>16,.0f} {size * n / GB:>9,.0f} GB")
    print(f"{'total':<40} {total:>16,.0f} {total * n / GB:>9,.0f} GB")

    config = PRECTRConfig()
    d = config.embedding_dim
    row = 4 * d
    tables = {"user": args.users, "item": args.items, "category": args.categories,
              "query (hashed buckets)": float(config.query_id_buckets)}
    print(f"\n## Embedding tables (embedding_dim {d}: {row} bytes a row; Adam keeps 2 more "
          f"copies in training)")
    weights = 0.0
    for name, rows in tables.items():
        weights += rows * row
        print(f"{name:<24} {rows:>14,.0f} rows {rows * row / GB:>8.2f} GB weights "
              f"{3 * rows * row / GB:>8.2f} GB with Adam")
    print(f"{'all tables':<24} {'':>19} {weights / GB:>8.2f} GB weights "
          f"{3 * weights / GB:>8.2f} GB with Adam")
    print(f"\nMultiWorkerMirroredStrategy: every worker holds all of it: "
          f"{3 * weights / GB:.1f} GB per worker (plus the dense layers, < 0.01 GB)")
    for servers in args.parameter_servers:
        print(f"split evenly over {servers:>3} parameter servers: "
              f"{3 * weights / servers / GB:>6.2f} GB per server")
    return 0


if __name__ == "__main__":
    sys.exit(main())
