"""Ranking quality of every preset, on the logged eval split and on the full
candidate space, over several seeds (issue 3, DESIGN §7–§8).

For each seed s (the simulator seed and the training seed are both s):

1. simulate the **default simulator** (`SimulatorConfig()`: synthetic
   catalogue of 5,000 items and 1,000 queries, 100 candidates per query, 10
   results per page, 30 % cold-start users, exposure-biased logging policy,
   position-biased clicks) scaled down to `--requests` requests (default
   3,000, i.e. **30,000 impressions**) and `--requests / 5` users (the
   default's 5 requests per user); nothing else changes;
2. build it (`DataSchema` defaults: L_u = L_g = 20; time split, the latest
   `--eval-fraction` (default 0.2) of requests held out: 0.2 rather than the
   build's 0.1 so that the cold-start eval slice has ~40 requests, not ~20);
3. learn the WordPiece vocabulary and run stage 0 **once**, shared by every
   text preset: SFT on the relevance labels trained to convergence (early
   stopping on held-out queries, `--sft-epochs` a cap; `pretrain_encoder`), or
   with `--encoder-init distilled` the student distilled from the simulated
   judge (`SimulatedJudge()`, the MiniLM-measured default confusion) on every
   (query, title) pair of the train requests, shown or not;
4. train each preset with `train_staged` (stage 1 RSL, stage 2 joint; `dnn`:
   stage 2 only) — `dnn`, `prectr_v1`, `prectr_v2`, `v2_no_cross`,
   `v2_no_debias`, `v2_frozen_encoder`; stage 1 (the relevance head alone
   over the frozen student) is the same for every text preset, so the first
   trains it and the others take it (`relevance_stage_from`);
5. evaluate it (a) on the logged eval split with `evaluate` (AUC, GAUC
   user/query, NDCG@10 and MRR per request with click labels, GAUC user per
   activity bucket) and (b) on the full candidate space of the eval requests
   with `prectr_tf.evaluation.full_space` (noise-free, from the true click
   probabilities: expected AUC, GAUC user/query, NDCG@10 with gain = true
   click probability and with gain = 2^level − 1, per activity bucket).

Why 30,000 impressions by default: six presets — three fine-tune a 3-layer
transformer, three run the debias twin pass — train slowly on 2 CPU cores
(each seed prints its stage times, and `--out` keeps them); split seeds over
processes or machines with `--first-seed`/`--seeds` and join the files with
`--report`. At this size the train split has ~24,000 impressions (~7,000
relevance-labelled) and the eval split ~600 requests x 100 candidates. Stage 0
is shared, so it is paid once per seed; distilled, it trains on ~10x more pairs
(every candidate of the train requests), which dominates a seed at 100,000
impressions (`--requests 10000`: ~40 minutes of ~50).

Prints the machine, versions, sizes and seeds; a table of mean ± std (sample
std over seeds, ddof = 1) per preset for (a) and (b); the full-space metrics
of the reference scorers (`prectr_tf.evaluation.headroom`: the true click
probability — the ceiling —, the query-preference and no-preference oracles,
the true relevance level); (c) component diagnostics (`component_diagnostics`:
the relevance head's full-space accuracy and level-0 recall, the incentive's
gate and τ spread); RelaImpr vs `dnn`; the PRECTR-V2 − v1 GAUC gap on the
cold-start slice vs the active (high) slice; and per-seed paired differences
for the issue's expected shape. Every per-seed number goes to `--out` (JSON),
rewritten after each preset: `--resume` goes on from the last finished preset of
an interrupted seed (which `--report` leaves out until it is done).

    python benchmarks/quality.py                     # 5 seeds, 30k impressions
    python benchmarks/quality.py --seeds 1 --out runs/quality.json      # time one seed,
    python benchmarks/quality.py --seeds 3 --out runs/quality.json --resume  # then add two
    python benchmarks/quality.py --quick             # 1 seed, tiny: a smoke run (~8 min)
    python benchmarks/quality.py --first-seed 3 --seeds 2 --out runs/b.json  # split seeds
    python benchmarks/quality.py --report runs/a.json runs/b.json --out runs/all.json  # join
    python benchmarks/quality.py --seeds 5 --jobs 2 --out runs/q.json --resume
        # each seed in a process of one thread, two at a time, a new one as one ends
        # (one process leaves cores idle while it simulates, builds and evaluates);
        # per-seed files runs/q_s<seed>.json and .log, joined into runs/q.json
    python benchmarks/quality.py --seeds 1 --presets prectr_v1 prectr_v2 \
        --variant v2_noise1.5=prectr_v2:debias_noise_scale=1.5    # a preset with fields changed

A `--variant NAME=PRESET:field=value[,field=value]` is trained and reported like a preset
(and compared with its PRESET per seed), sharing the seed's data and stage 0: a sweep of
`PRECTRConfig` fields costs one preset's training per point.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from _common import run_pool, without_options  # noqa: E402
from quality_report import PRESETS, derived, report  # noqa: E402


def _sizes(args):
    from prectr_tf.data.simulator import SimulatorConfig

    if args.quick:
        sim = dict(num_users=100, num_requests=600, num_items=400, num_queries=40,
                   num_candidates=30)
    else:
        sim = dict(num_users=args.requests // 5, num_requests=args.requests)
    if args.catalogue == "homedepot":
        sim.update(catalogue="homedepot", homedepot_dir=args.homedepot_dir)
    return sim, SimulatorConfig(**sim)


def _train_config(args, seed):
    from prectr_tf.models.training import TrainConfig

    if args.quick:
        return TrainConfig(batch_size=128, encoder_sft_epochs=1, encoder_min_steps_per_epoch=5,
                           rsl_epochs=1, joint_epochs=1, steps_per_epoch=5,
                           wordpiece_vocabulary_size=400, seed=seed)
    return TrainConfig(batch_size=args.batch_size, encoder_sft_epochs=args.sft_epochs,
                       rsl_epochs=args.rsl_epochs, joint_epochs=args.joint_epochs,
                       stage_validation_fraction=args.stage_validation_fraction,
                       stage_patience=args.stage_patience,
                       encoder_min_delta=args.min_delta, stage_min_delta=args.min_delta,
                       wordpiece_vocabulary_size=args.wordpiece_size, seed=seed)


def run_seed(seed, args, work_dir, log=print, partial=None, on_preset=None):
    """Simulate, build, train every preset, evaluate; the seed's numbers.

    `partial`: this seed's record from an interrupted run (`"partial":
    true`); its finished presets are kept, not retrained (the data and stage
    0 are rebuilt the same from the seed, or reused from `--work-dir`).
    `on_preset(result)`: called with the seed's record so far after each
    preset, so that a long seed can be resumed preset by preset."""
    import keras  # noqa: PLC0415

    from prectr_tf.data.build import BuildConfig, build_dataset
    from prectr_tf.data.schema import DataSchema
    from prectr_tf.data.simulator import SimulatorConfig, simulate
    from prectr_tf.data.unexposed import attach_unexposed_negatives
    from prectr_tf.distill import judge_pairs, teacher_pairs
    from prectr_tf.data.validation import validate_log
    from prectr_tf.evaluation.full_space import full_space_examples, score_candidates
    from prectr_tf.evaluation.headroom import reference_metrics
    from prectr_tf.evaluation.relevance import student_diagnostics
    from prectr_tf.evaluation.soft_metrics import full_space_metrics
    from prectr_tf.models.config import preset
    from prectr_tf.models.training import evaluate, train_staged

    sim_fields, _ = _sizes(args)
    sim_config = SimulatorConfig(seed=seed, **sim_fields)
    train_config = _train_config(args, seed)
    seconds = {}
    started = time.perf_counter()
    sim = simulate(sim_config)
    schema = DataSchema(num_relevance_levels=sim_config.num_relevance_levels,
                        num_item_features=sim_config.num_item_features)
    # build_dataset takes an in-memory frame as already validated.
    frame, _ = validate_log(sim.log, schema, f"simulated-seed-{seed}")
    negatives = None
    if any(model_config(name, args.variants).debias == "unexposed" for name in args.presets):
        # Each clicked impression's unshown negative, labelled by the judge.
        schema = dataclasses.replace(schema, unexposed_negatives=True)
        teacher = judge_pairs(teacher_pairs(sim.log, sim.candidates, sim.items),
                              simulated_judge(args, train_config.seed)[0])
        negatives = functools.partial(attach_unexposed_negatives, candidates=sim.candidates,
                                      items=sim.items, teacher=teacher, seed=seed)
    data_dir = os.path.join(work_dir, "dataset")
    info = build_dataset(frame, data_dir, schema, BuildConfig(eval_fraction=args.eval_fraction),
                         overwrite=True, progress=False, negatives=negatives)
    space = full_space_examples(sim, data_dir, "eval")
    seconds["simulate_build"] = time.perf_counter() - started

    started = time.perf_counter()
    models_dir = os.path.join(work_dir, "models")
    os.makedirs(models_dir, exist_ok=True)
    student_dir = stage0_student(args, sim, data_dir, models_dir, train_config)
    seconds["stage0"] = time.perf_counter() - started
    log(f"  seed {seed}: simulated + built in {seconds['simulate_build']:.0f}s "
        f"({info['splits']['train']['num_examples']:,} train / "
        f"{info['splits']['eval']['num_examples']:,} eval impressions, "
        f"{space.table['request_id'].nunique():,} eval requests x "
        f"{sim_config.num_candidates} candidates); stage 0 ({args.encoder_init}) in "
        f"{seconds['stage0']:.0f}s", flush=True)

    table = space.table
    result = {"seed": seed, "dataset": {"splits": {k: {n: v[n] for n in
                                                       ("num_examples", "num_clicks",
                                                        "num_relevance_labelled")}
                                                   for k, v in info["splits"].items()},
                                        "vocab_sizes": info["vocab_sizes"]},
              "full_space_size": {"candidates": int(len(table)),
                                  "requests": int(table["request_id"].nunique()),
                                  "shown_share": float(table["shown"].mean()),
                                  "requests_by_bucket": {
                                      b: int(table.loc[table["activity"] == b,
                                                       "request_id"].nunique())
                                      for b in ("cold", "low", "high")}},
              "references": reference_metrics(table),
              "variants": {n: list(v) for n, v in args.variants.items()},
              "stage0": student_diagnostics(student_dir, space),
              "presets": dict((partial or {}).get("presets", {})), "partial": True}
    stage1_source = None  # the first text preset's stage 1 serves the others
    for name in args.presets:
        if name in result["presets"]:
            log(f"    {name:<18} kept from the interrupted run", flush=True)
            continue
        started = time.perf_counter()
        config = model_config(name, args.variants)
        shares = config.uses_text and not config.relevance_id_features
        out_dir = os.path.join(models_dir, name)
        model, history = train_staged(data_dir, config, train_config, out_dir,
                                      student_dir=student_dir, verbose=0,
                                      relevance_stage_from=stage1_source if shares else None)
        if shares and stage1_source is None:
            stage1_source = out_dir
        train_seconds = time.perf_counter() - started
        started = time.perf_counter()
        logged = evaluate(model, data_dir, "eval")
        text = model.config.uses_text
        outputs = score_candidates(model, space.features, outputs=(
            ("score", "relevance_probs", "tau", "gate_probs") if text else ("score",)))
        full = full_space_metrics(table, outputs["score"])
        eval_seconds = time.perf_counter() - started
        result["presets"][name] = {
            "logged": logged, "full_space": full,
            "diagnostics": component_diagnostics(table, outputs) if text else {},
            "final_train_losses": {stage: {k: v[-1] for k, v in h.items()}
                                   for stage, h in history.items()},
            "epochs": {stage: {"run": len(h.get("loss", [])),
                               "best": h.get("best_epoch", [len(h.get("loss", []))])[0]}
                       for stage, h in history.items()},
            "seconds": {"train": train_seconds, "evaluate": eval_seconds},
            "stage1_from": (os.path.basename(stage1_source)
                            if shares and stage1_source != out_dir else None)}
        log(f"    {name:<18} train {train_seconds:5.0f}s  eval {eval_seconds:4.0f}s  "
            f"logged AUC {logged['auc']:.4f} GAUC-u {logged['gauc_user']:.4f}  "
            f"full AUC {full['auc']:.4f} NDCG@10 {full['ndcg_at_10']:.4f}", flush=True)
        del model
        keras.backend.clear_session()
        if on_preset is not None:
            on_preset(dict(result, seconds=dict(seconds)))
    result["seconds"] = seconds
    del result["partial"]
    return result


def component_diagnostics(table, outputs):
    """Why a preset ranks as it does, on the full candidate space.

    * `relevance_accuracy`, `level0_recall`: the relevance head's argmax
      against the true level (every candidate, shown or not), and the share
      of true level-0 candidates it calls level 0;
    * `ndcg_at_10_expected_level`: NDCG@10 (gain = true p) ranking by the
      head's expected level Σ_k k·p_k alone — the relevance head's share of
      the ranking;
    * `gate_positive/negative/zero`: mean incentive gate (softmax at
      inference); `tau_std`, `tau_std_within_request`: how much τ moves
      scores overall and between the candidates of one request.
    """
    from prectr_tf.evaluation.relevance import relevance_diagnostics  # noqa: PLC0415

    tau = outputs["tau"].reshape(-1)
    tau_by_request = (table.assign(tau=tau).groupby("request_id")["tau"].std(ddof=0))
    gate = outputs["gate_probs"].mean(axis=0)
    return {
        **relevance_diagnostics(table, outputs["relevance_probs"]),
        "gate_positive": float(gate[0]), "gate_negative": float(gate[1]),
        "gate_zero": float(gate[2]),
        "tau_std": float(tau.std()), "tau_std_within_request": float(tau_by_request.mean()),
    }


def simulated_judge(args, seed):
    """The seed's teacher (for distillation and unexposed negatives) and its
    name: the default confusion, or `--judge-accuracy`."""
    from prectr_tf.distill import SimulatedJudge  # noqa: PLC0415
    from prectr_tf.models.config import preset  # noqa: PLC0415

    if args.judge_accuracy is None:
        return SimulatedJudge(seed=seed), "default confusion"
    return (SimulatedJudge.with_accuracy(args.judge_accuracy,
                                         preset("prectr_v2").num_relevance_levels, seed=seed),
            f"accuracy {args.judge_accuracy}")


def stage0_student(args, sim, data_dir, models_dir, train_config):
    """The seed's shared stage-0 student folder: SFT to convergence on the
    labelled pairs, or distilled from the simulated judge (`--encoder-init`)."""
    from prectr_tf.distill import distill_encoder, judge_pairs, simulation_pairs  # noqa: PLC0415
    from prectr_tf.models.config import preset  # noqa: PLC0415
    from prectr_tf.models.training import (pretrain_encoder, student_config,  # noqa: PLC0415
                                           wordpiece_vocabulary)

    config = preset("prectr_v2")
    if args.encoder_init == "sft":
        return pretrain_encoder(data_dir, config, train_config, models_dir, verbose=0)
    vocabulary = wordpiece_vocabulary(data_dir, models_dir, train_config.wordpiece_vocabulary_size)
    pairs = simulation_pairs(sim, data_dir)
    judge, name = simulated_judge(args, train_config.seed)
    out = os.path.join(models_dir, "stage0_distilled")
    distill_encoder(pairs, judge_pairs(pairs, judge), vocabulary, config.encoder,
                    config.num_relevance_levels, out, student_config(train_config),
                    teacher_name=f"simulated judge ({name})", verbose=0)
    return out


def parse_variant(text):
    """`NAME=PRESET:field=value[,field=value]` -> (name, preset, {field: value}).

    Values are YAML scalars (`1.5`, `true`, `0`).

    >>> parse_variant("v2_lb=prectr_v2:load_balance_weight=0.1,debias_weight=0")
    ('v2_lb', 'prectr_v2', {'load_balance_weight': 0.1, 'debias_weight': 0})
    """
    import yaml  # noqa: PLC0415

    from prectr_tf.models.config import PRESETS as MODEL_PRESETS, preset  # noqa: PLC0415

    try:
        name, rest = text.split("=", 1)
        base, fields = rest.split(":", 1)
        overrides = {k.strip(): yaml.safe_load(v) for k, v in
                     (item.split("=", 1) for item in fields.split(","))}
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--variant {text!r}: expected NAME=PRESET:field=value[,field=value]") from None
    if base not in MODEL_PRESETS or name in MODEL_PRESETS:
        raise argparse.ArgumentTypeError(
            f"--variant {text!r}: PRESET must be one of {', '.join(MODEL_PRESETS)} and NAME "
            "a new name")
    try:
        preset(base, **overrides)
    except (TypeError, ValueError) as err:
        raise argparse.ArgumentTypeError(f"--variant {text!r}: {err}") from None
    return name.strip(), base, overrides


def model_config(name, variants):
    """The `PRECTRConfig` of a preset or of a variant (named `name`)."""
    from prectr_tf.models.config import preset  # noqa: PLC0415

    if name in variants:
        base, overrides = variants[name]
        return dataclasses.replace(preset(base, **overrides), name=name)
    return preset(name)


# --- results files (the tables: quality_report) ----------------------------------
def _meta(args, sim_config, train_config, seeds):
    import keras  # noqa: PLC0415
    import pandas as pd  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}, "
                   f"Python {platform.python_version()}",
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__,
                     "numpy": np.__version__, "pandas": pd.__version__},
        "seeds": list(seeds), "quick": bool(args.quick), "presets": list(args.presets),
        "variants": {n: list(v) for n, v in args.variants.items()},
        "simulator": {k: v for k, v in sim_config.to_dict().items() if k != "seed"},
        "eval_fraction": args.eval_fraction,
        "encoder_init": args.encoder_init,
        "judge_accuracy": args.judge_accuracy,
        "train": {k: v for k, v in dataclasses.asdict(train_config).items() if k != "seed"},
        "threads": args.threads,
        "load_average_at_start": _load_average(),
    }


def _load_average():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


# Settings a resumed run must share with the seeds it reuses.
_SAME_RUN = ("quick", "presets", "variants", "simulator", "eval_fraction", "encoder_init",
             "judge_accuracy", "train", "versions")


def _resumed(args, meta, seeds):
    """With --resume: the per-seed results already in --out (same settings),
    and the seconds they took."""
    if not (args.resume and os.path.exists(args.out)):
        return [], 0.0
    with open(args.out) as fh:
        old = json.load(fh)
    for key in _SAME_RUN:
        if old["meta"].get(key) != json.loads(json.dumps(meta[key])):
            raise SystemExit(f"--resume: {args.out} was made with another {key!r}; "
                             "use another --out")
    kept = [s for s in old["per_seed"] if s["seed"] in seeds]
    done = [s["seed"] for s in kept if not s.get("partial")]
    print(f"resuming: seeds {done} read from {args.out}"
          + "".join(f"; seed {s['seed']} has {', '.join(s['presets'])} done" for s in kept
                    if s.get("partial")), flush=True)
    return kept, float(sum(s["seconds"].get("total", 0.0) for s in kept))


def write_results(path, meta, per_seed):
    """Every per-seed number, and the derived ones, as JSON (rewritten whole)."""
    with open(path, "w") as fh:
        json.dump({"meta": meta, "per_seed": per_seed, "derived": derived(per_seed)}, fh,
                  indent=1, default=float)


def merged(paths):
    """The runs in `paths` (same settings, `_SAME_RUN`) as one: (meta, per_seed)."""
    runs = []
    for path in paths:
        with open(path) as fh:
            runs.append(json.load(fh))
    meta = runs[0]["meta"]
    for path, run in zip(paths[1:], runs[1:]):
        for key in _SAME_RUN:
            if run["meta"].get(key) != meta.get(key):
                raise SystemExit(f"--report: {path} was made with another {key!r} than "
                                 f"{paths[0]}")
    per_seed = {}
    for run in runs:
        # A seed interrupted between presets is not joined until it is done.
        per_seed.update({s["seed"]: s for s in run["per_seed"] if not s.get("partial")})
    per_seed = [per_seed[k] for k in sorted(per_seed)]
    meta = dict(meta, seeds=[s["seed"] for s in per_seed], joined_from=list(paths),
                seconds_total=float(sum(s["seconds"]["total"] for s in per_seed)))
    return meta, per_seed


def _seeds_in_processes(args, argv):
    """`--jobs N`: each seed in a process of its own with one thread, N at a
    time, started in seed order as others end; their files
    (`<--out stem>_s<seed>.json`, logs `.log` beside them) joined into
    `--out` as `--report` joins them, with the wall time of the whole."""
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    common = without_options(argv, ("--jobs", "--seeds", "--first-seed", "--threads", "--out"))
    stem = os.path.splitext(args.out)[0]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    outs = [f"{stem}_s{seed}.json" for seed in seeds]
    commands = [[sys.executable, os.path.abspath(__file__), *common, "--first-seed", str(seed),
                 "--seeds", "1", "--threads", "1", "--out", out]
                for seed, out in zip(seeds, outs)]
    print(f"# ranking quality: seeds {seeds}, {args.jobs} processes of one thread at a time; "
          f"logs {stem}_s<seed>.log", flush=True)

    def ended(index, code, seconds):
        print(f"  seed {seeds[index]} {'done' if code == 0 else f'failed (exit {code})'} "
              f"at {seconds:.0f}s", flush=True)

    started = time.perf_counter()
    codes = run_pool(commands, args.jobs, [f"{stem}_s{seed}.log" for seed in seeds], ended)
    failed = [seed for seed, code in zip(seeds, codes) if code]
    if failed:
        raise SystemExit(f"seeds {failed} failed (their logs say why); the same command with "
                         "--resume goes on from their last finished preset")
    meta, per_seed = merged(outs)
    meta.update(jobs=args.jobs, seconds_wall=time.perf_counter() - started)
    write_results(args.out, meta, per_seed)
    print(report(meta, per_seed))
    print(f"\n{len(per_seed)} seeds in {meta['seconds_wall'] / 60:.1f} min of wall time "
          f"({args.jobs} processes); per-seed numbers in {args.out}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds (0, 1, ...)")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--requests", type=int, default=3000,
                        help="simulated requests (x10 impressions); users = requests / 5")
    parser.add_argument("--eval-fraction", type=float, default=0.2)
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=PRESETS)
    parser.add_argument("--variant", action="append", type=parse_variant, default=[],
                        metavar="NAME=PRESET:field=value[,...]",
                        help="also train PRESET with PRECTRConfig fields changed (repeatable)")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--sft-epochs", type=int, default=30,
                        help="the most stage-0 epochs (early stopping by query ends it sooner)")
    parser.add_argument("--catalogue", choices=("synthetic", "homedepot"), default="synthetic",
                        help="the simulator's catalogue (homedepot: real queries, titles and "
                             "human grades; other queries' products assumed level 0)")
    parser.add_argument("--homedepot-dir", default=os.path.join("..", "shared", "data",
                                                                "homedepot"))
    parser.add_argument("--encoder-init", choices=("sft", "distilled"), default="sft",
                        help="stage 0: SFT on the labelled pairs, or distilled from the "
                             "simulated judge over the training requests' candidate sets")
    parser.add_argument("--judge-accuracy", type=float, default=None,
                        help="the simulated judge (teacher of --encoder-init distilled and "
                             "labeller of debias=unexposed negatives) is right with this "
                             "probability, else one level off (default: the MiniLM-calibrated "
                             "confusion)")
    parser.add_argument("--rsl-epochs", type=int, default=1)
    parser.add_argument("--joint-epochs", type=int, default=2)
    parser.add_argument("--stage-validation-fraction", type=float, default=0.0,
                        help="> 0: stop stages 1-2 early on this share of the train requests; "
                             "--rsl-epochs / --joint-epochs are then caps")
    parser.add_argument("--stage-patience", type=int, default=2)
    parser.add_argument("--min-delta", type=float, default=1e-4,
                        help="the least validation-loss decrease that counts as better, "
                             "stage 0 and stages 1-2 (TrainConfig encoder_/stage_min_delta)")
    parser.add_argument("--wordpiece-size", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=None,
                        help="TensorFlow intra- and inter-op threads (default: one per core); "
                             "1 for seeds run side by side, one process per core")
    parser.add_argument("--jobs", type=int, default=1,
                        help="> 1: run each seed in a process of one thread, this many at a "
                             "time (per-seed files beside --out, then joined into it)")
    parser.add_argument("--out", default=os.path.join("runs", "quality.json"),
                        help="JSON of every per-seed number (rewritten after each preset)")
    parser.add_argument("--work-dir", help="keep datasets and models here (default: a temp dir)")
    parser.add_argument("--resume", action="store_true",
                        help="reuse the seeds already in --out (same settings) and run the rest; "
                             "a seed interrupted after some presets goes on from them")
    parser.add_argument("--quick", action="store_true",
                        help="1 seed, a tiny simulator and 5 steps per epoch: a smoke run")
    parser.add_argument("--report", nargs="+", metavar="JSON",
                        help="train nothing: join these runs' seeds (same settings), write "
                             "them to --out and print the report")
    parser.add_argument("--markdown", action="store_true",
                        help="with --report: print the tables as Markdown (BENCHMARKS.md)")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if args.jobs > 1 and args.seeds > 1 and not (args.report or args.quick):
        return _seeds_in_processes(args, argv)
    if args.report:
        meta, per_seed = merged(args.report)
        write_results(args.out, meta, per_seed)
        print(f"seeds {meta['seeds']} from {', '.join(args.report)}; machine: {meta['machine']}")
        print(report(meta, per_seed, markdown=args.markdown))
        return 0
    if args.quick:
        args.seeds = 1
    if args.threads:
        import tensorflow as tf  # noqa: PLC0415

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    if "dnn" not in args.presets:
        args.presets = ["dnn", *args.presets]
    args.presets = [p for p in PRESETS if p in args.presets]
    args.variants = {name: (base, overrides) for name, base, overrides in args.variant}
    args.presets += list(args.variants)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    _, sim_config = _sizes(args)
    meta = _meta(args, sim_config, _train_config(args, 0), seeds)
    print("# ranking quality: logged eval and full candidate space")
    print(f"machine: {meta['machine']}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()))
    print(f"simulator: default except num_requests={sim_config.num_requests:,} "
          f"({sim_config.num_impressions:,} impressions), num_users={sim_config.num_users:,}"
          + (" [quick: tiny catalogue]" if args.quick else "")
          + f"; {sim_config.num_items:,} items, {sim_config.num_queries:,} queries, "
          f"{sim_config.num_candidates} candidates/request, page {sim_config.page_size}; "
          f"eval fraction {args.eval_fraction}")
    print(f"training: {json.dumps(meta['train'])}")
    print(f"seeds: {seeds} (simulator seed = training seed)", flush=True)

    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    per_seed, earlier_seconds = _resumed(args, meta, seeds)
    started = time.perf_counter() - earlier_seconds
    for seed in seeds:
        partial = next((s for s in per_seed if s["seed"] == seed), None)
        if partial is not None and not partial.get("partial"):
            continue
        per_seed = [s for s in per_seed if s["seed"] != seed]
        earlier = (partial or {}).get("seconds", {}).get("total", 0.0)
        seed_started = time.perf_counter() - earlier
        work = (os.path.join(args.work_dir, f"seed-{seed}") if args.work_dir
                else tempfile.mkdtemp(prefix=f"quality-seed-{seed}-"))

        def on_preset(record, seed_started=seed_started):
            # The seed so far, written after each preset: --resume goes on from it.
            record["seconds"]["total"] = time.perf_counter() - seed_started
            write_results(args.out, meta, per_seed + [record])

        try:
            result = run_seed(seed, args, work, partial=partial, on_preset=on_preset)
        finally:
            if not args.work_dir:
                shutil.rmtree(work, ignore_errors=True)
        result["seconds"]["total"] = time.perf_counter() - seed_started
        result["load_average_at_end"] = _load_average()
        per_seed.append(result)
        print(f"  seed {seed} done in {result['seconds']['total']:.0f}s", flush=True)
        write_results(args.out, meta, per_seed)
    per_seed.sort(key=lambda s: s["seed"])
    total = time.perf_counter() - started
    meta["seconds_total"] = total
    meta["load_average_at_end"] = _load_average()
    write_results(args.out, meta, per_seed)
    print()
    print(report(meta, per_seed))
    print(f"\n{len(per_seed)} seed(s) in {total / 60:.1f} min (training and evaluation, summed "
          f"over runs); per-seed numbers in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
