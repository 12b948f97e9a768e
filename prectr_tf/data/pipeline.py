"""The `tf.data` input pipeline over a built dataset.

Yields Keras-ready `(features, labels)` batches: features a dict of dense
tensors named as in `DataSchema.example_features()` (history lists padded to
L with explicit `<list>_length`), labels `{"click", "relevance"}` with -1
where missing. Use it directly with `model.fit(make_dataset(...))`.
"""

import os

import tensorflow as tf

from prectr_tf.data.build import read_dataset_info
from prectr_tf.data.schema import DataSchema
from prectr_tf.data.tfrecord import parse_batch


def dataset_schema(data_dir):
    """The `DataSchema` a dataset was built with."""
    return DataSchema(**read_dataset_info(data_dir)["schema"])


# How a multi-worker strategy splits a dataset (`make_dataset(shard_by=)`);
# TF's own AUTO fails rather than falling back when there are fewer files
# than workers.
SHARD_POLICIES = {"data": tf.data.experimental.AutoShardPolicy.DATA,
                  "file": tf.data.experimental.AutoShardPolicy.FILE}

# Requests are held out by a hash of their id into this many buckets.
HOLDOUT_BUCKETS = 10_000


def held_out_request(request_id, fraction):
    """bool: whether a request (string tensor) falls in the held-out
    `fraction` of requests — a fixed pseudo-random slice, the same in every
    run and for every impression of the request."""
    bucket = tf.strings.to_hash_bucket_fast(request_id, HOLDOUT_BUCKETS)
    return bucket < int(round(fraction * HOLDOUT_BUCKETS))


# Records per vectorised request-id parse of the holdout filter.
_FILTER_CHUNK = 1024


def _keep_requests(records, fraction, holdout):
    """The serialized `records` whose request is (`holdout=True`) or is not
    held out, in their order.

    Parses the request ids of a chunk of records at once and unbatches what
    it keeps: the same records as a per-record filter, but a per-record
    `parse_single_example` cost more than the whole batched parse of an epoch.
    """
    spec = {"request_id": tf.io.FixedLenFeature([], tf.string)}

    def keep(chunk):
        ids = tf.io.parse_example(chunk, spec)["request_id"]
        return tf.boolean_mask(chunk, tf.equal(held_out_request(ids, fraction), holdout))

    return records.batch(_FILTER_CHUNK).map(keep, num_parallel_calls=tf.data.AUTOTUNE,
                                            deterministic=True).unbatch()


def make_dataset(data_dir, split="train", batch_size=256, shuffle=None, shuffle_buffer=10_000,
                 repeat=False, drop_remainder=False, seed=None, holdout_fraction=0.0,
                 holdout=False, shard_by="data", cache=False):
    """Batches of `(features, labels)` from a dataset built by `prectr build`.

    Args:
        data_dir: the dataset directory.
        split: `"train"` or `"eval"`.
        batch_size: examples per batch.
        shuffle: shuffle files and examples (default: True for train).
        shuffle_buffer: examples in the shuffle buffer.
        repeat: repeat forever (for `steps_per_epoch`-style training).
        drop_remainder: drop a last partial batch (fixed batch shapes).
        seed: shuffle seed, for reproducible order.
        holdout_fraction: float in [0, 1) (default 0.0). > 0 splits the
            split's requests in two by `held_out_request`: a validation slice
            for early stopping that shares no request with the rest.
        holdout: bool (default False): with `holdout_fraction`, yield the
            held-out requests (True) or the others (False).
        shard_by: `"data"` (default) or `"file"`: how a multi-worker
            `tf.distribute` strategy splits the batches between workers.
            `"data"`: every worker reads every file and keeps every
            worker-th batch (any number of files); `"file"`: each worker
            reads whole files of its own (less I/O; at least one file per
            worker).
        cache: bool (default False): keep the parsed batches in memory after
            the first pass, for a dataset read every epoch in the same order
            (a validation slice); needs `shuffle=False`.

    Returns:
        a `tf.data.Dataset`.

    Example:
    >>> ds = make_dataset(data_dir, "train", batch_size=512)
    >>> features, labels = next(iter(ds))
    >>> sorted(labels), features["user_history_item_id"].shape[1]   # L_u = 5
    (['click', 'relevance'], 5)
    """
    info = read_dataset_info(data_dir)
    if split not in info["splits"]:
        raise ValueError(f"split {split!r} not in {data_dir}; it has {sorted(info['splits'])}")
    schema = DataSchema(**info["schema"])
    files = [os.path.join(os.fspath(data_dir), f) for f in info["splits"][split]["files"]]
    shuffle = split == "train" if shuffle is None else shuffle
    if cache and shuffle:
        raise ValueError("cache=True needs shuffle=False: the cache would replay the first "
                         "epoch's order in every epoch")
    ds = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        ds = ds.shuffle(len(files), seed=seed)
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=min(len(files), 4),
                       num_parallel_calls=tf.data.AUTOTUNE, deterministic=seed is not None
                       or not shuffle)
    if holdout_fraction:
        if not 0.0 < holdout_fraction < 1.0:
            raise ValueError(f"holdout_fraction must be in [0, 1), got {holdout_fraction}")
        ds = _keep_requests(ds, holdout_fraction, holdout)
    if shuffle:
        ds = ds.shuffle(shuffle_buffer, seed=seed)
    if repeat:
        ds = ds.repeat()
    # Batch before parsing: one vectorised parse per batch is much cheaper.
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    ds = ds.map(lambda records: parse_batch(records, schema),
                num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        ds = ds.cache()
    if shard_by not in SHARD_POLICIES:
        raise ValueError(f"shard_by must be one of {sorted(SHARD_POLICIES)}, got {shard_by!r}")
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = SHARD_POLICIES[shard_by]
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def read_split_columns(data_dir, split, names, batch_size=4096):
    """Whole columns of a split as numpy, in file order (strings decoded).

    Args:
        data_dir: the dataset directory.
        split: `"train"` or `"eval"`.
        names: feature names (`query`, `item_title`, ...) and/or the labels
            `click`, `relevance` (-1 where missing).
        batch_size: examples per read.

    Returns:
        `{name: np.ndarray [N, ...]}`; string features as `str` objects.
    """
    import numpy as np  # noqa: PLC0415

    parts = {name: [] for name in names}
    for features, labels in make_dataset(data_dir, split, batch_size=batch_size, shuffle=False):
        for name in names:
            parts[name].append((labels if name in labels else features)[name].numpy())
    out = {}
    for name, values in parts.items():
        column = np.concatenate(values) if values else np.zeros(0)
        if column.dtype == object:
            column = np.array([v.decode("utf-8") for v in column], dtype=object)
        out[name] = column
    return out
