"""Real clicks without text: TREC 2014 Session, several seeds (issue 10).

TREC's release has no document text (`item_title` is empty), so the relevance
path of PRECTR has only the query and the ids to read. This is the path a new
user takes — `prectr convert trec_session` → `prectr build` → `prectr train`
with defaults — run for `dnn`, `prectr_v1`, `prectr_v2` and any `--variant`
(e.g. `relevance_id_features`), several training seeds on the one dataset
(the data is fixed; a seed sets initialisation, shuffles and noise). The
stages train the default epochs unless `--stage-validation-fraction` holds
out a slice of the train requests and stops each stage early on it
(`--rsl-epochs` / `--joint-epochs` then cap the epochs):

    python benchmarks/trec_session.py --seeds 5 \\
        --variant v1_ids=prectr_v1:relevance_id_features=true \\
        --variant v2_ids=prectr_v2:relevance_id_features=true --out runs/trec.json

Prints, per preset, mean ± std over the seeds of the eval split's AUC, GAUC
by user and query, NDCG@10, relevance accuracy and macro-F1 (on the labelled
pages), and each preset's paired per-seed difference against `dnn`. Per-seed
results are written to `--out` after every run; `--resume` skips what is
there (with the same settings).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from _common import machine_line  # noqa: E402
from quality import model_config, parse_variant  # noqa: E402
from quality_report import _cell, _table  # noqa: E402

BASE_PRESETS = ("dnn", "prectr_v1", "prectr_v2")
METRICS = ("auc", "gauc_user", "gauc_query", "ndcg_at_10", "relevance_accuracy",
           "relevance_macro_f1")


def build(args, work_dir):
    """convert (the train split file) + build with defaults; the dataset dir."""
    from prectr_tf.data.build import BuildConfig, build_dataset  # noqa: PLC0415
    from prectr_tf.data.readers import read_dataset  # noqa: PLC0415
    from prectr_tf.data.schema import DataSchema  # noqa: PLC0415

    data_dir = os.path.join(work_dir, "dataset")
    if os.path.exists(os.path.join(data_dir, "dataset.json")):
        return data_dir
    frame, report = read_dataset("trec_session", args.trec_dir, split="train")
    print(f"TREC 2014 Session (train file): {len(frame):,} impressions; {report.summary()}")
    build_dataset(frame, data_dir, DataSchema(), BuildConfig(), overwrite=True, progress=False)
    return data_dir


def run(name, seed, args, data_dir, work_dir):
    """Train one preset at one seed with the default TrainConfig; its metrics."""
    from prectr_tf.models.training import TrainConfig, evaluate, train_staged  # noqa: PLC0415

    started = time.perf_counter()
    out = os.path.join(work_dir, f"{name}_s{seed}")
    train = TrainConfig(seed=seed, **args.train)
    model, history = train_staged(data_dir, model_config(name, args.variants), train, out,
                                  verbose=0)
    results = evaluate(model, data_dir, "eval")
    row = {m: results.get(m, float("nan")) for m in METRICS}
    row["epochs"] = {stage: len(h.get("loss", [])) for stage, h in history.items()}
    row["seconds"] = time.perf_counter() - started
    return row


def report(results, presets, seeds, markdown=False):
    lines = []
    rows = [(name, [_cell([results[str(s)][name][m] for s in seeds], digits=3)
                    for m in METRICS]) for name in presets]
    lines.append(_table(f"TREC 2014 Session eval split, mean ± std over seeds {seeds}", rows,
                        list(METRICS), markdown))
    diffs = []
    for name in presets[1:]:
        for m in METRICS[:4]:
            d = np.array([results[str(s)][name][m] - results[str(s)]["dnn"][m] for s in seeds])
            diffs.append((f"{name} − dnn {m}", [_cell(d, digits=3),
                                                 f"{int((d > 0).sum())}/{len(d)}"]))
    lines += ["", _table("paired per seed against dnn", diffs, ["difference", "> 0"], markdown)]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--variant", action="append", type=parse_variant, default=[],
                        help="NAME=PRESET:field=value[,field=value] (repeatable)")
    parser.add_argument("--rsl-epochs", type=int, help="stage-1 epochs (default: TrainConfig's)")
    parser.add_argument("--joint-epochs", type=int, help="stage-2 epochs (default: TrainConfig's)")
    parser.add_argument("--stage-validation-fraction", type=float,
                        help="hold out this share of the train requests and stop stages 1-2 "
                             "early on it (default: TrainConfig's, no holdout)")
    parser.add_argument("--stage-patience", type=int)
    parser.add_argument("--trec-dir", default=os.path.join("..", "shared", "data",
                                                           "trec2014_session"))
    parser.add_argument("--work-dir", default=os.path.join("runs", "trec_work"))
    parser.add_argument("--out", default=os.path.join("runs", "trec.json"))
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    args.variants = {name: (base, overrides) for name, base, overrides in args.variant}
    presets = [*BASE_PRESETS, *args.variants]
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    args.train = {field: getattr(args, field) for field in
                  ("rsl_epochs", "joint_epochs", "stage_validation_fraction", "stage_patience")
                  if getattr(args, field) is not None}
    settings = {"variants": {k: [b, o] for k, (b, o) in args.variants.items()}}
    if args.train:
        settings["train"] = args.train
    results = {}
    if args.resume and os.path.exists(args.out):
        with open(args.out) as fh:
            saved = json.load(fh)
        if saved["settings"] != settings:
            raise SystemExit(f"{args.out} was written with other settings: {saved['settings']}")
        results = saved["per_seed"]
    print("# TREC 2014 Session, no document text")
    print(machine_line())
    os.makedirs(args.work_dir, exist_ok=True)
    data_dir = build(args, args.work_dir)
    for seed in seeds:
        for name in presets:
            if name in results.get(str(seed), {}):
                continue
            row = run(name, seed, args, data_dir, args.work_dir)
            results.setdefault(str(seed), {})[name] = row
            print(f"  seed {seed} {name:<12} AUC {row['auc']:.4f} GAUC-u {row['gauc_user']:.4f} "
                  f"NDCG@10 {row['ndcg_at_10']:.4f} rel acc {row['relevance_accuracy']:.3f} "
                  f"({row['seconds']:.0f}s, epochs {row['epochs']})", flush=True)
            os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
            with open(args.out, "w") as fh:
                json.dump({"settings": settings, "machine": machine_line(),
                           "per_seed": results}, fh, indent=1)
    print()
    print(report(results, presets, seeds, args.markdown))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
