"""`prectr build --runner`: the log builder as an Apache Beam pipeline (DESIGN §9).

It writes the same dataset directory as `build_dataset` — the same shard
files, byte for byte, the same vocabularies, `rejects.csv` and
`dataset.json` (but for `runner` and `seconds`) — so that a log too big for
one machine is built on Dataflow, Flink or Spark and trained on unchanged.

The pipeline, each step keyed so that it runs in parallel:

    files  --validate_log per file-->  rows keyed (file, row)   + rejects
    rows   --GroupByKey impression_id-->  first of each id     + rejects   (several files)
    rows   --distinct timestamps, global-->  eval start time           (side input)
    rows   --GroupByKey (user | query | file), one grouping for the three-->
             a user's rows:  row columns, user history, activity
             a query's rows: own-user-free query context
             a file's rows:  rank within its split                     (for the shards)
    parts  --GroupByKey (file, row)--> one example --> batches serialised
        --> GroupByKey shard --> the shard's records in log order, written
    train rows --> counts per (field, value) --> vocabularies

The history of an impression needs only its user's events and its context
only its query's, so `ExampleBuilder` runs unchanged on each group; events
inside a group keep log order, as in the single-machine build, which makes
ties of equal timestamps come out the same. Unexposed negatives need the
whole candidate log of a request and are built by `build_dataset` only.

Requires the `beam` extra (`pip install prectr-tf[beam]`).
"""

import collections
import json
import os
import pickle
import shutil
import time
import typing
import zlib

import apache_beam as beam
import numpy as np
import pandas as pd
from apache_beam.options.pipeline_options import PipelineOptions

from prectr_tf.data.build import (VOCAB_FIELDS, BuildConfig, describe, eval_start_time,
                                  in_eval, num_shards_for, shard_file_name, split_info,
                                  staged_directory, vocabulary_values, write_description,
                                  write_vocabulary)
from prectr_tf.data.examples import ExampleBuilder
from prectr_tf.data.query_normalization import query_ids_for
from prectr_tf.data.tfrecord import serialize_columns
from prectr_tf.engines import BEAM_RUNNERS
from prectr_tf.data.validation import (RejectReport, duplicate_reason, read_log_file,
                                       validate_log)

RUNNERS = BEAM_RUNNERS
_PART_TYPE = typing.Tuple[typing.Tuple[int, int], bytes]
_ROW_TYPE = typing.Tuple[typing.Any, bytes]
_PARTS = "_beam_parts"  # small results handed from the pipeline to the driver
_VOCAB_VALUE = "_vocabulary_value_"


def build_dataset_beam(logs, out_dir, schema, config=BuildConfig(), overwrite=False,
                       runner="DirectRunner", num_workers=None, pipeline_args=()):
    """Build a dataset directory from log files with an Apache Beam pipeline.

    Args:
        logs: a log file path or a list of them (CSV or Parquet).
        out_dir: the dataset directory to create; every worker must see it
            (local runs, or a shared filesystem on a cluster).
        schema: the `DataSchema` (without `unexposed_negatives`).
        config: a `BuildConfig`.
        overwrite: replace an existing `out_dir`.
        runner: one of `RUNNERS` (default `"DirectRunner"`).
        num_workers: DirectRunner worker processes (default: one per core);
            1 runs in-process.
        pipeline_args: further Beam pipeline options, e.g.
            `["--flink_master=localhost:8081"]`.

    Returns:
        the dataset description written to `dataset.json` (a dict).

    Example:
    >>> description = build_dataset_beam("log.parquet", "dataset", DataSchema(),
    ...                                  num_workers=2)  # doctest: +SKIP
    """
    if runner not in RUNNERS:
        raise ValueError(f"runner must be one of {RUNNERS}, got {runner!r}")
    if schema.unexposed_negatives:
        raise ValueError("unexposed negatives are built by build_dataset only (they need every "
                         "request's whole candidate set): build without --runner")
    paths = ([os.fspath(logs)] if isinstance(logs, (str, os.PathLike))
             else list(map(os.fspath, logs)))
    out_dir = os.fspath(out_dir)
    if os.path.exists(out_dir) and not overwrite:
        raise FileExistsError(f"{out_dir} exists; pass overwrite=True (--overwrite) to replace it")
    options = {"runner": runner}
    if runner == "DirectRunner":
        workers = num_workers or os.cpu_count() or 1
        options.update(direct_num_workers=workers,
                       direct_running_mode="in_memory" if workers == 1 else "multi_processing")
    started = time.perf_counter()
    with staged_directory(out_dir) as staging:
        parts = os.path.join(staging, _PARTS)
        os.makedirs(parts)
        with beam.Pipeline(options=PipelineOptions(list(pipeline_args), **options)) as pipeline:
            _build(pipeline, paths, schema, config, staging)
        description = _describe(parts, staging, schema, config, runner,
                                time.perf_counter() - started)
        write_description(staging, description)
    return description


