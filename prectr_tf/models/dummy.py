"""A two-row placeholder batch in the shape of a schema's examples, for
building a model's weights without data (e.g. when loading a `.keras` file)."""

import numpy as np
import tensorflow as tf

from prectr_tf.data.schema import STRING


def dummy_batch(schema, batch_size=2):
    """`{feature: tensor}` with every feature of `schema.example_features()`:
    empty strings, zeros, and empty history lists."""
    batch, vectors = {}, schema.vector_features()
    for name, dtype, shape in schema.example_features():
        full = (batch_size, *shape)
        if dtype == STRING:
            batch[name] = np.full(full, "x" if not shape else "", dtype=object)
        elif shape and name not in vectors:
            batch[name] = np.full(full, schema.padding_value(dtype), dtype=np.int64)
        else:
            batch[name] = np.zeros(full, dtype=np.float32 if name in vectors else np.int64)
    return {name: tf.constant(value) for name, value in batch.items()}
