"""The teacher-logits file: any relevance teacher's output, one row per pair (DESIGN §5).

A teacher — an LLM run elsewhere, the local MiniLM cross-encoder
(`prectr_tf.distill.teachers.minilm`) or the simulated judge — labels
(query, title) pairs with a distribution over the K relevance levels. The
file that carries it is Parquet (`.parquet`) or CSV (`.csv`, UTF-8, with a
header) with the columns

| column | type | meaning |
|---|---|---|
| `query` | string | the raw query text, as in the log |
| `title` | string | the raw item title, as in the log |
| `logit_0` … `logit_{K-1}` | float | unnormalised log-probabilities of levels 0..K-1 |
| *or* `prob_0` … `prob_{K-1}` | float | probabilities of levels 0..K-1, each row summing to 1 (±1e-3) |

Exactly one of the two column families, with K columns numbered 0..K-1;
other columns are ignored. Probabilities are turned into logits as
log(max(p, 1e-7)). A pair may appear twice only with the same values.

Bad files raise `TeacherFileError` naming the file, the (1-based data) row
and the field: a missing column, a wrong K, NaN or inf, probabilities out of
[0, 1] or not summing to 1, a duplicate (query, title) with different
values, an empty or invalid UTF-8 string.

Example:
>>> path = write_teacher_logits(f"{tmp}/teacher.parquet", ["drill"], ["acme drill"],
...                             [[-3.0, -2.0, 0.5, 2.0]])
>>> read_teacher_logits(path, num_levels=4).logits.shape
(1, 4)
"""

import dataclasses
import os
import re
import tempfile

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from prectr_tf.data.validation import DataError

LOGIT_PREFIX, PROB_PREFIX = "logit_", "prob_"
PROB_SUM_TOLERANCE = 1e-3
MIN_PROBABILITY = 1e-7
_COLUMN = re.compile(r"^(logit_|prob_)(\d+)$")


class TeacherFileError(DataError):
    """A teacher-logits file that cannot be used; names file, row and field."""


@dataclasses.dataclass
class TeacherLogits:
    """Teacher logits of (query, title) pairs.

    Attributes:
        query: object array [N] of query strings.
        title: object array [N] of title strings.
        logits: float32 [N, K].
    """

    query: np.ndarray
    title: np.ndarray
    logits: np.ndarray

    def __len__(self):
        return len(self.query)

    @property
    def num_levels(self):
        return self.logits.shape[1]

    def probabilities(self, temperature=1.0):
        """softmax(logits / temperature), float64 [N, K]."""
        z = self.logits.astype(np.float64) / temperature
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def lookup(self, queries, titles):
        """Logits of the given pairs, in their order.

        Raises:
            ValueError: naming the first pair the teacher did not label.
        """
        index = pd.MultiIndex.from_arrays([self.query, self.title])
        rows = index.get_indexer(pd.MultiIndex.from_arrays(
            [np.asarray(queries, dtype=object), np.asarray(titles, dtype=object)]))
        if np.any(rows < 0):
            i = int(np.flatnonzero(rows < 0)[0])
            raise ValueError(f"the teacher did not label the pair (query={queries[i]!r}, "
                           f"title={titles[i]!r}) (and {int((rows < 0).sum()) - 1} more)")
        return self.logits[rows]


def write_teacher_logits(path, queries, titles, logits):
    """Write a teacher-logits file atomically (a temporary file renamed into
    place), Parquet or CSV by the extension of `path`.

    Args:
        path: `.parquet` or `.csv` file.
        queries, titles: sequences of N strings.
        logits: float array [N, K].

    Returns:
        `path`.
    """
    logits = np.asarray(logits, dtype=np.float32)
    if logits.ndim != 2 or len(logits) != len(queries) or len(queries) != len(titles):
        raise ValueError(f"need N queries, N titles and [N, K] logits; got {len(queries)}, "
                         f"{len(titles)} and {logits.shape}")
    frame = pd.DataFrame({"query": list(queries), "title": list(titles)})
    for k in range(logits.shape[1]):
        frame[f"{LOGIT_PREFIX}{k}"] = logits[:, k]
    kind = _kind(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".teacher-", suffix=f".{kind}")
    os.close(fd)
    try:
        if kind == "parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def _kind(path):
    extension = os.path.splitext(os.fspath(path))[1].lower()
    if extension not in (".parquet", ".csv"):
        raise TeacherFileError("a teacher-logits file must end in .parquet or .csv",
                               source=path)
    return extension[1:]


def _read_frame(path):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"teacher-logits file not found: {path}")
    if _kind(path) == "parquet":
        table = pq.read_table(path)
        # Strings as raw bytes, so invalid UTF-8 is found and reported per row
        # instead of failing the whole read.
        columns = {}
        for name in table.column_names:
            column = table.column(name)
            if name in ("query", "title") and column.type in (pa.string(), pa.large_string()):
                column = column.cast(pa.binary())
            columns[name] = column.to_pylist()
        return pd.DataFrame(columns)
    frame = pd.read_csv(path, dtype={"query": str, "title": str}, keep_default_na=False,
                        encoding="latin-1")
    return _latin1_to_bytes(frame)


