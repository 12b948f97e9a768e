"""Tests of the KuaiSAR search-log reader.

KuaiSAR is not available offline here, so the tests write small CSV files in
exactly the published format (github.com/Ethan00Si/KuaiSAR,
`pages/decriptions.md`): `src_inter.csv` with `user_id, search_session_id,
search_session_time, search_session_timestamp, keyword, search_source,
item_id, click_cnt, item_type` (timestamps in ms stored as float64, keywords
as `[20, 34, 3]`), and `item_features.csv` with its 18 published columns. The
rows are invented.
"""

import pandas as pd
import pytest

from prectr_tf.data.readers.kuaisar import read_kuaisar
from prectr_tf.data.validation import DataError

SEARCH_COLUMNS = ["user_id", "search_session_id", "search_session_time",
                  "search_session_timestamp", "keyword", "search_source", "item_id",
                  "click_cnt", "item_type"]
ITEM_COLUMNS = ["item_id", "caption", "author_id", "item_type", "upload_time", "upload_type"] + [
    f"{level}_level_category_{part}" for level in ("first", "second", "third", "fourth")
    for part in ("id", "name", "name_en")]
SEARCH_ROWS = [
    (14358, 1, "2023-05-22 21:58:52", 1684763932919.0, "[20, 34, 3]", "USER_INPUT", 103, 1,
     "VIDEO"),
    (14358, 1, "2023-05-22 21:58:52", 1684763932919.0, "[20, 34, 3]", "USER_INPUT", 104, 0,
     "USER"),
    (6302, 2, "2023-05-22 20:00:00", 1684756800000.0, "[7]", "SUGGEST", 103, 0, "VIDEO"),
]
ITEM_ROWS = [
    (103, "[1, 213, 24]", 10, "NORMAL", "2023-04-22", "LongImport",
     9, "搞笑", "Funny", 136, "搞笑段子", "Funny joke", 0, "空", "empty", 0, "空", "empty"),
]


def _write(directory, search=SEARCH_ROWS, items=ITEM_ROWS):
    pd.DataFrame(search, columns=SEARCH_COLUMNS).to_csv(directory / "src_inter.csv", index=False)
    pd.DataFrame(items, columns=ITEM_COLUMNS).to_csv(directory / "item_features.csv", index=False)
    return directory


def test_mapping(tmp_path):
    frame, report = read_kuaisar(_write(tmp_path))
    assert report.count == 0
    # Sorted by session timestamp: user 6302's session (20:00) comes first.
    assert frame["impression_id"].tolist() == ["kuaisar:3", "kuaisar:1", "kuaisar:2"]
    assert frame["request_id"].tolist() == ["6302:2", "14358:1", "14358:1"]
    assert frame["timestamp"].tolist() == [1684756800000, 1684763932919, 1684763932919]
    assert frame["query"].tolist() == ["7", "20 34 3", "20 34 3"]
    assert frame["position"].tolist() == [0, 0, 1]
    assert frame["click"].tolist() == [0, 1, 0]
    assert (frame["relevance"] == -1).all()
    # Item 103: caption terms; category 136 (second level; third/fourth are 0 = empty).
    # Item 104 (a USER result) has no features row.
    assert frame["item_title"].tolist() == ["1 213 24", "1 213 24", ""]
    assert frame["item_category"].tolist() == ["136", "136", ""]
    assert frame["_row"].tolist() == [3, 1, 2]


def test_click_count_above_one_is_a_click(tmp_path):
    rows = [SEARCH_ROWS[0][:7] + (3, "VIDEO")]
    frame, _ = read_kuaisar(_write(tmp_path, rows))
    assert frame["click"].tolist() == [1]


def _write_lines(directory, lines):
    _write(directory)
    text = (directory / "src_inter.csv").read_text().splitlines()
    (directory / "src_inter.csv").write_text("\n".join(text[:2] + lines + text[2:]) + "\n")


@pytest.mark.parametrize("line, field, reason", [
    ('14358,1,2023-05-22 21:58:52,1684763932919.0,"[20, 34, 3]",USER_INPUT,105',
     "click_cnt", "7 fields, expected 9"),
    ('14358,1,2023-05-22 21:58:52,1684763932919.0,"[20, 34",USER_INPUT,105,0,VIDEO',
     "keyword", "not a list of integer term ids"),
    ('14358,1,2023-05-22 21:58:52,soon,"[20]",USER_INPUT,105,0,VIDEO',
     "search_session_timestamp", "not a non-negative integer"),
    ('14358,1,2023-05-22 21:58:52,1684763932919.0,"[20]",USER_INPUT,105,-1,VIDEO',
     "click_cnt", "not a non-negative integer"),
])
def test_bad_line_is_rejected_with_file_row_field(tmp_path, line, field, reason):
    _write_lines(tmp_path, [line])
    frame, report = read_kuaisar(tmp_path)
    assert sorted(frame["_row"]) == [1, 3, 4]
    [r] = report.rejections
    assert (r.source, r.row, r.field) == (str(tmp_path / "src_inter.csv"), 2, field)
    assert reason in r.reason
    with pytest.raises(DataError, match=f"row 2, field '{field}'"):
        read_kuaisar(tmp_path, on_bad_row="raise")


def test_missing_column_names_file_and_field(tmp_path):
    _write(tmp_path)
    pd.read_csv(tmp_path / "src_inter.csv").drop(columns="keyword").to_csv(
        tmp_path / "src_inter.csv", index=False)
    with pytest.raises(DataError, match=r"src_inter.csv, field 'keyword': header lacks"):
        read_kuaisar(tmp_path)


@pytest.mark.parametrize("missing", ["src_inter.csv", "item_features.csv"])
def test_missing_file_names_path(tmp_path, missing):
    _write(tmp_path)
    (tmp_path / missing).unlink()
    with pytest.raises(DataError, match=f"file {tmp_path / missing}: file not found"):
        read_kuaisar(tmp_path)