def _build(pipeline, paths, schema, config, staging):
    parts = os.path.join(staging, _PARTS)
    read = (pipeline | "files" >> beam.Create(list(enumerate(paths)))
            | "validate" >> beam.ParDo(_ValidateFile(schema, config.out_of_order))
            .with_outputs("rejects", main="rows"))
    rows, rejects = read.rows, [read.rejects]
    if len(paths) > 1:
        first = (rows | "by id" >> beam.Map(lambda kv: (kv[1]["impression_id"], kv))
                 | "group ids" >> beam.GroupByKey()
                 | "first of id" >> beam.ParDo(_KeepFirst()).with_outputs("rejects", main="rows"))
        rows = first.rows
        rejects.append(first.rejects)

    eval_start = beam.pvalue.AsSingleton(
        rows | "times" >> beam.Map(lambda kv: kv[1]["timestamp"]) | beam.Distinct()
        | "all times" >> beam.combiners.ToList()
        | "eval start" >> beam.Map(lambda times: eval_start_time(np.asarray(times, np.int64),
                                                                 config.eval_fraction)))
    # A row's three parts come out of one grouping and meet in one
    # GroupByKey: a CoGroupByKey flattens its inputs, and on the
    # multi-process DirectRunner the stage that read that Flatten lost
    # elements of 1,000,000-impression builds (BENCHMARKS.md, the Beam build).
    grouped = (rows | "by grouping" >> beam.FlatMap(_grouping_keys).with_output_types(_ROW_TYPE)
               | "group" >> beam.GroupByKey()
               | "parts" >> beam.ParDo(_GroupParts(schema, config.history), eval_start)
               .with_output_types(_PART_TYPE).with_outputs("counts", main="parts"))
    layout = beam.pvalue.AsSingleton(
        grouped.counts | "all counts" >> beam.combiners.ToList()
        | "shard layout" >> beam.Map(_shard_layout))
    examples = (grouped.parts | "join" >> beam.GroupByKey()
                | "assemble" >> beam.Map(_assemble, layout, config))
    (examples | "batch" >> beam.BatchElements(min_batch_size=256, max_batch_size=4096)
     | "serialise" >> beam.FlatMap(_serialise, schema)
     | "group shards" >> beam.GroupByKey()
     | "write shards" >> beam.Map(_write_shard, staging))

    stats = (examples | "split stats" >> beam.Map(lambda e: (e[0][0], e[1][1]))
             | beam.CombinePerKey(_SplitStats()) | "all splits" >> beam.combiners.ToList())
    _save(stats, parts, "splits")
    train = rows | "train rows" >> beam.Filter(
        lambda kv, start: not in_eval(kv[1]["timestamp"], start), eval_start)
    vocab = (train | "vocabulary values" >> beam.FlatMap(
                 lambda kv: [((f, kv[1][_VOCAB_VALUE + f]), 1) for f in VOCAB_FIELDS])
             | "count values" >> beam.CombinePerKey(sum)
             | "by field" >> beam.Map(lambda kv: (kv[0][0], (kv[0][1], kv[1])))
             | "group fields" >> beam.GroupByKey()
             | "write vocabularies" >> beam.Map(_write_vocabulary, staging, config.vocab_min_count))
    _save(vocab | "all vocab sizes" >> beam.combiners.ToList(), parts, "vocab_sizes")
    _save(rejects | "all rejects" >> beam.Flatten() | "list rejects" >> beam.combiners.ToList(),
          parts, "rejects")
    _save(rows | "sources" >> beam.Map(lambda kv: kv[1]["_source"]) | "distinct sources"
          >> beam.Distinct() | "list sources" >> beam.combiners.ToList(), parts, "sources")
    _save(rows | "count rows" >> beam.combiners.Count.Globally(), parts, "num_impressions")