def _latin1_to_bytes(frame):
    # Read as latin-1 (every byte maps to one character), then take the bytes
    # back, so UTF-8 validity is checked row by row below.
    for name in ("query", "title"):
        if name in frame:
            frame[name] = [v.encode("latin-1") if isinstance(v, str) else v
                           for v in frame[name]]
    return frame


def _strings(frame, name, path):
    if name not in frame.columns:
        raise TeacherFileError(f"missing column; found {list(frame.columns)}", source=path,
                               field=name)
    out = np.empty(len(frame), dtype=object)
    for i, value in enumerate(frame[name].tolist()):
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError as err:
                raise TeacherFileError(f"invalid UTF-8 ({err.reason} at byte {err.start})",
                                       source=path, row=i + 1, field=name) from None
        if not isinstance(value, str) or not value.strip():
            raise TeacherFileError("empty or missing text", source=path, row=i + 1, field=name)
        out[i] = value
    return out


def _value_columns(frame, path, num_levels):
    families = {}
    for name in frame.columns:
        match = _COLUMN.match(str(name))
        if match:
            families.setdefault(match.group(1), []).append(int(match.group(2)))
    if len(families) != 1:
        raise TeacherFileError(
            "need exactly one of the column families logit_0..logit_{K-1} or "
            f"prob_0..prob_{{K-1}}; found {sorted(families) or 'neither'}", source=path,
            field="logit_*/prob_*")
    prefix, numbers = next(iter(families.items()))
    k = max(numbers) + 1
    expected = list(range(num_levels if num_levels is not None else k))
    if sorted(numbers) != expected:
        missing = sorted(set(expected) - set(numbers))
        extra = sorted(set(numbers) - set(expected))
        raise TeacherFileError(
            f"wrong number of levels: expected K={len(expected)} columns {prefix}0.."
            f"{prefix}{len(expected) - 1}" + (f"; missing {missing}" if missing else "")
            + (f"; unexpected {extra}" if extra else ""), source=path,
            field=f"{prefix}{(missing or extra)[0]}")
    return prefix, [f"{prefix}{j}" for j in expected]


def read_teacher_logits(path, num_levels=None):
    """Read and validate a teacher-logits file (format in the module doc).

    Args:
        path: `.parquet` or `.csv` file.
        num_levels: the expected K (`None`: take it from the columns).

    Returns:
        `TeacherLogits`, one row per distinct pair (duplicates with equal
        values are kept once).

    Raises:
        TeacherFileError: naming file, row and field.
        FileNotFoundError: no such file.
    """
    path = os.fspath(path)
    frame = _read_frame(path)
    query, title = _strings(frame, "query", path), _strings(frame, "title", path)
    prefix, columns = _value_columns(frame, path, num_levels)
    try:
        values = frame[columns].to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        for name in columns:
            for i, value in enumerate(frame[name].tolist()):
                try:
                    float(value)
                except (TypeError, ValueError):
                    raise TeacherFileError(f"not a number: {value!r}", source=path, row=i + 1,
                                           field=name) from None
        raise
    bad = ~np.isfinite(values)
    if bad.any():
        i, j = map(int, np.argwhere(bad)[0])
        raise TeacherFileError(f"not finite: {values[i, j]}", source=path, row=i + 1,
                               field=columns[j])
    if prefix == PROB_PREFIX:
        out_of_range = (values < 0) | (values > 1)
        if out_of_range.any():
            i, j = map(int, np.argwhere(out_of_range)[0])
            raise TeacherFileError(f"probability {values[i, j]} outside [0, 1]", source=path,
                                   row=i + 1, field=columns[j])
        sums = values.sum(axis=1)
        off = np.abs(sums - 1.0) > PROB_SUM_TOLERANCE
        if off.any():
            i = int(np.flatnonzero(off)[0])
            raise TeacherFileError(f"probabilities sum to {sums[i]:.6f}, not 1", source=path,
                                   row=i + 1, field=f"{PROB_PREFIX}*")
        values = np.log(np.maximum(values, MIN_PROBABILITY))
    return _deduplicate(query, title, values.astype(np.float32), path, columns)


def _deduplicate(query, title, logits, path, columns):
    keys = pd.MultiIndex.from_arrays([query, title])
    duplicated = keys.duplicated(keep="first")
    if not duplicated.any():
        return TeacherLogits(query, title, logits)
    first = pd.Series(np.arange(len(keys)), index=keys)
    first = first[~first.index.duplicated(keep="first")]
    rows = first.reindex(keys).to_numpy()
    differ = duplicated & np.any(logits != logits[rows], axis=1)
    if differ.any():
        i = int(np.flatnonzero(differ)[0])
        j = int(np.flatnonzero(logits[i] != logits[rows[i]])[0])
        raise TeacherFileError(
            f"duplicate pair (query={query[i]!r}, title={title[i]!r}) with a value different "
            f"from row {int(rows[i]) + 1}", source=path, row=i + 1, field=columns[j])
    keep = ~duplicated
    return TeacherLogits(query[keep], title[keep], logits[keep])
