"""Headroom of the simulator's preferences: the reference scorers on the full
candidate space, at the defaults and with each addition off (issue 10).

For each setting and seed: simulate `--requests` requests (users =
requests / 5, every other parameter at its default), take every candidate of
the latest 20 % of requests (the builder's eval split) and score it with each
reference of `prectr_tf.evaluation.headroom` — the ceiling (true p), the
query-preference oracle (knows all but the user's t_u and s_u), the
no-preference oracle (also not θ_q, s_q) and the true level. Prints NDCG@10
(gain = true p) and expected AUC, overall and per activity slice (cold / low /
high), mean ± std over seeds. No model trains: this measures what knowing a
preference is worth, before anyone tries to learn it.

Settings: `default` (interest_weight 1, σ_u = σ_q = 0.5), `no interests`
(interest_weight 0), `no sensitivity` (σ_u = σ_q = 0), `neither` (the click
model before issue 10).

    python benchmarks/headroom.py                 # 4 settings x 3 seeds, ~2 min
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from _common import machine_line  # noqa: E402

SETTINGS = {
    "default": {},
    "no interests": {"interest_weight": 0.0},
    "no sensitivity": {"user_sensitivity_std": 0.0, "query_sensitivity_std": 0.0},
    "neither": {"interest_weight": 0.0, "user_sensitivity_std": 0.0,
                "query_sensitivity_std": 0.0},
}
METRICS = ("ndcg_at_10", "auc")
SLICES = ("", "/cold", "/low", "/high")


def measure(setting, seed, requests):
    from prectr_tf.data.simulator import SimulatorConfig, simulate  # noqa: PLC0415
    from prectr_tf.evaluation.headroom import reference_metrics, reference_space  # noqa: PLC0415

    config = SimulatorConfig(seed=seed, num_requests=requests, num_users=requests // 5,
                             **SETTINGS[setting])
    return reference_metrics(reference_space(simulate(config)))


def report(results):
    lines = []
    for setting, per_seed in results.items():
        lines.append(f"\n**{setting}** ({len(per_seed)} seeds; mean ± std)\n")
        header = [f"{m}{s or ' (all)'}" for m in METRICS for s in SLICES]
        lines.append("| scorer | " + " | ".join(header) + " |")
        lines.append("|---" * (len(header) + 1) + "|")
        for scorer in per_seed[0]:
            cells = []
            for metric in METRICS:
                for part in SLICES:
                    values = np.array([s[scorer][metric + part] for s in per_seed], float)
                    spread = values.std(ddof=1) if len(values) > 1 else 0.0
                    cells.append(f"{values.mean():.4f} ± {spread:.4f}")
            lines.append(f"| {scorer} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=SETTINGS)
    parser.add_argument("--out", default=os.path.join("runs", "headroom.json"))
    args = parser.parse_args()
    start = time.time()
    results = {s: [measure(s, seed, args.requests)
                   for seed in range(args.first_seed, args.first_seed + args.seeds)]
               for s in args.settings}
    print("# headroom of the reference scorers, full candidate space of the eval requests")
    print(machine_line())
    print(f"{args.requests:,} requests per seed (x10 impressions), seeds "
          f"{args.first_seed}..{args.first_seed + args.seeds - 1}, {time.time() - start:.0f} s")
    print(report(results))
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump({"requests": args.requests, "results": results}, fh, indent=1)


if __name__ == "__main__":
    main()