class _ValidateFile(beam.DoFn):
    """One log file -> its accepted rows keyed (file index, row) and its
    rejects keyed so that they sort as `read_log` reports them."""

    def __init__(self, schema, out_of_order):
        self.schema, self.out_of_order = schema, out_of_order

    def process(self, element):
        index, path = element
        frame, report = validate_log(read_log_file(path), self.schema, path,
                                     out_of_order=self.out_of_order)
        for j, rejection in enumerate(report.rejections):
            yield beam.pvalue.TaggedOutput("rejects", ((0, index, j), rejection))
        frame["query_id"] = query_ids_for(frame["query"].to_numpy(dtype=object))
        for field in VOCAB_FIELDS:
            frame[_VOCAB_VALUE + field] = vocabulary_values(frame, field)
        for i, row in enumerate(frame.to_dict("records")):
            yield (index, i), row


class _KeepFirst(beam.DoFn):
    """Rows of one impression id -> the first in log order; the others are
    rejected as `read_log` rejects them."""

    def process(self, element):
        _, keyed = element
        keyed = sorted(keyed, key=lambda kv: kv[0])
        yield keyed[0]
        first = keyed[0][1]
        for key, row in keyed[1:]:
            report = RejectReport()
            report.add(row["_source"], row["_row"], "impression_id",
                       duplicate_reason(first["_source"], first["_row"]), row["impression_id"])
            yield beam.pvalue.TaggedOutput("rejects", ((1, *key), report.rejections[0]))


def _pack(value):
    """A join part as compact bytes. Beam's in-memory runner holds a
    grouping's values as Python objects, and the join is the largest:
    zlib (level 1) takes a row's user and query parts from 3.8 to 1.2 KB,
    and the pipeline's own peak memory on a 100,000-impression log from
    2.4 to 1.4 GB (`benchmarks/build_throughput.py`); without it the
    1,000,000-impression build was killed for memory at 21.7 GB."""
    return zlib.compress(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), 1)


def _unpack(data):
    return pickle.loads(zlib.decompress(data))


def _grouping_keys(keyed_row):
    """`((file, row), row)` -> the row under each grouping that builds a part
    of its example: its user's and its query's (the row pickled: grouped as
    bytes, a row takes a fifth of its dict's memory, 0.43 against 2.2 KB; see
    `_pack`) and its file's (only its position and time)."""
    (index, _), row = keyed_row
    pickled = pickle.dumps(keyed_row, protocol=pickle.HIGHEST_PROTOCOL)
    yield ("user", row["user_id"]), pickled
    yield ("query", row["query_id"]), pickled
    yield ("file", index), pickle.dumps((keyed_row[0], row["timestamp"]),
                                        protocol=pickle.HIGHEST_PROTOCOL)


