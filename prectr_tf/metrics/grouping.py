"""Grouping flat impressions by an id: the one helper behind GAUC and the
per-query ranking metrics.

Ids may be strings (hashed with `tf.strings.to_hash_bucket_fast` into
[0, 2^63 - 1); two distinct ids collide with probability ~1e-19 per pair) or
integers. Uses `tf.unique`, so these functions run eagerly or in
`tf.function`, not under XLA.
"""

import tensorflow as tf


def ids_to_int64(ids):
    """`[B]` int64 keys of string or integer ids."""
    ids = tf.reshape(tf.convert_to_tensor(ids), [-1])
    if ids.dtype == tf.string:
        return tf.strings.to_hash_bucket_fast(ids, 2**63 - 1)
    return tf.cast(ids, tf.int64)


def group_index(ids):
    """`(index [B] int32 in [0, G), G)`: the group of each row, in order of
    first appearance."""
    unique, index = tf.unique(ids_to_int64(ids), out_idx=tf.int32)
    return index, tf.size(unique)


def pad_lists(list_ids, columns, pad_values=None):
    """Groups a flat batch into padded lists `[num_lists, max_list]`.

    Rows keep their batch order inside a list.

    Args:
        list_ids: `[B]` list (request / query) id of each row.
        columns: list of `[B]` tensors to regroup.
        pad_values: one pad value per column (default 0).

    Returns:
        `(padded, mask)`: a list of `[G, L]` tensors and a `[G, L]` bool mask,
        L the longest list.

    Example:
    >>> (scores,), mask = pad_lists(["a", "b", "a"], [[1.0, 2.0, 3.0]])
    >>> scores.numpy().tolist(), mask.numpy().tolist()
    ([[1.0, 3.0], [2.0, 0.0]], [[True, True], [True, False]])
    """
    index, num_lists = group_index(list_ids)
    pad_values = pad_values or [0] * len(columns)
    order = tf.argsort(index, stable=True)
    sorted_index = tf.gather(index, order)
    counts = tf.math.unsorted_segment_sum(tf.ones_like(index), index, num_lists)
    starts = tf.cumsum(counts, exclusive=True)
    position = tf.range(tf.size(index)) - tf.gather(starts, sorted_index)
    coords = tf.stack([sorted_index, position], axis=1)
    shape = tf.stack([num_lists, tf.reduce_max(tf.concat([counts, [0]], 0))])
    padded = []
    for column, pad in zip(columns, pad_values):
        column = tf.reshape(tf.convert_to_tensor(column), [-1])
        base = tf.fill(shape, tf.cast(pad, column.dtype))
        padded.append(tf.tensor_scatter_nd_update(base, coords, tf.gather(column, order)))
    mask = tf.tensor_scatter_nd_update(tf.zeros(shape, tf.bool), coords,
                                       tf.ones_like(index, dtype=tf.bool))
    return padded, mask
