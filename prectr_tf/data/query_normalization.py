"""Query normalisation and `query_id`, as TensorFlow ops.

They are TF ops, not Python string methods, so that the builder (offline, over
a log) and the exported serving graph (online, over one request) compute the
same normalised text and the same id from the same raw query.
"""

import numpy as np
import pandas as pd
import tensorflow as tf

# 2**63 - 1 buckets: a 63-bit FarmHash fingerprint, non-negative as an int64.
_NUM_BUCKETS = np.iinfo(np.int64).max


def normalize_query(queries):
    """Unicode lower-case, whitespace runs collapsed to one space, stripped.

    Args:
        queries: string tensor (any shape) or array-like of str.

    Returns:
        string tensor of the same shape.

    Example:
    >>> normalize_query(["  Cordless  DRILL\\t"]).numpy().tolist()
    [b'cordless drill']
    """
    text = tf.strings.lower(tf.convert_to_tensor(queries, tf.string), encoding="utf-8")
    text = tf.strings.regex_replace(text, r"\s+", " ")
    return tf.strings.strip(text)


def query_id(queries):
    """int64 id of each query: a fingerprint of its normalised text.

    Args:
        queries: string tensor or array-like of raw query text.

    Returns:
        int64 tensor of the same shape; equal iff the normalised texts are
        equal (up to 63-bit hash collisions).

    Example:
    >>> a, b = query_id(["Drill", " drill "]).numpy()
    >>> bool(a == b)
    True
    """
    return tf.strings.to_hash_bucket_fast(normalize_query(queries), _NUM_BUCKETS)


def query_ids_for(raw_queries):
    """`query_id` over a (large) numpy array of Python strings, hashing each
    distinct query once. Returns an int64 numpy array."""
    codes, uniques = pd.factorize(np.asarray(raw_queries, dtype=object))
    return query_id(np.asarray(uniques, dtype=object).astype(str)).numpy()[codes]
