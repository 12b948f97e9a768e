"""Tests of the TREC 2014 Session Track reader.

The count and hand-checked tests read the real GraphCM files from
`$PRECTR_SHARED_DATA/trec2014_session` (default `<repo>/../shared/data`); the
expected values were read off the files with `grep`/`cut`, not computed by
the reader. Bad-input tests write tiny synthetic files in the same format.
"""

import os
import pathlib

import pytest

from prectr_tf.data.readers.trec_session import read_trec_session
from prectr_tf.data.schema import DataSchema
from prectr_tf.data.validation import DataError

SHARED = pathlib.Path(os.environ.get(
    "PRECTR_SHARED_DATA", pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"))
TREC_DIR = SHARED / "trec2014_session"
needs_data = pytest.mark.skipif(not (TREC_DIR / "train_per_query_quid.txt").is_file(),
                                reason=f"TREC 2014 Session data not found at {TREC_DIR} "
                                       "(set PRECTR_SHARED_DATA)")


@pytest.fixture(scope="module")
def train():
    return read_trec_session(TREC_DIR, "train")


def _page(frame, line):
    return frame[frame["_row"] == line].sort_values("position")


@needs_data
@pytest.mark.parametrize("split, pages", [("train", 2872), ("valid", 361), ("test", 363)])
def test_page_counts(split, pages):
    frame, report = read_trec_session(TREC_DIR, split)
    assert report.count == 0, report.summary()
    assert len(frame) == 10 * pages
    assert frame["request_id"].nunique() == pages
    assert frame.groupby("request_id").size().eq(10).all()
    assert list(frame.columns[:-2]) == list(DataSchema().log_columns())


@needs_data
def test_train_totals(train):
    frame, _ = train
    assert frame["click"].sum() == 1293  # ones in column 5
    assert frame["user_id"].nunique() == 1003  # distinct sessions
    # Human-label lines 1..704 are the train pages: 7,040 grades, 438 of them -2.
    levels = frame.loc[frame["relevance"] >= 0, "relevance"].value_counts().to_dict()
    assert levels == {0: 4146, 1: 1778, 2: 548, 3: 97 + 33}
    assert (frame["relevance"] == -1).sum() == 28720 - 6602


@needs_data
def test_hand_checked_pages(train):
    frame, _ = train
    # Line 1: session 460, query 798 "SUNY", uid 2270 first, no clicks, no labels.
    first = _page(frame, 1)
    assert first["user_id"].tolist() == ["460"] * 10
    assert first["query"].iat[0] == "SUNY"
    assert first["item_id"].iat[0] == "clueweb12-0209wb-85-25120"
    assert first["click"].tolist() == [0] * 10
    assert first["relevance"].tolist() == [-1] * 10
    assert first["timestamp"].tolist() == [1] * 10
    # Line 4 repeats line 1's page with a click on rank 1: a separate request.
    again = _page(frame, 4)
    assert again["item_id"].tolist() == first["item_id"].tolist()
    assert again["click"].tolist() == [1] + [0] * 9
    assert again["request_id"].iat[0] != first["request_id"].iat[0]
    # Line 6 = human-label line 1: grades [1, 1, 1, 2, 2, 0, 0, 1, 0, 1].
    page = _page(frame, 6)
    assert page["query"].iat[0] == "403(b) vs IRA"
    assert page["item_id"].iat[0] == "clueweb12-0906wb-37-14731"
    assert page["relevance"].tolist() == [1, 1, 1, 2, 2, 0, 0, 1, 0, 1]
    # Line 70: click on rank 6, grades [1,1,1,1,1,4,1,-2,0,1]: 4 -> 3, -2 -> missing.
    page = _page(frame, 70)
    assert page["click"].tolist() == [0] * 5 + [1] + [0] * 4
    assert page["relevance"].tolist() == [1, 1, 1, 1, 1, 3, 1, -1, 0, 1]
    assert page["item_category"].tolist() == ["0"] * 10


@needs_data
def test_fewer_levels_collapse_the_top_grades():
    frame, _ = read_trec_session(TREC_DIR, "train", schema=DataSchema(num_relevance_levels=3))
    assert _page(frame, 70)["relevance"].tolist() == [1, 1, 1, 1, 1, 2, 1, -1, 0, 1]


# --- bad input, on small synthetic files in the GraphCM format -----------------

GOOD = "7\t1\t[1, 2]\t[1, 1]\t[0, 1]"


def _release(directory, lines, labels=()):
    (directory / "query_qid.dict").write_text("{'': 0, 'cheap flights': 1}")
    (directory / "url_uid.dict").write_text("{'': 0, 'clueweb12-a': 1, 'clueweb12-b': 2}")
    (directory / "vtype_vid.dict").write_text("{'': 0, '0': 1}")
    (directory / "train_per_query_quid.txt").write_text("".join(f"{x}\n" for x in lines))
    (directory / "human_label_for_GraphCM_per_query_quid.txt").write_text(
        "".join(f"{x}\n" for x in labels))
    return directory


def test_synthetic_page_and_labels(tmp_path):
    _release(tmp_path, [GOOD, GOOD.replace("[0, 1]", "[1, 0]")], [GOOD + "\t[4, -2]"])
    frame, report = read_trec_session(tmp_path)
    assert report.count == 0
    assert frame["item_id"].tolist() == ["clueweb12-a", "clueweb12-b"] * 2
    # Only the page equal to the label row in all five columns is labelled.
    assert frame["relevance"].tolist() == [3, -1, -1, -1]
    assert frame["query"].unique().tolist() == ["cheap flights"]


@pytest.mark.parametrize("line, field, reason", [
    ("7\t1\t[1, 2]\t[1, 1]", "clicks", "4 fields, expected 5"),
    ("7\t1\t[1, 2\t[1, 1]\t[0, 1]", "doc_ids", "not a list of integers"),
    ("7\t1\t[1, 2]\t[1, 1]\t[0, 1, 0]", "clicks", "3 elements, expected 2"),
    ("x\t1\t[1, 2]\t[1, 1]\t[0, 1]", "session_id", "not an integer"),
    ("7\t9\t[1, 2]\t[1, 1]\t[0, 1]", "query_id", "id 9 is not in"),
])
def test_bad_line_is_rejected_with_file_row_field(tmp_path, line, field, reason):
    _release(tmp_path, [GOOD, line, GOOD])
    frame, report = read_trec_session(tmp_path)
    assert sorted(set(frame["_row"])) == [1, 3]
    [rejection] = {(r.source, r.row, r.field, r.reason) for r in report.rejections}
    source, row, got_field, got_reason = rejection
    assert source == str(tmp_path / "train_per_query_quid.txt")
    assert (row, got_field) == (2, field)
    assert reason in got_reason


def test_bad_click_rejects_that_impression(tmp_path):
    # A value the contract forbids is caught by validate_log, per impression.
    _release(tmp_path, [GOOD, "7\t1\t[1, 2]\t[1, 1]\t[0, 2]"])
    frame, report = read_trec_session(tmp_path)
    assert frame["impression_id"].tolist() == ["trec:train:1:0", "trec:train:1:1",
                                               "trec:train:2:0"]
    [r] = report.rejections
    assert (r.row, r.field, r.value) == (2, "click", "2")
    assert "out of range" in r.reason


def test_bad_line_raises_when_asked(tmp_path):
    _release(tmp_path, [GOOD, "7\t1\t[1, 2]\t[1, 1]"])
    with pytest.raises(DataError, match=r"train_per_query_quid.txt, row 2, field 'clicks'"):
        read_trec_session(tmp_path, on_bad_row="raise")


def test_bad_grade_is_rejected_in_the_label_file(tmp_path):
    _release(tmp_path, [GOOD], [GOOD + "\t[5, 0]"])
    frame, report = read_trec_session(tmp_path)
    assert frame["relevance"].tolist() == [-1, -1]
    [r] = report.rejections
    assert (pathlib.Path(r.source).name, r.row, r.field) == (
        "human_label_for_GraphCM_per_query_quid.txt", 1, "grades")


@pytest.mark.parametrize("missing", ["train_per_query_quid.txt", "url_uid.dict",
                                     "human_label_for_GraphCM_per_query_quid.txt"])
def test_missing_file_names_path(tmp_path, missing):
    _release(tmp_path, [GOOD])
    (tmp_path / missing).unlink()
    with pytest.raises(DataError, match=f"file {tmp_path / missing}: file not found"):
        read_trec_session(tmp_path)


def test_unknown_split():
    with pytest.raises(ValueError, match="split must be one of"):
        read_trec_session("anywhere", "validation")
