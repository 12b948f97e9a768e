"""`prectr build`: an impression log -> sharded TFRecords + vocabularies.

Output directory layout (written to a temporary sibling and renamed into
place, so a reader never sees a half-built dataset):

    dataset.json               schema, config, splits, counts, timings
    train-00000-of-000NN.tfrecord ...
    eval-00000-of-000NN.tfrecord  ...
    vocab/{user_id,item_id,item_category,query}.txt   train split, by count
    rejects.csv                every rejected log row, with file/row/field/why

The split is by time: the requests at the latest `eval_fraction` of the
distinct request times go to `eval`. Histories and
contexts of eval examples still see every earlier event, train or eval —
that is what a model serving at that moment would have seen.
"""

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
import time

import numpy as np
import pandas as pd
import tensorflow as tf
from tqdm.auto import tqdm

from prectr_tf.data.examples import ExampleBuilder, HistoryConfig
from prectr_tf.data.query_normalization import normalize_query
from prectr_tf.data.tfrecord import serialize_columns
from prectr_tf.data.validation import read_log, validate_log

DATASET_FILE = "dataset.json"
VOCAB_FIELDS = ("user_id", "item_id", "item_category", "query")
SPLITS = ("train", "eval")


@dataclasses.dataclass(frozen=True)
class BuildConfig:
    """How `build_dataset` turns a log into examples.

    Args:
        history: which rows count as events (`HistoryConfig`).
        eval_fraction: share of the latest requests held out as `eval`
            (0 disables the split).
        num_shards: TFRecord files per split (more shards, more parallel
            reads; at most one per `chunk_size` examples is useful).
        vocab_min_count: tokens seen fewer times in train are left out of the
            vocabularies (they map to the model's OOV bucket).
        chunk_size: impressions processed per step (bounds memory).
        out_of_order: policy for log rows out of time order
            (`"error"`, `"reject"`, `"sort"`; see `validate_log`).
    """

    history: HistoryConfig = HistoryConfig()
    eval_fraction: float = 0.1
    num_shards: int = 4
    vocab_min_count: int = 1
    chunk_size: int = 100_000
    out_of_order: str = "error"

    def __post_init__(self):
        if not 0.0 <= self.eval_fraction < 1.0:
            raise ValueError(f"eval_fraction must be in [0, 1), got {self.eval_fraction}")
        for name in ("num_shards", "vocab_min_count", "chunk_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


def eval_start_time(distinct_times, eval_fraction):
    """The first timestamp of `eval`: the latest `round(eval_fraction · T)`
    of the T distinct timestamps (at least one) are eval; None (no eval) when
    eval_fraction is 0 or there are no times."""
    if eval_fraction == 0 or len(distinct_times) == 0:
        return None
    times = np.unique(distinct_times)
    return times[-max(1, int(round(len(times) * eval_fraction)))]


def in_eval(timestamps, start):
    """Whether `timestamps` (an array or one time) fall in the eval split that
    starts at `start` (`eval_start_time`; None: no eval)."""
    if start is None:
        return np.zeros(np.shape(timestamps), dtype=bool)
    return np.asarray(timestamps) >= start


def split_by_time(timestamps, eval_fraction):
    """Boolean eval mask of `eval_start_time` (all-False without eval)."""
    return in_eval(timestamps, eval_start_time(timestamps, eval_fraction))


def num_shards_for(num_examples, config):
    """TFRecord files of a split of `num_examples` (at least one, at most one
    per `chunk_size` examples)."""
    return max(1, min(config.num_shards, -(-num_examples // config.chunk_size)))


def shard_file_name(split, shard, num_shards):
    return f"{split}-{shard:05d}-of-{num_shards:05d}.tfrecord"


def build_dataset(log, out_dir, schema, config=BuildConfig(), overwrite=False, progress=True,
                  negatives=None):
    """Build a dataset directory from a log.

    Args:
        log: a log file path, a list of them, or a frame (validated here
            unless it is `validate_log` output already).
        out_dir: the dataset directory to create.
        schema: the `DataSchema` (list lengths, K, item feature width).
        config: a `BuildConfig`.
        overwrite: replace an existing `out_dir`.
        progress: show progress bars.
        negatives: with `schema.unexposed_negatives` and a log without the
            `negative_*` columns, a function of the validated log returning `(log with the negative_* columns,
            stats)`, e.g. `functools.partial(attach_unexposed_negatives,
            candidates=..., items=..., teacher=...)`
            (`prectr_tf.data.unexposed`); its stats go to `dataset.json`.

    Returns:
        the dataset description written to `dataset.json` (a dict).
    """
    out_dir = os.fspath(out_dir)
    if os.path.exists(out_dir) and not overwrite:
        raise FileExistsError(f"{out_dir} exists; pass overwrite=True (--overwrite) to replace it")
    started = time.perf_counter()
    log_schema = schema
    if negatives is not None:
        if not schema.unexposed_negatives:
            raise ValueError("`negatives` needs schema.unexposed_negatives = True")
        # The log is validated without the columns that `negatives` adds.
        log_schema = dataclasses.replace(schema, unexposed_negatives=False)
    if isinstance(log, pd.DataFrame) and "_row" in log.columns:
        frame, report = log, None  # already validated (a reader's output)
    elif isinstance(log, pd.DataFrame):
        # A raw frame (e.g. the simulator's, with nullable labels) gets the
        # same checks and -1 for missing labels as a file would.
        frame, report = validate_log(log, log_schema, "<DataFrame>",
                                     out_of_order=config.out_of_order)
    else:
        frame, report = read_log(log, log_schema, out_of_order=config.out_of_order)
    negative_stats = None
    if negatives is not None:
        frame, negative_stats = negatives(frame)
        frame["negative_relevance"] = frame["negative_relevance"].fillna(-1).astype(np.int64)
    read_seconds = time.perf_counter() - started

    with staged_directory(out_dir) as staging:
        started = time.perf_counter()
        builder = ExampleBuilder(frame, schema, config.history)
        is_eval = split_by_time(frame["timestamp"].to_numpy(), config.eval_fraction)
        splits, history_seconds, write_seconds = {}, 0.0, 0.0
        for split, rows in (("train", np.flatnonzero(~is_eval)), ("eval", np.flatnonzero(is_eval))):
            if split == "eval" and config.eval_fraction == 0:
                continue
            info, h, w = _write_split(builder, rows, split, staging, schema, config, progress)
            splits[split] = info
            history_seconds += h
            write_seconds += w
        vocab_sizes = _write_vocabularies(frame.iloc[np.flatnonzero(~is_eval)], staging,
                                          config.vocab_min_count)
        if report is not None:
            report.write(os.path.join(staging, "rejects.csv"))
        sources = sorted(set(frame["_source"])) if "_source" in frame.columns else []
        seconds = {"read_and_validate": round(read_seconds, 3),
                   "histories": round(history_seconds, 3),
                   "serialize_and_write": round(write_seconds, 3),
                   "total": round(read_seconds + time.perf_counter() - started, 3)}
        description = describe(schema, config, sources, len(frame), report, splits, vocab_sizes,
                               seconds, negative_stats=negative_stats)
        write_description(staging, description)
    return description


def describe(schema, config, sources, num_impressions, report, splits, vocab_sizes, seconds,
             negative_stats=None, runner=None):
    """The dataset description (`dataset.json`) of a build; `runner` names
    the Beam runner of a pipeline build (None: this module's builder)."""
    return {
        "schema": json.loads(schema.to_json()),
        "config": dataclasses.asdict(config),
        "sources": list(sources),
        "num_impressions": int(num_impressions),
        "num_rejected": 0 if report is None else report.count,
        "rejects_by_reason": {} if report is None else report.counts_by_reason(),
        "splits": splits,
        "vocab_sizes": vocab_sizes,
        "unexposed_negatives": negative_stats,
        "runner": runner,
        "seconds": seconds,
    }


def write_description(directory, description):
    with open(os.path.join(directory, DATASET_FILE), "w") as fh:
        json.dump(description, fh, indent=2)


@contextlib.contextmanager
def staged_directory(out_dir):
    """Build into a temporary sibling of `out_dir`, renamed into place when
    the block succeeds and removed when it fails: a reader never sees a
    half-built dataset, and a failed build leaves the old one."""
    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".building-", dir=parent)
    try:
        yield staging
        if os.path.exists(out_dir):
            shutil.rmtree(out_dir)
        os.rename(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _write_split(builder, rows, split, staging, schema, config, progress):
    num_shards = num_shards_for(len(rows), config)
    shard_rows = np.array_split(rows, num_shards)
    files, history_seconds, write_seconds = [], 0.0, 0.0
    bar = tqdm(total=len(rows), desc=f"build {split}", unit="ex", disable=not progress)
    for shard, shard_part in enumerate(shard_rows):
        name = shard_file_name(split, shard, num_shards)
        files.append(name)
        with tf.io.TFRecordWriter(os.path.join(staging, name)) as writer:
            for start in range(0, len(shard_part), config.chunk_size):
                chunk = shard_part[start:start + config.chunk_size]
                t0 = time.perf_counter()
                columns = builder.columns(chunk)
                t1 = time.perf_counter()
                for record in serialize_columns(columns, schema).numpy():
                    writer.write(record)
                write_seconds += time.perf_counter() - t1
                history_seconds += t1 - t0
                bar.update(len(chunk))
    bar.close()
    frame = builder.frame
    timestamps = frame["timestamp"].to_numpy()[rows]
    info = split_info(files, len(rows), (frame["click"].to_numpy()[rows] == 1).sum(),
                      (frame["relevance"].to_numpy()[rows] >= 0).sum(),
                      (frame["item_title"].to_numpy(dtype=object)[rows] != "").sum(),
                      [timestamps.min(), timestamps.max()] if len(rows) else None)
    return info, history_seconds, write_seconds


def split_info(files, num_examples, num_clicks, num_relevance_labelled, num_titled,
               time_range):
    """A split's entry of `dataset.json` (`time_range`: [first, last] or None;
    `num_titled`: examples with a non-empty title, which tells a model whether
    the dataset has text to read)."""
    return {
        "files": list(files),
        "num_examples": int(num_examples),
        "num_clicks": int(num_clicks),
        "num_relevance_labelled": int(num_relevance_labelled),
        "num_titled": int(num_titled),
        "time_range": None if time_range is None else [int(t) for t in time_range],
    }


def vocabulary_values(frame, field):
    """The values of `field` that its vocabulary counts (queries normalised)."""
    values = frame[field].to_numpy(dtype=object)
    if field == "query":
        values = normalize_query(values.astype(str)).numpy().astype(object)
        values = np.array([v.decode("utf-8") for v in values], dtype=object)
    return values


def write_vocabulary(path, counts, min_count):
    """Write the tokens of `counts` (a token -> count Series) seen at least
    `min_count` times, most frequent first, ties by token (deterministic);
    returns how many."""
    counts = counts[counts >= min_count]
    order = np.lexsort((counts.index.to_numpy(dtype=str), -counts.to_numpy()))
    tokens = [t for t in counts.index.to_numpy(dtype=object)[order] if t != ""]
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines(f"{t}\n" for t in tokens)
    return len(tokens)


def _write_vocabularies(train, staging, min_count):
    os.makedirs(os.path.join(staging, "vocab"))
    return {field: write_vocabulary(
                os.path.join(staging, "vocab", f"{field}.txt"),
                pd.Series(vocabulary_values(train, field)).value_counts(sort=False), min_count)
            for field in VOCAB_FIELDS}


def read_dataset_info(data_dir):
    """The `dataset.json` of a built dataset, with a clear error if absent."""
    path = os.path.join(os.fspath(data_dir), DATASET_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: is {data_dir} a dataset built by "
                                "`prectr build`?")
    with open(path) as fh:
        return json.load(fh)
