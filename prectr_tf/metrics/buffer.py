"""`RowBuffer`: exact streaming state for evaluation metrics.

GAUC and per-query ranking metrics need every (group, label, score) row seen
so far, not a fixed-size summary. The buffer keeps one growing `tf.Variable`
per column (shape `[None]`); `append` works eagerly and inside `tf.function`,
but not under XLA (`jit_compile=True`), whose shapes must be static — the
metrics that use it are evaluation-only. Memory: 8 bytes per column per row.
"""

import tensorflow as tf


class RowBuffer:
    """Growing column store.

    Args:
        columns: dict `name -> dtype`.

    Example:
    >>> buf = RowBuffer({"x": "float64"})
    >>> buf.append(x=[1.0, 2.0]); buf.append(x=[3.0])
    >>> buf.read()["x"].numpy().tolist()
    [1.0, 2.0, 3.0]
    """

    def __init__(self, columns):
        self._columns = {
            name: tf.Variable(tf.zeros([0], dtype), shape=tf.TensorShape([None]),
                              trainable=False, name=f"buffer_{name}")
            for name, dtype in columns.items()}

    def append(self, **values):
        if set(values) != set(self._columns):
            raise ValueError(f"append needs columns {sorted(self._columns)}, got {sorted(values)}")
        for name, value in values.items():
            var = self._columns[name]
            value = tf.reshape(tf.cast(value, var.dtype), [-1])
            var.assign(tf.concat([var, value], 0))

    def read(self):
        """dict `name -> [N]` tensor of everything appended since the last reset."""
        return {name: tf.identity(var) for name, var in self._columns.items()}

    def size(self):
        return tf.shape(next(iter(self._columns.values())))[0]

    def reset(self):
        for var in self._columns.values():
            var.assign(tf.zeros([0], var.dtype))
