"""What the public-format readers share.

Every reader does the same four things: find its files in a directory, split
the file into records (rejecting records of the wrong shape), parse the
format's lists and term-id strings, and hand the resulting impression columns
to `validate_log` with the real file name and record numbers. The helpers
here do those steps once, so each reader module only states its mapping.

Rejections made here (format level: wrong number of fields, a list that does
not parse, lists of unequal length) go into the same `RejectReport` as the
contract-level ones `validate_log` makes, or raise `DataError` when the read
runs with `on_bad_row="raise"`.
"""

import csv
import json
import os

import numpy as np
import pandas as pd

from prectr_tf.data.validation import DataError, RejectReport, validate_log


def find_file(data_dir, *names):
    """The first of `names` that exists in `data_dir`.

    Args:
        data_dir: the dataset directory.
        *names: accepted file names, preferred first (e.g. the full release
            and its published sample).

    Returns:
        The path of the first existing file.

    Raises:
        DataError: none exists; the error names the first expected path.
    """
    paths = [os.path.join(os.fspath(data_dir), name) for name in names]
    for path in paths:
        if os.path.isfile(path):
            return path
    others = f" (nor {', '.join(names[1:])})" if len(names) > 1 else ""
    raise DataError(f"file not found{others}", source=paths[0])


class FormatErrors:
    """Collects format-level rejections of one read, or raises at the first.

    Args:
        on_bad_row: `"reject"` (record in `report` and skip) or `"raise"`.

    Example:
    >>> errors = FormatErrors("reject")
    >>> errors("log.txt", 3, "clicks", "not a list of integers", "[1,")
    >>> errors.report.count
    1
    """

    def __init__(self, on_bad_row):
        if on_bad_row not in ("reject", "raise"):
            raise ValueError(f"on_bad_row must be 'reject' or 'raise', got {on_bad_row!r}")
        self.on_bad_row = on_bad_row
        self.report = RejectReport()

    def __call__(self, source, row, field, reason, value=""):
        if self.on_bad_row == "raise":
            raise DataError(f"{reason} (value {str(value)[:80]!r})",
                            source=source, row=row, field=field)
        self.report.add(source, row, field, reason, str(value)[:200])


def read_records(path, columns, errors, delimiter="\t", header="none"):
    """Split a delimited text file into records of exactly `columns`.

    Args:
        path: the file.
        columns: the format's column names, in file order when `header` is
            `"none"`/`"optional"`; with `"required"` the header may order them
            freely and carry extra columns.
        errors: the read's `FormatErrors`.
        delimiter: `"\\t"` (no quoting) or `","` (CSV quoting, so a list such
            as `"[20, 34, 3]"` stays one field).
        header: `"none"`, `"optional"` (skipped when it equals `columns`) or
            `"required"`.

    Returns:
        `(rows, records)`: the 1-based record number of each accepted record
        (the header is not a record; blank lines are counted but skipped, so
        without a header a number is the line number) and its fields, in
        `columns` order.
    """
    rows, records = [], []
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as fh:
        # Tab files have no quoting, and their history lists can outgrow the
        # csv module's per-field limit: split them by hand.
        reader = (_split_tabs(fh) if delimiter == "\t"
                  else csv.reader(fh, delimiter=delimiter))
        index = list(range(len(columns)))
        first = next(reader, None)
        if header == "required":
            if first is None or not set(columns) <= set(first):
                missing = [c for c in columns if first is None or c not in first]
                raise DataError(f"header lacks column(s) {missing}", source=path,
                                field=missing[0])
            index, names = [first.index(c) for c in columns], first
            numbered = enumerate(reader, start=1)
        else:
            names = columns
            skip_first = header == "optional" and first == list(columns)
            rest = reader if skip_first or first is None else _prepend(first, reader)
            numbered = enumerate(rest, start=1)
        for row, fields in numbered:
            if not fields:
                continue
            if len(fields) != len(names):
                # Name the first column the record lacks (or the last it has).
                errors(path, row, names[min(len(fields), len(names) - 1)],
                       f"{len(fields)} fields, expected {len(names)} (truncated or merged line?)",
                       delimiter.join(fields))
                continue
            rows.append(row)
            records.append([fields[i] for i in index])
    return rows, records


def _split_tabs(lines):
    for line in lines:
        line = line.rstrip("\r\n")
        yield line.split("\t") if line else []


def _prepend(first, reader):
    yield first
    yield from reader


def parse_list(text, item, field, source, row, errors, sep=None, what=None):
    """Parse one list cell; reject the record when it does not parse.

    Args:
        text: the cell.
        item: converts one element (e.g. `int`); raising `ValueError` or
            `TypeError` marks the list invalid.
        field: the format's column name (reported on failure).
        source, row: where the cell is (reported on failure).
        errors: the read's `FormatErrors`.
        sep: element separator; `None` for a JSON / Python list literal such
            as `[1, 2, 3]`.
        what: what an element is, for the message (default: `item`'s name).

    Returns:
        The list of converted elements (`[]` for an empty cell: an empty
        history, an item without caption), or `None` when it was rejected.
    """
    if not text.strip():
        return []
    try:
        elements = json.loads(text) if sep is None else text.split(sep)
        if not isinstance(elements, list):
            raise TypeError
        return [item(x) for x in elements]
    except (ValueError, TypeError):
        errors(source, row, field, f"not a list of {what or item.__name__}", text)
        return None


def same_lengths(named_lists, source, row, errors, expected=None):
    """Reject the record unless its parallel lists have equal length.

    Args:
        named_lists: `{column name: parsed list}`; the first sets the length
            unless `expected` does.
        source, row, errors: as for `parse_list`.
        expected: the required length, if the format fixes it.

    Returns:
        True when all lengths agree.
    """
    names = list(named_lists)
    length = len(named_lists[names[0]]) if expected is None else expected
    for name in names:
        if len(named_lists[name]) != length:
            errors(source, row, name,
                   f"list has {len(named_lists[name])} elements, expected {length}",
                   named_lists[name])
            return False
    return True


def join_terms(text, sep):
    """Anonymised term ids joined by `sep` -> one space-separated string."""
    return " ".join(term for term in text.split(sep) if term)


def deepest_category(*levels, empty=("", "0")):
    """The most specific non-empty level of a category path ("" if none)."""
    for level in reversed(levels):
        if level not in empty:
            return level
    return ""


def grade_to_level(grade, schema):
    """Dataset grades 0, 1, ... (int or array) as relevance levels in [0, K):
    grades at or above K-1 share the top level (K=4: TREC's 3 and 4 -> 3)."""
    return np.minimum(np.asarray(grade, dtype=np.int64), schema.num_relevance_levels - 1)


def to_log(columns, schema, source, rows, errors, out_of_order="error"):
    """Check reader output against the contract; merge the rejections.

    Args:
        columns: `{log column: values}` for every required log column.
        schema: the `DataSchema`.
        source: the impression file, reported for contract-level rejections.
        rows: the 1-based record number of each impression in `source`.
        errors: the read's `FormatErrors` (its report receives all rejections).
        out_of_order: passed to `validate_log` (`"sort"` for formats whose
            records are not in global time order).

    Returns:
        `(frame, report)` as `validate_log` returns them, with the format-level
        rejections first in the report.
    """
    frame = pd.DataFrame(columns, columns=list(schema.required_log_columns()))
    clean, report = validate_log(frame, schema, source, rows=rows,
                                 on_bad_row=errors.on_bad_row, out_of_order=out_of_order)
    errors.report.extend(report)
    return clean, errors.report