class _GroupParts(beam.DoFn):
    """The rows of one grouping, in log order -> each row's part, keyed
    `(file, row)` and packed with its kind (`_pack`): a user's rows give
    their own columns and user histories (`"user"`), a query's their
    own-user-free contexts (`"query"`), a file's each row's split and rank
    among the file's rows of that split (`"rank"`; the file's per-split
    counts go to `counts`)."""

    def __init__(self, schema, history):
        self.schema, self.history = schema, history

    def process(self, element, eval_start):
        (kind, _), encoded = element
        keyed = sorted(map(pickle.loads, encoded), key=lambda kv: kv[0])
        if kind == "file":
            yield from self._ranks(keyed, eval_start)
            return
        builder = ExampleBuilder(pd.DataFrame.from_records([row for _, row in keyed]),
                                 self.schema, self.history)
        rows = np.arange(len(keyed))
        if kind == "user":
            columns = builder.columns(rows, lists=("user_history",))
        else:
            columns = builder.list_columns(rows, lists=("query_context",))
        for j, (key, _) in enumerate(keyed):
            yield _part(key, kind, {name: values[j:j + 1] for name, values in columns.items()})

    @staticmethod
    def _ranks(keyed, eval_start):
        (index, _), _ = keyed[0]
        seen = collections.Counter()
        for key, timestamp in keyed:
            split = "eval" if in_eval(timestamp, eval_start) else "train"
            yield _part(key, "rank", (split, seen[split]))
            seen[split] += 1
        for split, count in seen.items():
            yield beam.pvalue.TaggedOutput("counts", (index, split, count))


def _shard_layout(counts):
    """Per-file split counts -> ({(file, split): rows of that split in
    earlier files}, {split: rows}), computed once for every row's rank."""
    offsets, totals = {}, collections.Counter()
    for index, split, count in sorted(counts):
        offsets[index, split] = totals[split]
        totals[split] += count
    return offsets, dict(totals)


def _part(key, kind, part):
    """A row's part as the join's input: `((file, row), packed (kind, part))`,
    one declared type for every kind (untyped parts once made the multi-process
    DirectRunner lose whole inputs of a join)."""
    index, row = key
    return (int(index), int(row)), _pack((kind, part))


