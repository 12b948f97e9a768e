"""The `prectr` command line.

    prectr demo                      simulate -> build -> statistics
    prectr simulate --out DIR        a simulated search log
    prectr build LOG... --out DIR    a log -> TFRecords + vocabularies
    prectr convert NAME --data-dir D --out LOG.parquet   public data -> a log
    prectr config                    print the default config (YAML)

A config file (`--config`, YAML or JSON) has the sections `schema`,
`simulator` and `build`; unknown keys are errors. Flags override it.
"""

import argparse
import dataclasses
import json
import os
import sys
import time

# TensorFlow's C++ start-up lines (no GPU here, CPU features) are noise on a
# command line; set TF_CPP_MIN_LOG_LEVEL yourself to see them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import yaml  # noqa: E402

from prectr_tf.config import ConfigError, config_to_dict, load_config  # noqa: E402
from prectr_tf.data.schema import DataSchema  # noqa: E402
from prectr_tf.data.simulator import SimulatorConfig  # noqa: E402

DEFAULT_DEMO_DIR = os.path.join("runs", "demo")


def _sections():
    from prectr_tf.data.build import BuildConfig  # noqa: PLC0415 (imports TensorFlow)
    return {"schema": DataSchema, "simulator": SimulatorConfig, "build": BuildConfig}


def _load(args):
    config = load_config(args.config, _sections())
    overrides = {name: getattr(args, name) for name in ("seed", "num_requests", "num_users")
                 if getattr(args, name, None) is not None}
    if overrides:
        config["simulator"] = dataclasses.replace(config["simulator"], **overrides)
    for name in ("out_of_order", "eval_fraction", "num_shards"):
        if getattr(args, name, None) is not None:
            config["build"] = dataclasses.replace(config["build"], **{name: getattr(args, name)})
    return config


def _schema_for_simulator(schema, simulator):
    """The simulator decides K and the item-feature width of its log; a schema
    section that sets them otherwise is a contradiction, not an override."""
    defaults = DataSchema()
    for name in ("num_relevance_levels", "num_item_features"):
        mine, theirs = getattr(schema, name), getattr(simulator, name)
        if mine != getattr(defaults, name) and mine != theirs:
            raise ConfigError(f"schema.{name} = {mine} contradicts simulator.{name} = {theirs}; "
                              "set it in the simulator section only")
    return dataclasses.replace(schema, num_relevance_levels=simulator.num_relevance_levels,
                               num_item_features=simulator.num_item_features)


def cmd_simulate(args):
    from prectr_tf.data.simulator import format_stats, simulate, simulation_stats
    config = _load(args)
    started = time.perf_counter()
    sim = simulate(config["simulator"])
    _prepare_out(args.out, args.overwrite)
    sim.write(args.out)
    print(format_stats(simulation_stats(sim)))
    print(f"\nwrote {args.out} in {time.perf_counter() - started:.1f}s")
    return sim


def cmd_build(args):
    from prectr_tf.data.build import build_dataset
    config = _load(args)
    description = build_dataset(args.logs, args.out, config["schema"], config["build"],
                                overwrite=args.overwrite, progress=not args.quiet)
    _print_build(description, args.out)
    return description


def cmd_convert(args):
    from prectr_tf.data.readers import read_dataset
    from prectr_tf.data.validation import to_log_frame
    config = _load(args)
    kwargs = {"split": args.split} if args.split else {}
    frame, report = read_dataset(args.name, args.data_dir, schema=config["schema"], **kwargs)
    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    to_log_frame(frame, config["schema"]).to_parquet(args.out, index=False)
    rejects = os.path.splitext(args.out)[0] + ".rejects.csv"
    report.write(rejects)
    print(f"wrote {len(frame):,} impressions to {args.out}; {report.summary()} "
          f"(details: {rejects})")


