"""From a search log to Keras-ready batches, in Python rather than the CLI.

Simulates a small search log, builds leakage-free examples (user histories
and cross-user query contexts) as TFRecords, and reads them back with the
`tf.data` pipeline that `model.fit` will consume.

    python examples/simulate_build_read.py --out /tmp/prectr_example
"""

import argparse
import os

from prectr_tf.data.build import BuildConfig, build_dataset
from prectr_tf.data.pipeline import make_dataset
from prectr_tf.data.schema import DataSchema
from prectr_tf.data.simulator import SimulatorConfig, format_stats, simulate, simulation_stats


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="/tmp/prectr_example")
    parser.add_argument("--num-requests", type=int, default=2_000)
    args = parser.parse_args(argv)

    sim_config = SimulatorConfig(num_users=200, num_requests=args.num_requests, seed=0)
    sim = simulate(sim_config)
    print(format_stats(simulation_stats(sim)))
    log_dir = sim.write(os.path.join(args.out, "simulated"))

    schema = DataSchema(history_length=10, context_length=10,
                        num_item_features=sim_config.num_item_features)
    info = build_dataset(os.path.join(log_dir, "log.parquet"), os.path.join(args.out, "dataset"),
                         schema, BuildConfig(eval_fraction=0.1), overwrite=True)
    print({split: s["num_examples"] for split, s in info["splits"].items()})

    features, labels = next(iter(make_dataset(os.path.join(args.out, "dataset"), "train",
                                              batch_size=4, seed=0)))
    for name in ("query", "item_title", "user_history_item_id", "query_context_click"):
        print(name, features[name].shape, features[name].numpy()[0])
    print("user_history_length", features["user_history_length"].numpy())
    print("labels", {k: v.numpy() for k, v in labels.items()})
    return features, labels


if __name__ == "__main__":
    main()
