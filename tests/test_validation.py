"""Every bad-input case of the log contract: a clear error naming file, row
and field, or a counted rejection in the rejects file — nothing dropped
silently."""

import csv

import numpy as np
import pandas as pd
import pytest

from prectr_tf.data.schema import DataSchema
from prectr_tf.data.validation import DataError, read_log

from hand_log import hand_log

SCHEMA = DataSchema()


def _write_csv(tmp_path, frame, name="log.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def _read_one_bad(tmp_path, column, row, value, **kwargs):
    """Set row `row` (1-based) of `column` to `value`, read, return the report."""
    frame = hand_log().astype(object)
    frame.loc[row - 1, column] = value
    path = _write_csv(tmp_path, frame)
    clean, report = read_log(path, SCHEMA, **kwargs)
    return path, clean, report


def test_clean_log_round_trips(tmp_path):
    path = _write_csv(tmp_path, hand_log())
    clean, report = read_log(path, SCHEMA)
    assert report.count == 0 and len(clean) == len(hand_log())
    assert clean["relevance"].tolist()[:5] == [3, 1, 3, 2, -1]  # missing -> -1, not 0
    assert clean["_row"].tolist() == list(range(1, len(clean) + 1))


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(DataError, match="nope.csv: file not found"):
        read_log(tmp_path / "nope.csv", SCHEMA)


def test_missing_column_names_file_and_column(tmp_path):
    path = _write_csv(tmp_path, hand_log().drop(columns=["timestamp"]))
    with pytest.raises(DataError) as err:
        read_log(path, SCHEMA)
    assert err.value.field == "timestamp" and str(path) in str(err.value)


@pytest.mark.parametrize("column,value,reason", [
    ("position", "third", "not an integer"),
    ("click", "1.5", "not an integer"),
    ("timestamp", "", "missing value"),
    ("relevance", "4", "out of range [0, 3]"),
    ("relevance", "-2", "out of range [0, 3]"),
    ("click", "2", "out of range [0, 1]"),
    ("position", "-1", "out of range [0, None]"),
    ("query", "   ", "empty"),
    ("user_id", "", "empty"),
])
def test_bad_value_is_rejected_with_file_row_field(tmp_path, column, value, reason):
    path, clean, report = _read_one_bad(tmp_path, column, 3, value)
    assert report.count == 1
    (r,) = report.rejections
    assert (r.source, r.row, r.field, r.reason) == (str(path), 3, column, reason)
    assert len(clean) == len(hand_log()) - 1 and 3 not in clean["_row"].tolist()


@pytest.mark.parametrize("column,value,reason", [
    ("relevance", "4", "out of range"), ("query", "", "empty")])
def test_bad_value_raises_when_asked(tmp_path, column, value, reason):
    with pytest.raises(DataError, match=rf"row 3, field '{column}': {reason}"):
        _read_one_bad(tmp_path, column, 3, value, on_bad_row="raise")


def test_invalid_utf8_is_rejected(tmp_path):
    path = _write_csv(tmp_path, hand_log())
    data = path.read_bytes().replace(b"title c", b"title \xff\xfe")
    path.write_bytes(data)
    clean, report = read_log(path, SCHEMA)
    (r,) = report.rejections
    assert (r.row, r.field, r.reason, r.value) == (4, "item_title", "invalid UTF-8",
                                                   "title \\xff\\xfe")


def test_duplicate_impression_ids_within_and_across_files(tmp_path):
    frame = hand_log()
    frame.loc[4, "impression_id"] = frame.loc[0, "impression_id"]
    first = _write_csv(tmp_path, frame, "a.csv")
    second = _write_csv(tmp_path, hand_log().iloc[:1], "b.csv")
    clean, report = read_log([first, second], SCHEMA, out_of_order="sort")
    assert [(r.source, r.row, r.field) for r in report.rejections] == [
        (str(first), 5, "impression_id"), (str(second), 1, "impression_id")]
    assert all(f"first at {first} row 1" in r.reason for r in report.rejections)
    assert clean["impression_id"].is_unique


def test_timestamps_out_of_order(tmp_path):
    frame = hand_log()
    frame.loc[len(frame) - 1, "timestamp"] = 50  # last row goes back in time
    frame.loc[len(frame) - 1, "request_id"] = "late"
    path = _write_csv(tmp_path, frame)
    last = len(frame)
    with pytest.raises(DataError, match=rf"row {last}, field 'timestamp'.*out_of_order"):
        read_log(path, SCHEMA)
    clean, report = read_log(path, SCHEMA, out_of_order="reject")
    assert [(r.row, r.field) for r in report.rejections] == [(last, "timestamp")]
    clean, report = read_log(path, SCHEMA, out_of_order="sort")
    assert report.count == 0 and clean["timestamp"].iloc[0] == 50
    assert np.all(np.diff(clean["timestamp"].to_numpy()) >= 0)


def test_request_rows_must_agree(tmp_path):
    path, clean, report = _read_one_bad(tmp_path, "user_id", 2, "someone-else")
    (r,) = report.rejections
    assert (r.row, r.field) == (2, "user_id") and "first row 1" in r.reason


def test_rejects_file_and_summary(tmp_path):
    frame = hand_log().astype(object)
    frame.loc[0, "relevance"] = 9
    frame.loc[1, "query"] = ""
    path = _write_csv(tmp_path, frame)
    _, report = read_log(path, SCHEMA)
    out = tmp_path / "rejects.csv"
    report.write(out)
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["row"], r["field"]) for r in rows] == [("2", "query"), ("1", "relevance")]
    assert "2 rows rejected" in report.summary()


def test_parquet_and_item_features(tmp_path):
    schema = DataSchema(num_item_features=2)
    frame = hand_log()
    features = [[1.0, float(i)] for i in range(len(frame))]
    features[3] = [1.0]  # wrong width
    frame["item_features"] = features
    frame.to_parquet(tmp_path / "log.parquet")
    clean, report = read_log(tmp_path / "log.parquet", schema)
    assert [(r.row, r.field) for r in report.rejections] == [(4, "item_features")]
    assert clean["item_features"].iloc[3].tolist() == [1.0, 4.0]  # row 5 moved up
    # CSV cells use ';' between features.
    csv_frame = hand_log().astype(object)
    csv_frame["item_features"] = "0.5;2"
    csv_frame.loc[0, "item_features"] = "0.5;x"
    clean, report = read_log(_write_csv(tmp_path, csv_frame), schema)
    assert [(r.row, r.field) for r in report.rejections] == [(1, "item_features")]
    assert clean["item_features"].iloc[0].tolist() == [0.5, 2.0]


def test_wrong_type_in_parquet_column(tmp_path):
    frame = hand_log()
    frame["position"] = frame["position"].astype(str)
    frame.loc[2, "position"] = "first"
    frame.to_parquet(tmp_path / "log.parquet")
    _, report = read_log(tmp_path / "log.parquet", SCHEMA)
    assert [(r.row, r.field, r.reason) for r in report.rejections] == [
        (3, "position", "not an integer")]
