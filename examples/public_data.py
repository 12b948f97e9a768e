"""Real public data into the same pipeline: Home Depot and TREC 2014 Session.

Reads each dataset from its own directory (never copied into the project:
their terms forbid redistribution), prints what the reader produced and
rejected, and builds TFRecords from the TREC click log.

    python examples/public_data.py --data ../shared/data --out /tmp/prectr_public
"""

import argparse
import os

from prectr_tf.data.build import BuildConfig, build_dataset
from prectr_tf.data.readers import read_dataset
from prectr_tf.data.schema import DataSchema


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=os.path.join("..", "shared", "data"))
    parser.add_argument("--out", default="/tmp/prectr_public")
    args = parser.parse_args(argv)
    schema = DataSchema()

    homedepot, report = read_dataset("homedepot", os.path.join(args.data, "homedepot"))
    print(f"Home Depot: {len(homedepot):,} impressions, {homedepot['request_id'].nunique():,} "
          f"queries; {report.summary()}")
    print("  relevance levels:", homedepot["relevance"].value_counts().sort_index().to_dict())

    trec, report = read_dataset("trec_session", os.path.join(args.data, "trec2014_session"),
                                split="train")
    print(f"TREC 2014 Session (train): {len(trec):,} impressions, "
          f"{trec['request_id'].nunique():,} result pages, {trec['user_id'].nunique():,} "
          f"sessions, CTR {(trec['click'] == 1).mean():.3f}; {report.summary()}")

    info = build_dataset(trec, os.path.join(args.out, "trec_dataset"), schema,
                         BuildConfig(eval_fraction=0.1), overwrite=True)
    print({split: s["num_examples"] for split, s in info["splits"].items()})
    return homedepot, trec, info


if __name__ == "__main__":
    main()
