"""The `prectr` command line.

    prectr demo                      simulate -> build -> train -> evaluate -> compare
    prectr simulate --out DIR        a simulated search log
    prectr build LOG... --out DIR    a log -> TFRecords + vocabularies
    prectr convert NAME --data-dir D --out LOG.parquet   public data -> a log
    prectr distill --data DIR --simulated SIM --out DIR  the distilled relevance encoder
    prectr train --data DIR --preset prectr_v2 --out DIR  staged training
    prectr evaluate --model M.keras --data DIR   metrics as JSON
    prectr config                    print the default config (YAML)

A config file (`--config`, YAML or JSON) has the sections `schema`,
`simulator`, `build`, `model` (fields over the chosen preset), `train`,
`distill` (the student) and `judge` (the simulated teacher); unknown keys are
errors. Flags override it.
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

from prectr_tf.config import ConfigError, config_to_dict, load_config, load_mapping  # noqa: E402
from prectr_tf.data.schema import EVENT_FIELDS, STRING, DataSchema  # noqa: E402
from prectr_tf.data.simulator import SimulatorConfig  # noqa: E402
from prectr_tf.engines import BEAM_RUNNERS, STRATEGIES  # noqa: E402

DEFAULT_DEMO_DIR = os.path.join("runs", "demo")
DEMO_CONFIG = os.path.join(os.path.dirname(__file__), "configs", "demo.yaml")
DEMO_PRESETS = ("dnn", "prectr_v1", "prectr_v2")


def _sections():
    # Imported here: they pull in TensorFlow, which `--help` should not wait for.
    from prectr_tf.data.build import BuildConfig  # noqa: PLC0415
    from prectr_tf.distill import SimulatedJudge, StudentConfig  # noqa: PLC0415
    from prectr_tf.models.config import PRECTRConfig  # noqa: PLC0415
    from prectr_tf.models.training import TrainConfig  # noqa: PLC0415
    return {"schema": DataSchema, "simulator": SimulatorConfig, "build": BuildConfig,
            "model": PRECTRConfig, "train": TrainConfig, "distill": StudentConfig,
            "judge": SimulatedJudge}


def _model_config(args, config, name):
    """The preset `name` with the fields the config's `model` section sets."""
    from prectr_tf.models.config import preset  # noqa: PLC0415
    raw = load_mapping(args.config).get("model") or {} if args.config else {}
    return preset(name, **{key: getattr(config["model"], key) for key in raw})


def _load(args):
    config = load_config(args.config, _sections())
    train = {name: getattr(args, name) for name in ("batch_size", "steps_per_epoch",
                                                    "encoder_init", "distilled_encoder")
             if getattr(args, name, None) is not None}
    if getattr(args, "epochs", None) is not None:
        train["joint_epochs"] = args.epochs
    if train:
        config["train"] = dataclasses.replace(config["train"], **train)
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
    schema, negatives = config["schema"], None
    if args.candidates or args.items or args.teacher_logits:
        if args.runner:
            raise ConfigError("--candidates (unexposed negatives) is built without --runner: "
                              "it needs every request's whole candidate set in one place")
        schema, negatives = dataclasses.replace(schema, unexposed_negatives=True), \
            _unexposed_negatives(args, config)
    if args.runner:
        try:
            from prectr_tf.data.beam_build import build_dataset_beam  # noqa: PLC0415
        except ImportError as err:
            raise ConfigError(f"--runner needs Apache Beam ({err}): pip install "
                              "'prectr-tf[beam]'") from err
        description = build_dataset_beam(args.logs, args.out, schema, config["build"],
                                         overwrite=args.overwrite, runner=args.runner,
                                         num_workers=args.num_workers,
                                         pipeline_args=args.beam_option)
        _print_build(description, args.out)
        return description
    description = build_dataset(args.logs, args.out, schema, config["build"],
                                overwrite=args.overwrite, progress=not args.quiet,
                                negatives=negatives)
    _print_build(description, args.out)
    return description


