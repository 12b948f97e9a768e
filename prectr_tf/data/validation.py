"""Reading and checking impression logs against the contract.

Structural problems (a missing file or column, an unreadable file, timestamps
out of order under the default policy) raise `DataError`, naming the file and,
where there is one, the row and field. Problems confined to one row (a value of
the wrong type, a label out of range, an empty query or id, invalid UTF-8, a
duplicate impression id, a request whose rows disagree) reject that row: it is
recorded in a `RejectReport` (file, row, field, reason, value), written to a
rejects file and counted in the summary — never silently dropped. Pass
`on_bad_row="raise"` to stop at the first one instead.

Rows are numbered from 1 over the data records of their file (a CSV's header
is not a row), so `row 3` is the third record.
"""

import collections
import csv
import dataclasses
import os
import re

import numpy as np
import pandas as pd

from prectr_tf.data.schema import LABELS, STRING

REJECTS_COLUMNS = ("source", "row", "field", "reason", "value")
OUT_OF_ORDER_POLICIES = ("error", "reject", "sort")
_SURROGATE = re.compile("[\udc80-\udcff]")
FEATURE_SEPARATOR = ";"  # item_features in a CSV cell: "0.5;12.0"


class DataError(ValueError):
    """Bad input that stops a read; names file, row and field where known."""

    def __init__(self, message, source=None, row=None, field=None):
        self.source, self.row, self.field = source, row, field
        where = ", ".join(
            part for part in (
                f"file {source}" if source is not None else None,
                f"row {row}" if row is not None else None,
                f"field '{field}'" if field is not None else None,
            ) if part)
        super().__init__(f"{where}: {message}" if where else message)


@dataclasses.dataclass
class Rejection:
    source: str
    row: int
    field: str
    reason: str
    value: str


class RejectReport:
    """The rows a reader rejected, with why.

    Example:
    >>> report = RejectReport()
    >>> report.add("log.csv", 3, "relevance", "out of range [0, 3]", "7")
    >>> report.count, report.counts_by_reason()
    (1, {'relevance: out of range [0, 3]': 1})
    """

    def __init__(self):
        self.rejections = []

    def add(self, source, row, field, reason, value=""):
        self.rejections.append(Rejection(str(source), int(row), field, reason, _printable(value)))

    def extend(self, other):
        self.rejections.extend(other.rejections)

    @property
    def count(self):
        return len(self.rejections)

    def counts_by_reason(self):
        return dict(collections.Counter(f"{r.field}: {r.reason}" for r in self.rejections))

    def write(self, path):
        """Write the rejections as CSV (header `REJECTS_COLUMNS`)."""
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(REJECTS_COLUMNS)
            for r in self.rejections:
                writer.writerow([getattr(r, c) for c in REJECTS_COLUMNS])

    def summary(self):
        if not self.rejections:
            return "no rows rejected"
        lines = [f"{self.count} rows rejected:"]
        lines += [f"  {n:>8}  {reason}" for reason, n in sorted(self.counts_by_reason().items())]
        return "\n".join(lines)


def _printable(value):
    text = str(value)
    # Surrogate escapes stand for undecodable bytes; show them as \x.. escapes.
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def read_log_file(path):
    """Read one raw log file (`.csv`, `.csv.gz`, `.parquet`) without checking it.

    String cells keep undecodable bytes as surrogate escapes so that
    `validate_log` can reject exactly those rows.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError("file not found", source=path)
    try:
        if path.endswith(".parquet"):
            return pd.read_parquet(path)
        if path.endswith((".csv", ".csv.gz")):
            return pd.read_csv(path, dtype=object, keep_default_na=False,
                               encoding="utf-8", encoding_errors="surrogateescape")
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise DataError(f"cannot read: {err}", source=path) from err
    raise DataError("unsupported format (expected .csv, .csv.gz or .parquet)", source=path)


def read_log(paths, schema, on_bad_row="reject", out_of_order="error"):
    """Read and validate one or more log files into one clean frame.

    Args:
        paths: a path or a list of paths (CSV or Parquet).
        schema: the `DataSchema`.
        on_bad_row: `"reject"` (record and skip) or `"raise"`.
        out_of_order: see `validate_log`.

    Returns:
        `(frame, report)`: typed rows in the contract, and the `RejectReport`.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    frames, report = [], RejectReport()
    for path in paths:
        frame, file_report = validate_log(read_log_file(path), schema, os.fspath(path),
                                          on_bad_row=on_bad_row, out_of_order=out_of_order)
        frames.append(frame)
        report.extend(file_report)
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if len(frames) > 1:
        frame, dup_report = _reject_duplicates(frame, on_bad_row)
        report.extend(dup_report)
    return frame, report