def _assemble(element, layout, config):
    """Joined parts of one row (`_part`) -> ((split, shard, num_shards),
    (rank, columns))."""
    (index, row), encoded = element
    parts = collections.defaultdict(list)
    for kind, part in map(_unpack, encoded):
        parts[kind].append(part)
    missing = [name for name in ("user", "query", "rank") if len(parts[name]) != 1]
    if missing:
        # Every row has exactly one part of each; a runner that dropped one
        # must stop the build, not write a dataset without the row. Seen
        # with DirectRunner multi_processing at 2 workers (BENCHMARKS.md).
        raise RuntimeError(f"row {row} of log file {index}: the join got "
                           f"{[(name, len(parts[name])) for name in missing]} parts; the "
                           f"runner lost data (rerun, or with --num-workers 1)")
    (split, local_rank), = parts["rank"]
    columns = {**parts["user"][0], **parts["query"][0]}
    offsets, totals = layout
    rank, total = offsets[index, split] + local_rank, totals[split]
    num_shards = num_shards_for(total, config)
    # The shard `np.array_split(rows, num_shards)` puts this rank in.
    size, extra = divmod(total, num_shards)
    shard = (rank // (size + 1) if rank < extra * (size + 1)
             else extra + (rank - extra * (size + 1)) // size)
    return (split, shard, num_shards), (rank, columns)


def _serialise(batch, schema):
    columns = {name: np.concatenate([c[name] for _, (_, c) in batch])
               for name in batch[0][1][1]}
    records = serialize_columns(columns, schema).numpy()
    for (shard, (rank, _)), record in zip(batch, records):
        yield shard, (rank, record)


def _write_shard(element, staging):
    import tensorflow as tf  # noqa: PLC0415

    (split, shard, num_shards), records = element
    with tf.io.TFRecordWriter(os.path.join(staging, shard_file_name(split, shard, num_shards))) \
            as writer:
        for _, record in sorted(records, key=lambda r: r[0]):
            writer.write(record)


class _SplitStats(beam.CombineFn):
    """Rows of a split -> [rows, clicks, labelled, titled, first time, last
    time] for `split_info`."""

    def create_accumulator(self):
        return [0, 0, 0, 0, None, None]

    def add_input(self, acc, columns):
        click, relevance, ts = (int(columns[n][0]) for n in ("click", "relevance", "timestamp"))
        titled = len(columns["item_title"][0]) > 0
        return [acc[0] + 1, acc[1] + (click == 1), acc[2] + (relevance >= 0), acc[3] + titled,
                ts if acc[4] is None else min(acc[4], ts),
                ts if acc[5] is None else max(acc[5], ts)]

    def merge_accumulators(self, accs):
        accs = list(accs)
        bounds = [a for a in accs if a[4] is not None]
        return [*(sum(a[i] for a in accs) for i in range(4)),
                min((a[4] for a in bounds), default=None),
                max((a[5] for a in bounds), default=None)]

    def extract_output(self, acc):
        return acc


def _write_vocabulary(element, staging, min_count):
    field, counts = element
    counts = dict(counts)
    os.makedirs(os.path.join(staging, "vocab"), exist_ok=True)
    series = pd.Series(list(counts.values()), index=pd.Index(list(counts), dtype=object))
    return field, write_vocabulary(os.path.join(staging, "vocab", f"{field}.txt"), series,
                                   min_count)


def _save(pcoll, parts, name):
    def write(value):
        with open(os.path.join(parts, name + ".pkl"), "wb") as fh:
            pickle.dump(value, fh)
    pcoll | f"save {name}" >> beam.Map(write)


def _describe(parts, staging, schema, config, runner, seconds):
    """Assemble `dataset.json` from the pipeline's small results, as
    `build_dataset` writes it; write the rejects and the empty pieces a
    pipeline makes no element for (an empty split's file, an empty vocabulary)."""
    def load(name, default):
        path = os.path.join(parts, name + ".pkl")
        if not os.path.exists(path):
            return default
        with open(path, "rb") as fh:
            return pickle.load(fh)

    stats = dict(load("splits", []))
    num_impressions = load("num_impressions", 0)
    written = sum(stat[0] for stat in stats.values())
    if written != num_impressions:
        # The join's guard sees a row that lost some of its parts; a row
        # that lost all of them (or a whole group) shows only in the count.
        raise RuntimeError(f"the pipeline assembled {written:,} examples from {num_impressions:,} "
                           f"valid rows; the runner lost data (rerun, or with --num-workers 1)")
    report = RejectReport()
    report.rejections = [r for _, r in sorted(load("rejects", []), key=lambda kv: kv[0])]
    report.write(os.path.join(staging, "rejects.csv"))
    splits = {}
    for split in ("train", "eval") if config.eval_fraction > 0 else ("train",):
        n, clicks, labelled, titled, first, last = stats.get(split, [0, 0, 0, 0, None, None])
        num_shards = num_shards_for(n, config)
        files = [shard_file_name(split, s, num_shards) for s in range(num_shards)]
        for name in files:
            if not os.path.exists(os.path.join(staging, name)):
                open(os.path.join(staging, name), "wb").close()
        splits[split] = split_info(files, n, clicks, labelled, titled,
                                   None if first is None else [first, last])
    os.makedirs(os.path.join(staging, "vocab"), exist_ok=True)
    vocab_sizes = dict(load("vocab_sizes", []))
    for field in VOCAB_FIELDS:
        if field not in vocab_sizes:  # no train row: the pipeline made no element for it
            vocab_sizes[field] = write_vocabulary(os.path.join(staging, "vocab", f"{field}.txt"),
                                                  pd.Series([], dtype=np.int64), 1)
    vocab_sizes = {field: vocab_sizes[field] for field in VOCAB_FIELDS}
    description = describe(schema, config, sorted(load("sources", [])),
                           num_impressions, report, splits, vocab_sizes,
                           {"total": round(seconds, 3)}, runner=runner)
    shutil.rmtree(parts)
    json.dumps(description)  # fails here, not half-way through the file, if not JSON
    return description