def _unexposed_negatives(args, config):
    """`build_dataset`'s `negatives` from --candidates, --items and the
    teacher: --teacher-logits, else the simulated judge (candidates with the
    simulator's true `relevance`)."""
    import pandas as pd  # noqa: PLC0415

    from prectr_tf.data.unexposed import attach_unexposed_negatives  # noqa: PLC0415
    from prectr_tf.distill import judge_pairs, read_teacher_logits, teacher_pairs  # noqa: PLC0415
    if not (args.candidates and args.items):
        raise ConfigError("unexposed negatives need both --candidates and --items")
    candidates, items = (pd.read_parquet(path) for path in (args.candidates, args.items))
    if args.teacher_logits:
        teacher = read_teacher_logits(args.teacher_logits,
                                      num_levels=config["schema"].num_relevance_levels)
    else:
        if "relevance" not in candidates:
            raise ConfigError(f"{args.candidates} has no true `relevance` for the simulated "
                              "judge: pass --teacher-logits")

        def teacher_for(log):
            return judge_pairs(teacher_pairs(log, candidates, items), config["judge"])

    def negatives(log):
        return attach_unexposed_negatives(
            log, candidates, items, teacher if args.teacher_logits else teacher_for(log))
    return negatives


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


def cmd_train(args):
    from prectr_tf.models.distribute import (is_chief, make_strategy,  # noqa: PLC0415
                                             task_from_tf_config)
    from prectr_tf.models.training import evaluate, train_staged  # noqa: PLC0415
    config = _load(args)
    model_config = _model_config(args, config, args.preset)
    if args.strategy == "parameter_server":
        import keras  # noqa: PLC0415

        from prectr_tf.models import parameter_server as ps  # noqa: PLC0415
        if task_from_tf_config()[0] in ("worker", "ps"):
            ps.run_server()  # until the cluster is torn down
            return
        ps.train_parameter_server(args.data, model_config, config["train"], args.out,
                                  make_strategy(args.strategy), verbose=0 if args.quiet else 1)
        # Evaluated here, on the coordinator, from the saved model.
        model = keras.models.load_model(os.path.join(args.out, "model.keras"))
    else:
        strategy = (make_strategy(args.strategy, logical_cpus=args.logical_cpus)
                    if args.strategy != "default" else None)
        model, _ = train_staged(args.data, model_config, config["train"], args.out,
                                verbose=0 if args.quiet else 1, strategy=strategy)
    # Every worker evaluates (the metrics gather all rows); the chief writes.
    results = evaluate(model, args.data, args.split)
    if is_chief():
        with open(os.path.join(args.out, "metrics.json"), "w") as fh:
            json.dump(results, fh, indent=2)
        print(json.dumps(results, indent=2))


def cmd_evaluate(args):
    import keras  # noqa: PLC0415

    import prectr_tf.models.prectr_model  # noqa: F401, PLC0415 (registers the classes)
    from prectr_tf.models.training import evaluate  # noqa: PLC0415
    if not os.path.exists(args.model):
        raise FileNotFoundError(f"{args.model}: no such model file")
    print(json.dumps(evaluate(keras.models.load_model(args.model), args.data, args.split),
                     indent=2))


def cmd_export(args):
    import keras  # noqa: PLC0415

    import prectr_tf.models.prectr_model  # noqa: F401, PLC0415 (registers the classes)
    from prectr_tf.serving import export_info, export_model  # noqa: PLC0415
    if not os.path.exists(args.model):
        raise FileNotFoundError(f"{args.model}: no such model file")
    path = export_model(keras.models.load_model(args.model), args.base, args.data,
                        mode=args.mode, version=args.version,
                        max_candidates=args.max_candidates)
    info = export_info(path)
    print(f"exported {path} ({info['mode']} mode): {info['num_items']:,} items, "
          f"{info['num_context_queries']:,} query contexts, up to {info['max_candidates']:,} "
          f"candidates per request, {info['warmup_requests']} warm-up requests")
    print(f"  serve it: tensorflow_model_server --rest_api_port=8501 "
          f"--model_name={os.path.basename(os.path.abspath(args.base))} "
          f"--model_base_path={os.path.abspath(args.base)}")


def cmd_rank(args):
    from prectr_tf.serving.local import format_top, rank_requests, read_requests  # noqa: PLC0415
    requests = read_requests(args.request)
    for request, result in zip(requests, rank_requests(args.export, requests)):
        print(format_top(request, result, args.top))


