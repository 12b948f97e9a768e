"""Stage 0 by SFT vs by distillation, paired per seed (issue 7).

Joins two `benchmarks/quality.py` runs that differ only in `--encoder-init`
(the same seeds, simulator, presets and training settings otherwise) and
prints, per seed and as mean ± std with the count of seeds where it is > 0:

* the stage-0 student on the full candidate space (accuracy, level-0
  recall, macro-F1, NDCG@10 by expected level), each run and distilled − SFT;
* each preset trained on it (full-space AUC, GAUC user/query, NDCG@10, and
  logged AUC / GAUC user), each run and distilled − SFT.

    python benchmarks/quality.py --requests 10000 --presets prectr_v1 prectr_v2 \\
        --encoder-init sft --out runs/sim_sft.json
    python benchmarks/quality.py --requests 10000 --presets prectr_v1 prectr_v2 \\
        --encoder-init distilled --out runs/sim_distilled.json
    python benchmarks/compare_encoder_init.py runs/sim_sft.json runs/sim_distilled.json
"""

import argparse
import functools
import json
import sys

import numpy as np

from quality_report import _cell, _table

STAGE0 = ("relevance_accuracy", "level0_recall", "relevance_macro_f1",
          "ndcg_at_10_expected_level")
PRESET_METRICS = (("full_space", "auc"), ("full_space", "gauc_user"),
                  ("full_space", "gauc_query"), ("full_space", "ndcg_at_10"),
                  ("logged", "auc"), ("logged", "gauc_user"))
# Settings both runs must share (everything but the encoder init).
SAME = ("quick", "presets", "simulator", "eval_fraction", "train", "versions")


def _load(path):
    with open(path) as fh:
        data = json.load(fh)
    return data["meta"], {s["seed"]: s for s in data["per_seed"]}


def compare(sft_path, distilled_path, markdown=False):
    (meta_a, a), (meta_b, b) = _load(sft_path), _load(distilled_path)
    for key in SAME:
        if meta_a.get(key) != meta_b.get(key):
            raise SystemExit(f"the runs differ in {key!r}: {meta_a.get(key)} vs "
                             f"{meta_b.get(key)}")
    if (meta_a.get("encoder_init"), meta_b.get("encoder_init")) != ("sft", "distilled"):
        raise SystemExit("give the --encoder-init sft run first, then the distilled one")
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise SystemExit("the runs share no seed")
    table = functools.partial(_table, markdown=markdown)

    def rows(get):
        sft = [get(a[s]) for s in seeds]
        dist = [get(b[s]) for s in seeds]
        diff = np.subtract(dist, sft)
        return [_cell(sft, digits=3), _cell(dist, digits=3), _cell(diff, digits=3),
                f"{int((diff > 0).sum())}/{len(seeds)}"]

    columns = ["sft", "distilled", "distilled − sft", "> 0"]
    lines = [f"seeds {seeds}; simulator {json.dumps(meta_a['simulator'])}", ""]
    lines.append(table("stage-0 student on the full candidate space",
                       [(m, rows(lambda s, m=m: s["stage0"][m])) for m in STAGE0], columns))
    out = []
    for name in meta_a["presets"]:
        for part, metric in PRESET_METRICS:
            out.append((f"{name} {part} {metric}",
                        rows(lambda s, n=name, p=part, m=metric: s["presets"][n][p][m])))
    lines += ["", table("presets trained on each stage 0", out, columns)]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sft", help="quality.py JSON of the --encoder-init sft run")
    parser.add_argument("distilled", help="quality.py JSON of the --encoder-init distilled run")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    print(compare(args.sft, args.distilled, args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