def cmd_demo(args):
    from prectr_tf.data.build import build_dataset
    from prectr_tf.data.simulator import format_stats, simulate, simulation_stats
    config = _load(args)
    started = time.perf_counter()
    _prepare_out(args.out, args.overwrite)
    print(f"[1/2] simulate: {config['simulator'].num_impressions:,} impressions "
          f"(seed {config['simulator'].seed})", flush=True)
    sim = simulate(config["simulator"])
    sim_dir = sim.write(os.path.join(args.out, "simulated"))
    print(format_stats(simulation_stats(sim)))
    print("\n[2/2] build: histories, cross-user contexts, TFRecords", flush=True)
    schema = _schema_for_simulator(config["schema"], config["simulator"])
    description = build_dataset(os.path.join(sim_dir, "log.parquet"),
                                os.path.join(args.out, "dataset"), schema, config["build"],
                                progress=not args.quiet)
    _print_build(description, os.path.join(args.out, "dataset"))
    with open(os.path.join(args.out, "config.yaml"), "w") as fh:
        yaml.safe_dump(config_to_dict(config), fh, sort_keys=False)
    print(f"\ndemo finished in {time.perf_counter() - started:.1f}s; outputs in {args.out}")


def cmd_config(args):
    config = load_config(None, _sections())
    yaml.safe_dump(config_to_dict(config), sys.stdout, sort_keys=False)


def _prepare_out(path, overwrite):
    if os.path.exists(path) and os.listdir(path) and not overwrite:
        raise FileExistsError(f"{path} exists and is not empty; pass --overwrite to replace it")
    if os.path.exists(path):
        import shutil  # noqa: PLC0415
        shutil.rmtree(path)


def _print_build(description, out):
    print(f"built {out}: {description['num_impressions']:,} impressions, "
          f"{description['num_rejected']:,} rejected")
    for reason, count in sorted(description["rejects_by_reason"].items()):
        print(f"  rejected {count:>8,}  {reason}")
    for split, info in description["splits"].items():
        print(f"  {split:<5} {info['num_examples']:>10,} examples  {len(info['files'])} shard(s)  "
              f"{info['num_clicks']:,} clicks  {info['num_relevance_labelled']:,} relevance-labelled")
    print("  vocabularies: " + ", ".join(f"{k} {v:,}" for k, v in description["vocab_sizes"].items()))
    print("  seconds: " + json.dumps(description["seconds"]))


def _parser():
    parser = argparse.ArgumentParser(
        prog="prectr", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name, func, help_text):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        p.add_argument("--config", help="YAML/JSON config with sections schema, simulator, build")
        return p

    def simulator_flags(p):
        p.add_argument("--seed", type=int, help="simulator seed (overrides the config)")
        p.add_argument("--num-requests", type=int, help="simulated requests (x page_size impressions)")
        p.add_argument("--num-users", type=int, help="simulated users")

    def build_flags(p):
        p.add_argument("--out-of-order", choices=["error", "reject", "sort"],
                       help="rows out of time order: stop, reject them, or sort the log")
        p.add_argument("--eval-fraction", type=float, help="share of the latest requests held out")
        p.add_argument("--num-shards", type=int, help="TFRecord files per split")
        p.add_argument("--quiet", action="store_true", help="no progress bars")

    p = add("demo", cmd_demo, "the main job end to end on the simulator: simulate -> build -> stats")
    p.add_argument("--out", default=DEFAULT_DEMO_DIR, help=f"output folder (default {DEFAULT_DEMO_DIR})")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    simulator_flags(p)
    build_flags(p)

    p = add("simulate", cmd_simulate, "write a simulated search log and print its statistics")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    simulator_flags(p)

    p = add("build", cmd_build, "impression log(s) -> sharded TFRecords, vocabularies, rejects")
    p.add_argument("logs", nargs="+", help="log files (.parquet, .csv, .csv.gz)")
    p.add_argument("--out", required=True, help="dataset folder to create")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    build_flags(p)

    p = add("convert", cmd_convert, "read a public dataset into an impression log (parquet)")
    p.add_argument("name", help="homedepot, trec_session, jdsearch, esci or kuaisar")
    p.add_argument("--data-dir", required=True, help="the dataset's folder")
    p.add_argument("--out", required=True, help="log file to write (.parquet)")
    p.add_argument("--split", help="split, for datasets that have them (e.g. trec_session)")

    add("config", cmd_config, "print the default config as YAML")
    return parser


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        args.func(args)
    except (ConfigError, FileExistsError, FileNotFoundError, ValueError) as err:
        print(f"prectr {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