def _distill_pairs_and_teacher(args, config, data_dir, sim=None):
    """What `prectr distill` distils on: the pairs, and the teacher's logits."""
    from prectr_tf.data.pipeline import read_split_columns  # noqa: PLC0415
    from prectr_tf.distill import judge_pairs, read_teacher_logits  # noqa: PLC0415
    from prectr_tf.distill import simulation_pairs, teacher_pairs  # noqa: PLC0415
    import pandas as pd  # noqa: PLC0415

    if sim is None and getattr(args, "simulated", None):
        from prectr_tf.data.simulator import read_simulated_log  # noqa: PLC0415
        sim = read_simulated_log(args.simulated)
    if sim is not None:
        pairs = simulation_pairs(sim, data_dir)
    else:
        columns = read_split_columns(data_dir, "train",
                                     ("request_id", "query", "item_title", "relevance"))
        relevance = pd.Series(columns["relevance"], dtype="Int64")
        pairs = teacher_pairs(pd.DataFrame({
            "request_id": columns["request_id"], "query": columns["query"],
            "item_title": columns["item_title"], "relevance": relevance.mask(relevance < 0)}))
    if getattr(args, "teacher_logits", None):
        teacher = read_teacher_logits(args.teacher_logits,
                                      num_levels=config["schema"].num_relevance_levels)
        return pairs, teacher, f"file {args.teacher_logits}"
    if sim is None:
        raise ValueError("give a teacher: --teacher-logits FILE, or --simulated SIM_DIR for "
                         "the simulated judge")
    return pairs, judge_pairs(pairs, config["judge"]), "simulated judge"


def distill(args, config, data_dir, out, sim=None, verbose=1):
    """Pairs → teacher → the distilled student in `out`; returns its meta."""
    from prectr_tf.distill import distill_encoder  # noqa: PLC0415
    from prectr_tf.models.training import wordpiece_vocabulary  # noqa: PLC0415

    pairs, teacher, name = _distill_pairs_and_teacher(args, config, data_dir, sim)
    encoder = _model_config(args, config, "prectr_v2").encoder
    vocabulary = wordpiece_vocabulary(data_dir, out, config["train"].wordpiece_vocabulary_size)
    counts = pairs["source"].value_counts()
    print(f"  teacher: {name}; pairs: " + ", ".join(
        f"{counts.get(s, 0):,} {s}" for s in ("labelled", "unlabelled", "unshown")), flush=True)
    _, meta = distill_encoder(pairs, teacher, vocabulary, encoder,
                              config["schema"].num_relevance_levels, out, config["distill"],
                              teacher_name=name, verbose=verbose)
    params = meta["num_parameters"]
    print(f"  student: {params['encoder']:,} encoder + {params['head']:,} head parameters; "
          f"best epoch {meta['best_epoch'] + 1} of {len(meta['history'].get('loss', []))}, "
          f"validation loss {meta['best_val_loss']:.4f} (held-out queries)", flush=True)
    return meta


def cmd_distill(args):
    config = _load(args)
    data_dir = args.data
    from prectr_tf.data.pipeline import dataset_schema  # noqa: PLC0415
    config["schema"] = dataset_schema(data_dir)
    if os.path.exists(os.path.join(args.out, "student.weights.h5")) and not args.overwrite:
        print(f"{args.out} already holds a finished student (pass --overwrite to redo it)")
        return
    if args.overwrite:
        _prepare_out(args.out, True)
    distill(args, config, data_dir, args.out, verbose=0 if args.quiet else 1)
    print(f"wrote {args.out}; train on it with `prectr train --encoder-init distilled "
          f"--distilled-encoder {args.out}`")


