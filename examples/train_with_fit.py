"""PRECTR-V2 with plain Keras: `compile`, `fit`, `evaluate`, `predict`.

Builds a small simulated dataset, then trains PRECTR-V2 exactly as a Keras
tutorial would (no staged recipe: see `prectr train` / `train_staged` for
that), with a validation split and standard callbacks.

    python examples/train_with_fit.py --out /tmp/prectr_fit
"""

import argparse
import os

import keras
import pandas as pd

from prectr_tf.data.build import BuildConfig, build_dataset
from prectr_tf.data.pipeline import make_dataset
from prectr_tf.data.schema import DataSchema
from prectr_tf.data.simulator import SimulatorConfig, simulate
from prectr_tf.layers.text_preprocessing import learn_wordpiece_vocabulary
from prectr_tf.models.config import preset
from prectr_tf.models.prectr_model import PRECTRModel


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="/tmp/prectr_fit")
    parser.add_argument("--num-requests", type=int, default=3_000)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args(argv)

    sim = simulate(SimulatorConfig(num_users=max(10, args.num_requests // 6),
                                   num_requests=args.num_requests, seed=0))
    data_dir = os.path.join(args.out, "dataset")
    build_dataset(sim.log, data_dir, DataSchema(num_item_features=4),
                  BuildConfig(eval_fraction=0.2), overwrite=True)
    texts = pd.concat([sim.log["query"], sim.log["item_title"]]).unique().tolist()
    vocabulary = learn_wordpiece_vocabulary(texts, vocabulary_size=2000)

    model = PRECTRModel.from_dataset(data_dir, preset("prectr_v2"),
                                     wordpiece_vocabulary=vocabulary)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3))
    history = model.fit(
        make_dataset(data_dir, "train", batch_size=256),
        validation_data=make_dataset(data_dir, "eval", batch_size=1024),
        epochs=args.epochs,
        callbacks=[keras.callbacks.TerminateOnNaN(),
                   keras.callbacks.CSVLogger(os.path.join(args.out, "history.csv"))])
    results = model.evaluate(make_dataset(data_dir, "eval", batch_size=1024), return_dict=True)
    print({k: round(float(v), 4) for k, v in results.items()})

    features, _ = next(iter(make_dataset(data_dir, "eval", batch_size=5, shuffle=False)))
    scores = model.predict(features)
    print("P(click):", scores["score"].round(4))
    print("relevance probabilities:", scores["relevance_probs"].round(3))
    return history, results


if __name__ == "__main__":
    main()
