"""Tests of the JDsearch reader.

The sample tests read the official sample in
`$PRECTR_SHARED_DATA/jdsearch_sample` (default `<repo>/../shared/data`).
Expected numbers were counted by hand from the file (`cut`/`tr`/`grep`):

| line | candidates | clicked (label > 0) | history | query-less (-1) | history kept |
|---|---|---|---|---|---|
| 1 | 90 | 1 (index 0) | 182 | 94 | 88 |
| 2 | 89 | 2 (0, 1) | 46 | 33 | 13 |
| 3 | 83 | 2 (0, 1) | 2 | 2 | 0 |

so 262 candidate and 101 history impressions. The other tests write small
synthetic files in the published format (tab-separated, `_` lists, `\\x18`
term separators).
"""

import os
import pathlib

import pytest

from prectr_tf.data.readers.jdsearch import read_jdsearch
from prectr_tf.data.validation import DataError

SHARED = pathlib.Path(os.environ.get(
    "PRECTR_SHARED_DATA", pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"))
JD_DIR = SHARED / "jdsearch_sample"
needs_data = pytest.mark.skipif(not (JD_DIR / "user_behavior_data_sample.txt").is_file(),
                                reason=f"JDsearch sample not found at {JD_DIR} "
                                       "(set PRECTR_SHARED_DATA)")
HEADER = ("query\tcandidate_wid_list\tcandidate_label_list\thistory_qry_list\t"
          "history_wid_list\thistory_type_list\thistory_time_list")
PRODUCT_HEADER = ("wid\tname\tbrand_id\tbrand_name\tcate_id_1\tcate_name_1\tcate_id_2\t"
                  "cate_name_2\tcate_id_3\tcate_name_3\tcate_id_4\tcate_name_4\tshop_id")


@needs_data
def test_sample_counts():
    frame, report = read_jdsearch(JD_DIR)
    assert report.count == 0, report.summary()
    assert len(frame) == 363
    test = frame[frame["request_id"].str.endswith(":test")]
    assert test.groupby("user_id").size().to_dict() == {"jd:1": 90, "jd:2": 89, "jd:3": 83}
    assert test.groupby("user_id")["click"].sum().to_dict() == {"jd:1": 1, "jd:2": 2, "jd:3": 2}
    history = frame[~frame["request_id"].str.endswith(":test")]
    assert history.groupby("user_id").size().to_dict() == {"jd:1": 88, "jd:2": 13}
    assert (history["click"] == 1).all() and (frame["relevance"] == -1).all()
    assert frame["timestamp"].is_monotonic_increasing


@needs_data
def test_sample_hand_checked_rows():
    frame, _ = read_jdsearch(JD_DIR)
    row = frame.set_index("impression_id")
    # Line 1's first candidate 36098226, clicked; query 63995226^X60257419^X...
    first = row.loc["jd:1:c0"]
    assert (first["item_id"], first["click"], first["position"], first["timestamp"]) == (
        "36098226", 1, 0, 0)
    assert first["query"] == "63995226 60257419 61002446 25575117"
    assert first["item_title"].startswith("63995226 72769057 60257419 89923027")
    assert first["item_category"] == "22195176"  # cate_id_4
    # Line 2's first history event: query 97556135^X72694219, product 18256630,
    # at interval 0 of a list summing to 27,722,273 up to the test search.
    event = row.loc["jd:2:h0"]
    assert (event["query"], event["item_id"], event["timestamp"]) == (
        "97556135 72694219", "18256630", -27722273)
    assert event["item_category"] == "58939778"
    assert (row.loc["jd:2:h1", "query"], row.loc["jd:2:h1", "item_id"]) == (
        "46916741", "46206270")
    assert "jd:2:h2" not in row.index  # history query -1: query-less, skipped


def _release(directory, lines, products=("9\t5\x186\tb\tb\t11\tc\t12\tc\t\t\t\t\ts",)):
    (directory / "user_behavior_data_sample.txt").write_text(
        "\n".join([HEADER, *lines]) + "\n")
    (directory / "product_meta_data_sample.txt").write_text(
        "\n".join([PRODUCT_HEADER, *products]) + "\n")
    return directory


GOOD = "1\x182\t9_8\t2.0_0.0\t3\x184_-1_7\t9_8_9\tORD_CLICK_FLW\t0_12_4_5"


def test_synthetic_user_line(tmp_path):
    frame, report = read_jdsearch(_release(tmp_path, [GOOD]))
    assert report.count == 0
    assert frame["impression_id"].tolist() == ["jd:1:h0", "jd:1:h2", "jd:1:c0", "jd:1:c1"]
    # Times 0, 12, 16 and the search at 21 -> -21, -9 (query-less), -5, 0.
    assert frame["timestamp"].tolist() == [-21, -5, 0, 0]
    assert frame["query"].tolist() == ["3 4", "7", "1 2", "1 2"]
    assert frame["click"].tolist() == [1, 1, 1, 0]  # add-to-cart implies a click
    assert frame["position"].tolist() == [0, 0, 0, 1]
    # Product 9: name 5^X6, deepest non-empty category is cate_id_2; 8 is unknown.
    assert frame["item_title"].tolist() == ["5 6", "5 6", "5 6", ""]
    assert frame["item_category"].tolist() == ["12", "12", "12", ""]


def test_full_release_names_and_no_header(tmp_path):
    (tmp_path / "release_data.txt").write_text(GOOD + "\n")
    (tmp_path / "product_data.txt").write_text("")
    frame, _ = read_jdsearch(tmp_path)
    assert len(frame) == 4 and frame["_row"].tolist() == [1, 1, 1, 1]


@pytest.mark.parametrize("line, field, reason", [
    ("1\t9_8\t2.0_0.0\t3\t9", "history_type_list", "5 fields, expected 7"),
    ("1\t9_8\t2.0_x\t3\t9\tORD\t0_1", "candidate_label_list", "not a list of labels"),
    ("1\t9_8\t2.0_0.0\t3\t9\tBUY\t0_1", "history_type_list", "not a list of types"),
    ("1\t9_8\t2.0\t3\t9\tORD\t0_1", "candidate_label_list", "1 elements, expected 2"),
    ("1\t9_8\t2.0_0.0\t3\t9\tORD\t0", "history_time_list", "1 elements, expected 2"),
    ("1\t9_8\t2.0_0.0\t3\t9\tORD\t0_-4", "history_time_list", "non-negative"),
])
def test_bad_line_is_rejected_with_file_row_field(tmp_path, line, field, reason):
    frame, report = read_jdsearch(_release(tmp_path, [GOOD, line]))
    assert set(frame["_row"]) == {1}
    [r] = report.rejections
    assert (r.source, r.row, r.field) == (
        str(tmp_path / "user_behavior_data_sample.txt"), 2, field)
    assert reason in r.reason


def test_bad_line_raises_when_asked(tmp_path):
    _release(tmp_path, [GOOD, "1\t9_8"])
    with pytest.raises(DataError, match="row 2, field 'candidate_label_list'"):
        read_jdsearch(tmp_path, on_bad_row="raise")


def test_missing_product_file_names_path(tmp_path):
    _release(tmp_path, [GOOD])
    (tmp_path / "product_meta_data_sample.txt").unlink()
    with pytest.raises(DataError, match=f"file {tmp_path / 'product_data.txt'}: file not found"):
        read_jdsearch(tmp_path)


def test_long_history_line(tmp_path):
    # A heavy user's history lists exceed the csv module's 128 KiB field limit.
    n = 30_000
    line = "\t".join(["1", "9", "1.0", "_".join(["12345\x1867890"] * n), "_".join(["9"] * n),
                      "_".join(["CLICK"] * n), "_".join(["1"] * (n + 1))])
    frame, report = read_jdsearch(_release(tmp_path, [line]))
    assert report.count == 0 and len(frame) == n + 1
    assert frame["timestamp"].iat[0] == -n