def cmd_demo(args):
    from prectr_tf.data.build import build_dataset
    from prectr_tf.data.simulator import format_stats, simulate, simulation_stats
    from prectr_tf.models.training import evaluate, train_staged
    args.config = args.config or DEMO_CONFIG
    config = _load(args)
    started = time.perf_counter()
    _prepare_out(args.out, args.overwrite)
    print(f"[1/6] simulate: {config['simulator'].num_impressions:,} impressions "
          f"(seed {config['simulator'].seed})", flush=True)
    sim = simulate(config["simulator"])
    sim_dir = sim.write(os.path.join(args.out, "simulated"))
    print(format_stats(simulation_stats(sim)))
    print("\n[2/6] build: histories, cross-user contexts, TFRecords", flush=True)
    schema = _schema_for_simulator(config["schema"], config["simulator"])
    config["schema"] = schema
    data_dir = os.path.join(args.out, "dataset")
    description = build_dataset(os.path.join(sim_dir, "log.parquet"), data_dir, schema,
                                config["build"], progress=not args.quiet)
    _print_build(description, data_dir)
    with open(os.path.join(args.out, "config.yaml"), "w") as fh:
        yaml.safe_dump(config_to_dict(config), fh, sort_keys=False)
    if args.skip_training:
        print(f"\ndemo finished in {time.perf_counter() - started:.1f}s; outputs in {args.out}")
        return
    verbose = 0 if args.quiet else 2
    models_dir = os.path.join(args.out, "models")
    student_dir = os.path.join(models_dir, "distilled")
    print("\n[3/6] distil the relevance encoder: the SIMULATED LLM judge (true level + the "
          "confusion a real MiniLM teacher has on Home Depot) labels the training requests' "
          "candidate sets, shown or not", flush=True)
    distill(args, config, data_dir, student_dir, sim=sim, verbose=verbose)
    space = _print_student_full_space(sim, data_dir, student_dir)
    train_config = dataclasses.replace(config["train"], encoder_init="distilled",
                                       distilled_encoder=student_dir)
    print("\n[4/6] train dnn, PRECTR v1 (distilled encoder frozen: trains on cached r) and "
          "PRECTR-V2 (distilled encoder fine-tuned)", flush=True)
    results, trained = {}, {}
    from prectr_tf.evaluation.full_space import evaluate_full_space  # noqa: PLC0415
    for name in DEMO_PRESETS:
        print(f"  {name}", flush=True)
        model, _ = train_staged(data_dir, _model_config(args, config, name), train_config,
                                os.path.join(models_dir, name), verbose=verbose)
        trained[name] = model
        results[name] = evaluate(model, data_dir, "eval")
        full = evaluate_full_space(model, sim, data_dir, space=space)
        results[name].update({f"full_space/{k}": v for k, v in full.items()})
    print("\n[5/6] evaluate on the eval split (the latest requests) and on its full candidate "
          "space (every candidate, shown or not; true click probabilities)")
    print(format_comparison(results))
    with open(os.path.join(args.out, "comparison.json"), "w") as fh:
        json.dump(results, fh, indent=2)
    print("\n[6/6] export PRECTR-V2 for TF Serving, then rank one eval request in a fresh "
          "process from the export alone", flush=True)
    _demo_serving(trained["prectr_v2"], data_dir, space, args.out)
    print(f"\ndemo finished in {time.perf_counter() - started:.1f}s; outputs in {args.out}")