def validate_log(frame, schema, source, rows=None, on_bad_row="reject", out_of_order="error"):
    """Check a raw frame against the contract and convert it to typed columns.

    Args:
        frame: raw rows (strings or typed), columns named as in the contract.
        schema: the `DataSchema`.
        source: the file name to report.
        rows: 1-based row numbers in `source` (default 1..n).
        on_bad_row: `"reject"` or `"raise"`.
        out_of_order: a row whose timestamp is below an earlier row's is an
            `"error"` (default: logs are appended in time order, so this means
            corruption or a wrong sort), a rejected row (`"reject"`), or
            accepted and the frame sorted stably by timestamp (`"sort"`).

    Returns:
        `(frame, report)`: the accepted rows with dtypes object (strings),
        int64 (`position`, `timestamp`), int64 labels with `MISSING_LABEL`
        for missing, and `item_features` as float32 arrays; the rejections.
        The frame keeps the source and 1-based row of each record in
        `_source` and `_row` so later stages can name them.
    """
    if on_bad_row not in ("reject", "raise"):
        raise ValueError(f"on_bad_row must be 'reject' or 'raise', got {on_bad_row!r}")
    if out_of_order not in OUT_OF_ORDER_POLICIES:
        raise ValueError(f"out_of_order must be one of {OUT_OF_ORDER_POLICIES}, got {out_of_order!r}")
    missing = [c for c in schema.required_log_columns() if c not in frame.columns]
    if missing:
        raise DataError(f"missing column(s) {missing}; the log contract needs "
                        f"{list(schema.required_log_columns())}", source=source,
                        field=missing[0])
    n = len(frame)
    rows = np.arange(1, n + 1) if rows is None else np.asarray(rows, dtype=np.int64)
    bad = np.zeros(n, dtype=bool)
    report = RejectReport()

    def reject(mask, field, reason, values):
        new = mask & ~bad
        if not new.any():
            return
        idx = np.flatnonzero(new)
        if on_bad_row == "raise":
            i = idx[0]
            raise DataError(f"{reason} (value {_printable(values[i])!r})",
                            source=source, row=int(rows[i]), field=field)
        for i in idx:
            report.add(source, rows[i], field, reason, values[i])
        bad[idx] = True

    out = {}
    for field in schema.log_fields():
        if field.name not in frame.columns:  # optional column absent
            continue
        raw = frame[field.name].reset_index(drop=True)
        if field.dtype == STRING:
            # object dtype keeps rejected cells (undecodable bytes) representable.
            out[field.name] = pd.Series(_check_strings(raw, field, reject), dtype=object)
        elif field.vector:
            out[field.name] = pd.Series(
                _check_vectors(raw, field, schema.num_item_features, reject), dtype=object)
        else:
            out[field.name] = _check_ints(raw, field, reject)
    for name in schema.vector_features():  # optional vectors default to zeros
        if name not in out:
            out[name] = pd.Series([np.zeros(schema.num_item_features, np.float32)] * n,
                                  dtype=object)

    clean = pd.DataFrame(out, columns=list(schema.log_columns()))
    clean["_source"] = source
    clean["_row"] = rows
    _check_requests(clean, reject, bad)
    _check_order(clean, reject, out_of_order, source, bad)
    clean = clean[~bad].reset_index(drop=True)
    clean, dup_report = _reject_duplicates(clean, on_bad_row)
    report.extend(dup_report)
    if out_of_order == "sort":
        clean = clean.sort_values("timestamp", kind="stable").reset_index(drop=True)
    return clean, report


def to_log_frame(clean, schema):
    """A validated frame back in the log's own form, for writing: the contract
    columns only, missing labels as nulls (nullable Int64) rather than the
    examples' -1, which a log would reject as out of range."""
    frame = clean[list(schema.log_columns())].copy()
    for name in LABELS:
        frame[name] = pd.array(np.where(frame[name] < 0, None, frame[name]), dtype="Int64")
    return frame


def _missing(series):
    """Null, NaN or blank (CSV empty cell) per row."""
    missing = series.isna().to_numpy(dtype=bool, copy=True)
    if isinstance(series.dtype, pd.StringDtype):  # Arrow-backed: vectorised
        missing |= series.str.strip().eq("").fillna(False).to_numpy(dtype=bool)
    elif not pd.api.types.is_numeric_dtype(series.dtype):
        text = series[~missing].map(lambda v: isinstance(v, str) and not v.strip())
        missing[np.flatnonzero(~missing)[text.to_numpy(dtype=bool)]] = True
    return missing


def _check_strings(series, field, reject):
    missing = _missing(series)
    values = series.astype(object).to_numpy(dtype=object, copy=True)
    values[missing] = ""
    values = np.array([v if type(v) is str else str(v) for v in values], dtype=object)
    # Undecodable CSV bytes arrive as surrogate escapes (see read_log_file);
    # one scan of the joined column finds whether any row needs a closer look.
    if _SURROGATE.search("\n".join(values)):
        invalid = np.array([_SURROGATE.search(v) is not None for v in values], dtype=bool)
        reject(invalid, field.name, "invalid UTF-8", values)
    if field.non_empty:
        reject(missing, field.name, "empty", values)
    return values


