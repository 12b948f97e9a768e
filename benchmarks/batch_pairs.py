"""What a training batch's text looks like: repeated pairs and token lengths.

For the default simulator (synthetic catalogue) and the simulator on the Home
Depot catalogue (`../shared/data/homedepot`), at `--impressions` each: simulate,
build, learn a WordPiece vocabulary, then over the shuffled training batches
of `--batch-size` (as `fit` sees them) report

* the unique-pair ratio: distinct (query, title) pairs / rows per batch —
  what `PRECTRConfig.dedup_pairs` saves in the encoder (mean, min, max over
  the batches);
* the token length of `[CLS] query [SEP] title [SEP]` after the tokenizer's
  cuts (max 32): percentiles, and the mean of each batch's longest — what
  padding to the batch's longest would save against always 32.

Prints machine, versions and the table; JSON to `--out`.

    python benchmarks/batch_pairs.py            # ~2 min on 2 cores
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

import numpy as np  # noqa: E402

from _common import machine_line, simulated_dataset  # noqa: E402


def batch_statistics(data_dir, vocabulary, batch_size, max_length=32):
    """Per-batch unique-pair ratios and per-pair / per-batch-max token lengths."""
    from prectr_tf.data.pipeline import make_dataset  # noqa: PLC0415
    from prectr_tf.layers.text_preprocessing import PairTokenizer  # noqa: PLC0415

    tokenizer = PairTokenizer(vocabulary, max_length=max_length)
    ratios, lengths, longest = [], [], []
    for features, _ in make_dataset(data_dir, "train", batch_size=batch_size, seed=0,
                                    drop_remainder=True):
        query = features["query"].numpy().ravel()
        title = features["item_title"].numpy().ravel()
        ratios.append(len(set(zip(query, title))) / len(query))
        used = (tokenizer(query, title)["token_ids"].numpy() != 0).sum(axis=1)
        lengths.append(used)
        longest.append(used.max())
    lengths = np.concatenate(lengths)
    return {"batches": len(ratios), "unique_ratio_mean": float(np.mean(ratios)),
            "unique_ratio_min": float(np.min(ratios)), "unique_ratio_max": float(np.max(ratios)),
            "length_percentiles": {str(p): float(np.percentile(lengths, p))
                                   for p in (10, 50, 90, 99, 100)},
            "length_mean": float(lengths.mean()),
            "batch_longest_mean": float(np.mean(longest)), "max_length": max_length}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impressions", type=int, default=30_000)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--homedepot-dir", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "homedepot"))
    parser.add_argument("--out", default=os.path.join("runs", "batch_pairs.json"))
    args = parser.parse_args(argv)

    import tensorflow as tf  # noqa: PLC0415

    from prectr_tf.data.simulator import SimulatorConfig  # noqa: PLC0415
    from prectr_tf.layers.text_preprocessing import learn_wordpiece_vocabulary  # noqa: PLC0415

    requests = args.impressions // 10
    report = {}
    for catalogue in ("synthetic", "homedepot"):
        extra = ({"catalogue": "homedepot", "homedepot_dir": args.homedepot_dir}
                 if catalogue == "homedepot" else {})
        config = SimulatorConfig(seed=1, num_users=requests // 5, num_requests=requests, **extra)
        sim, _, data_dir = simulated_dataset(config, tempfile.mkdtemp(prefix="pairs_"))
        vocabulary = learn_wordpiece_vocabulary(
            sorted(set(sim.log["query"]) | set(sim.log["item_title"])), vocabulary_size=2000)
        report[catalogue] = batch_statistics(data_dir, vocabulary, args.batch_size)

    print("\n# training batches: repeated (query, title) pairs and token lengths")
    print(machine_line() + f"; tensorflow {tf.__version__}")
    print(f"{args.impressions:,} simulated impressions per catalogue, shuffled training "
          f"batches of {args.batch_size}")
    print("\n| catalogue | batches | unique pairs / rows: mean (min–max) | tokens p10 / p50 / "
          "p90 / p99 / max | mean longest per batch (of 32) |\n|---|---|---|---|---|")
    for catalogue, r in report.items():
        p = r["length_percentiles"]
        print(f"| {catalogue} | {r['batches']} | {r['unique_ratio_mean']:.3f} "
              f"({r['unique_ratio_min']:.3f}–{r['unique_ratio_max']:.3f}) | "
              f"{p['10']:.0f} / {p['50']:.0f} / {p['90']:.0f} / {p['99']:.0f} / {p['100']:.0f} | "
              f"{r['batch_longest_mean']:.1f} |")
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump({"argv": sys.argv, "report": report}, fh, indent=2)


if __name__ == "__main__":
    main()