def _demo_serving(model, data_dir, space, out):
    """Export `model`, write one eval request (a returning user's, every
    candidate of its full candidate space) and rank it with `prectr rank` in a
    fresh process."""
    import subprocess  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415

    from prectr_tf.serving import export_model  # noqa: PLC0415
    path = export_model(model, os.path.join(out, "exports", model.config.name), data_dir)
    print(f"  exported {path}")
    table, features = space.table, space.features
    returning = table["user_event_count"].to_numpy() > 0
    rows = np.flatnonzero(table["request_id"].to_numpy()
                          == table["request_id"].to_numpy()[np.argmax(returning)])
    first = rows[0]

    def text(v):
        return v.decode("utf-8") if isinstance(v, bytes) else str(v)

    def event(j):
        values = {f: features[f"user_history_{f.name}"][first][j] for f in EVENT_FIELDS}
        return {f.name: text(v) if f.dtype == STRING else int(v) for f, v in values.items()}

    history = [event(j) for j in range(int(features["user_history_length"][first]))]
    request = {"user_id": text(features["user_id"][first]),
               "query": text(features["query"][first]),
               "candidates": [text(v) for v in features["item_id"][rows]],
               "titles": [text(v) for v in features["item_title"][rows]],
               "history": history,
               "user_event_count": int(features["user_event_count"][first])}
    request_path = os.path.join(out, "request.json")
    with open(request_path, "w", encoding="utf-8") as fh:
        json.dump(request, fh, indent=1)
    done = subprocess.run([sys.executable, "-m", "prectr_tf.cli", "rank", "--export", path,
                           "--request", request_path, "--top", "10"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ranking with the export failed:\n{done.stderr[-2000:]}")
    print(done.stdout.rstrip())


def _print_student_full_space(sim, data_dir, student_dir):
    """The distilled student's relevance head on the eval requests' full
    candidate space; returns the space for reuse."""
    from prectr_tf.evaluation.full_space import full_space_examples  # noqa: PLC0415
    from prectr_tf.evaluation.relevance import student_diagnostics  # noqa: PLC0415

    space = full_space_examples(sim, data_dir)
    d = student_diagnostics(student_dir, space)
    print(f"  on the eval requests' {len(space):,} candidates: accuracy "
          f"{d['relevance_accuracy']:.3f} (majority level {d['majority_accuracy']:.3f}), "
          f"level-0 recall {d['level0_recall']:.3f}, NDCG@10 by expected level "
          f"{d['ndcg_at_10_expected_level']:.3f}", flush=True)
    return space


COMPARISON_COLUMNS = ("auc", "gauc_user", "ndcg_at_10", "gauc_user/cold", "relevance_accuracy",
                      "log_loss", "full_space/auc", "full_space/ndcg_at_10")


def format_comparison(results):
    """A text table: one row per model, the headline metrics as columns."""
    names = [c.replace("full_space/", "full ") for c in COMPARISON_COLUMNS]
    width = max(map(len, names)) + 2
    header = f"{'model':<12}" + "".join(f"{c:>{width}}" for c in names)
    lines = [header, "-" * len(header)]
    for name, metrics in results.items():
        cells = "".join(f"{metrics[c]:>{width}.4f}" if c in metrics else f"{'-':>{width}}"
                        for c in COMPARISON_COLUMNS)
        lines.append(f"{name:<12}{cells}")
    return "\n".join(lines)


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
    runner = f" with Beam's {description['runner']}" if description.get("runner") else ""
    print(f"built {out}{runner}: {description['num_impressions']:,} impressions, "
          f"{description['num_rejected']:,} rejected")
    for reason, count in sorted(description["rejects_by_reason"].items()):
        print(f"  rejected {count:>8,}  {reason}")
    for split, info in description["splits"].items():
        print(f"  {split:<5} {info['num_examples']:>10,} examples  {len(info['files'])} shard(s)  "
              f"{info['num_clicks']:,} clicks  {info['num_relevance_labelled']:,} relevance-labelled")
    print("  vocabularies: " + ", ".join(f"{k} {v:,}" for k, v in description["vocab_sizes"].items()))
    if description.get("unexposed_negatives"):
        stats = description["unexposed_negatives"]
        print(f"  unexposed negatives: {stats['rows_with_negative']:,} rows, "
              f"{stats['rows_with_teacher_level']:,} with a teacher level "
              f"{stats['teacher_level_counts']}")
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

    def train_flags(p):
        p.add_argument("--batch-size", type=int, help="examples per training step")
        p.add_argument("--encoder-init", choices=["sft", "distilled"],
                       help="stage 0: SFT on the labelled pairs, or a distilled student")
        p.add_argument("--distilled-encoder", help="student folder from `prectr distill`")
        p.add_argument("--epochs", type=int, help="joint-stage epochs")
        p.add_argument("--steps-per-epoch", type=int, help="cap on steps per epoch")

    p = add("demo", cmd_demo, "the main job end to end on the simulator: simulate -> build -> "
            "distil the encoder from the simulated judge -> train dnn, PRECTR v1 and V2 -> "
            "evaluate (logged and full candidate space) -> comparison table")
    p.add_argument("--out", default=DEFAULT_DEMO_DIR, help=f"output folder (default {DEFAULT_DEMO_DIR})")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    p.add_argument("--skip-training", action="store_true", help="stop after the build")
    simulator_flags(p)
    build_flags(p)
    train_flags(p)

    p = add("simulate", cmd_simulate, "write a simulated search log and print its statistics")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    simulator_flags(p)

    p = add("build", cmd_build, "impression log(s) -> sharded TFRecords, vocabularies, rejects")
    p.add_argument("logs", nargs="+", help="log files (.parquet, .csv, .csv.gz)")
    p.add_argument("--out", required=True, help="dataset folder to create")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--candidates", help="the logged candidate sets (.parquet: request_id, "
                   "item_id, shown; a simulated log's candidates.parquet): give each clicked "
                   "impression an unshown candidate of its request, for debias: unexposed")
    p.add_argument("--items", help="with --candidates: the catalogue (.parquet: item_id, "
                   "item_title, item_category[, item_features])")
    p.add_argument("--teacher-logits", help="with --candidates: the teacher that labels the "
                   "negatives (default: the simulated judge of the config's judge section)")
    p.add_argument("--runner", choices=BEAM_RUNNERS,
                   help="build with an Apache Beam pipeline on this runner (needs the `beam` "
                   "extra); the same files as without it. DirectRunner runs --num-workers "
                   "local processes")
    p.add_argument("--num-workers", type=int, help="DirectRunner processes (default: one per "
                   "core; 1 runs in-process)")
    p.add_argument("--beam-option", action="append", default=[], metavar="--NAME=VALUE",
                   help="a Beam pipeline option passed through, e.g. "
                   "--beam-option=--flink_master=localhost:8081 (repeatable)")
    build_flags(p)

    p = add("convert", cmd_convert, "read a public dataset into an impression log (parquet)")
    p.add_argument("name", help="homedepot, trec_session, jdsearch, esci or kuaisar")
    p.add_argument("--data-dir", required=True, help="the dataset's folder")
    p.add_argument("--out", required=True, help="log file to write (.parquet)")
    p.add_argument("--split", help="split, for datasets that have them (e.g. trec_session)")

    p = add("distill", cmd_distill, "distil the relevance encoder from a teacher (a "
            "teacher-logits file, or the simulated judge) over the training pairs and, on the "
            "simulator, the unshown candidates; resumable")
    p.add_argument("--data", required=True, help="dataset folder from `prectr build`")
    p.add_argument("--out", required=True, help="student folder (a killed run resumes here)")
    p.add_argument("--simulated", help="the simulated log folder the dataset was built from "
                   "(written with simulator.write_candidates: true): adds its unshown "
                   "candidates and enables the simulated judge")
    p.add_argument("--teacher-logits", help="teacher-logits file (.parquet/.csv: query, title, "
                   "logit_0..logit_{K-1} or prob_0..prob_{K-1})")
    p.add_argument("--overwrite", action="store_true", help="redo a finished --out")
    p.add_argument("--quiet", action="store_true", help="no progress bars")

    p = add("train", cmd_train, "staged training of a preset (encoder SFT, RSL, joint), then "
            "evaluation; writes model.keras and metrics.json")
    p.add_argument("--data", required=True, help="dataset folder from `prectr build`")
    p.add_argument("--preset", default="prectr_v2",
                   help="dnn, prectr_v1, prectr_v2, v2_no_cross, v2_no_debias, v2_frozen_encoder")
    p.add_argument("--out", required=True, help="output folder (checkpoints resume from it)")
    p.add_argument("--split", default="eval", help="split to evaluate after training")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--strategy", choices=STRATEGIES, default="default",
                   help="tf.distribute strategy: mirrored (local devices), "
                   "multi_worker_mirrored or parameter_server (the cluster and this process's "
                   "task read from TF_CONFIG; a parameter_server worker or ps task serves until "
                   "killed; README: training on a cluster)")
    p.add_argument("--logical-cpus", type=int, help="with --strategy mirrored on a host "
                   "without GPUs: split the CPU into this many replicas")
    train_flags(p)

    p = add("export", cmd_export, "export a trained model as a TF Serving SavedModel: "
            "<base>/<version>/, atomic, with the rank signature, the item catalogue and the "
            "query contexts inside")
    p.add_argument("--model", required=True, help="model.keras from `prectr train`")
    p.add_argument("--data", required=True, help="dataset folder whose items and events the "
                   "export carries")
    p.add_argument("--base", required=True, help="the model's base path (TF Serving's "
                   "model_base_path); the version is a folder inside it")
    p.add_argument("--mode", choices=["exact", "split"], default="exact",
                   help="exact cross-encoding, or split (needs encoder.num_split_layers > 0: "
                   "a title cache precomputed per item)")
    p.add_argument("--version", type=int, help="version number (default: the next one)")
    p.add_argument("--max-candidates", type=int, default=5000,
                   help="most candidates per request (default 5000)")

    p = add("rank", cmd_rank, "rank the requests of a JSON file with an export's rank "
            "signature (the graph TF Serving runs) and print the top candidates")
    p.add_argument("--export", required=True, help="an export version folder")
    p.add_argument("--request", required=True, help="JSON: a request object or a list "
                   "(user_id, query, candidates[, titles, categories, item_features, history, "
                   "user_event_count])")
    p.add_argument("--top", type=int, default=10, help="candidates to print (default 10)")

    p = add("evaluate", cmd_evaluate, "evaluate a saved model on a split; prints JSON")
    p.add_argument("--model", required=True, help="model.keras from `prectr train`")
    p.add_argument("--data", required=True, help="dataset folder from `prectr build`")
    p.add_argument("--split", default="eval")

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