def _check_ints(series, field, reject):
    if pd.api.types.is_integer_dtype(series.dtype) and not series.hasnans:
        numbers = series.to_numpy(dtype=np.float64)
        missing = np.zeros(len(series), dtype=bool)
    else:
        missing = _missing(series)
        numbers = pd.to_numeric(series.astype(object), errors="coerce").to_numpy(dtype=np.float64)
    raw = series.to_numpy(dtype=object)
    if not field.nullable:
        reject(missing, field.name, "missing value", raw)
    not_int = ~missing & (np.isnan(numbers) | (np.floor(numbers) != numbers))
    reject(not_int, field.name, "not an integer", raw)
    ok = ~np.isnan(numbers) & ~not_int
    low = -np.inf if field.min_value is None else field.min_value
    high = np.inf if field.max_value is None else field.max_value
    reject(ok & ((numbers < low) | (numbers > high)), field.name,
           f"out of range [{field.min_value}, {field.max_value}]", raw)
    return np.where(ok, np.nan_to_num(numbers), -1).astype(np.int64)


def _check_vectors(series, field, width, reject):
    raw = series.to_numpy(dtype=object)
    try:  # fast path: every cell already a numeric sequence of the right width
        stacked = np.stack([np.asarray(v, dtype=np.float32) for v in raw]).reshape(len(raw), -1)
        if stacked.shape[1] == width and np.isfinite(stacked).all():
            return list(stacked)
    except (TypeError, ValueError):
        pass
    vectors, bad = [], np.zeros(len(raw), dtype=bool)
    for i, v in enumerate(raw):
        try:
            if isinstance(v, str):
                v = [float(x) for x in v.split(FEATURE_SEPARATOR)] if v.strip() else []
            arr = np.asarray(v, dtype=np.float32).reshape(-1)
            if arr.shape != (width,) or not np.all(np.isfinite(arr)):
                raise ValueError
        except (TypeError, ValueError):
            bad[i] = True
            arr = np.zeros(width, np.float32)
        vectors.append(arr)
    reject(bad, field.name, f"not {width} finite floats separated by '{FEATURE_SEPARATOR}'", raw)
    return vectors


def _check_requests(clean, reject, bad):
    """Rows of one request must agree on user, query and timestamp (compared
    with the request's first row that is not already rejected)."""
    ok = np.flatnonzero(~bad)
    valid = clean.iloc[ok]
    groups = valid.groupby("request_id", sort=False)
    first_row = groups["_row"].transform("first").to_numpy()
    for name in ("user_id", "query", "timestamp"):
        differs = (valid[name] != groups[name].transform("first")).to_numpy()
        values = clean[name].to_numpy(dtype=object)
        for row in np.unique(first_row[differs]):
            mask = np.zeros(len(clean), dtype=bool)
            mask[ok[differs & (first_row == row)]] = True
            reject(mask, name, f"differs from its request's first row {row}", values)


def _check_order(clean, reject, policy, source, bad):
    ts = clean["timestamp"].to_numpy()
    if len(ts) == 0:
        return
    # Rows already rejected (e.g. a missing timestamp) do not set the pace.
    running_max = np.maximum.accumulate(np.where(bad, np.iinfo(np.int64).min, ts))
    earlier = np.concatenate([[np.iinfo(np.int64).min], running_max[:-1]])
    out_of_order = (ts < earlier) & ~bad
    if not out_of_order.any() or policy == "sort":
        return
    if policy == "error":
        i = int(np.flatnonzero(out_of_order)[0])
        raise DataError(
            f"timestamp {ts[i]} is earlier than an earlier row's {earlier[i]}; logs must be "
            "in time order (pass out_of_order='sort' / --out-of-order sort to sort them, "
            "or 'reject' to reject such rows)",
            source=source, row=int(clean["_row"].iat[i]), field="timestamp")
    reject(out_of_order, "timestamp", "earlier than a previous row", ts.astype(object))


def duplicate_reason(first_source, first_row):
    """Why a repeated impression id is rejected (the first one is kept)."""
    return f"duplicate impression id (first at {first_source} row {first_row})"


def _reject_duplicates(clean, on_bad_row):
    report = RejectReport()
    dup = clean.duplicated("impression_id", keep="first").to_numpy()
    if dup.any():
        first = clean.drop_duplicates("impression_id").set_index("impression_id")
        for i in np.flatnonzero(dup):
            row = clean.iloc[i]
            orig = first.loc[row["impression_id"]]
            reason = duplicate_reason(orig["_source"], orig["_row"])
            if on_bad_row == "raise":
                raise DataError(reason + f" (value {row['impression_id']!r})",
                                source=row["_source"], row=int(row["_row"]), field="impression_id")
            report.add(row["_source"], row["_row"], "impression_id", reason, row["impression_id"])
        clean = clean[~dup].reset_index(drop=True)
    return clean, report
