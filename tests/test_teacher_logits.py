"""The teacher-logits file: round trips, and every bad file named by file,
row and field."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prectr_tf.distill import (TeacherFileError, TeacherLogits, read_teacher_logits,
                               write_teacher_logits)

QUERIES = ["cordless drill", "暖气片", "pâte à modeler"]
TITLES = ["acme cordless drill 18 v", "铸铁暖气片", "Pâte à modeler 500 g"]
LOGITS = np.array([[-2.0, -1.0, 0.5, 3.0], [0.0, 0.0, 0.0, 0.0], [1.0, -1.0, 2.0, -3.5]],
                  np.float32)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_round_trip_keeps_text_and_values(tmp_path, suffix):
    path = write_teacher_logits(tmp_path / f"t{suffix}", QUERIES, TITLES, LOGITS)
    teacher = read_teacher_logits(path, num_levels=4)
    assert teacher.query.tolist() == QUERIES and teacher.title.tolist() == TITLES
    np.testing.assert_allclose(teacher.logits, LOGITS, rtol=1e-6)
    assert teacher.num_levels == 4 and len(teacher) == 3
    np.testing.assert_allclose(teacher.lookup(QUERIES[::-1], TITLES[::-1]), LOGITS[::-1])
    with pytest.raises(ValueError, match="did not label the pair"):
        teacher.lookup(["cordless drill"], ["something else"])
    assert not list(tmp_path.glob(".teacher-*"))  # atomic: no temporary file left


def test_probabilities_become_log_probabilities(tmp_path):
    probs = np.array([[0.1, 0.2, 0.3, 0.4], [1.0, 0.0, 0.0, 0.0]])
    frame = pd.DataFrame({"query": ["a", "b"], "title": ["x", "y"], "extra": [1, 2]})
    for k in range(4):
        frame[f"prob_{k}"] = probs[:, k]
    frame.to_csv(tmp_path / "p.csv", index=False)
    teacher = read_teacher_logits(tmp_path / "p.csv")
    np.testing.assert_allclose(teacher.probabilities(), np.maximum(probs, 1e-7) /
                               np.maximum(probs, 1e-7).sum(1, keepdims=True), atol=1e-6)
    np.testing.assert_allclose(teacher.logits[0], np.log(probs[0]), rtol=1e-6)


def test_equal_duplicates_are_kept_once(tmp_path):
    path = write_teacher_logits(tmp_path / "d.parquet", QUERIES + QUERIES[:1],
                                TITLES + TITLES[:1], np.concatenate([LOGITS, LOGITS[:1]]))
    assert len(read_teacher_logits(path)) == 3


def _csv(tmp_path, text, name="bad.csv"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


HEADER = "query,title,logit_0,logit_1,logit_2,logit_3\n"


@pytest.mark.parametrize("body,row,field,message", [
    ("title,logit_0,logit_1,logit_2,logit_3\nx,1,2,3,4\n", None, "query", "missing column"),
    (HEADER + "a,x,1,2,3,4\nb,y,1,nan,3,4\n", 2, "logit_1", "not finite"),
    (HEADER + "a,x,1,2,inf,4\n", 1, "logit_2", "not finite"),
    (HEADER + "a,x,1,2,3,oops\n", 1, "logit_3", "not a number"),
    (HEADER + "a,x,1,2,3,4\n,y,1,2,3,4\n", 2, "query", "empty"),
    (HEADER + "a,x,1,2,3,4\nb,y,1,2,3,4\na,x,1,2,3,5\n", 3, "logit_3", "duplicate pair"),
    ("query,title,prob_0,prob_1,prob_2,prob_3\na,x,0.1,0.2,0.3,0.3\n", 1, "prob_*",
     "sum to 0.9"),
    ("query,title,prob_0,prob_1,prob_2,prob_3\na,x,1.5,-0.5,0,0\n", 1, "prob_0",
     r"outside \[0, 1\]"),
    ("query,title,logit_0,logit_1,prob_2\na,x,1,2,3\n", None, "logit_*/prob_*",
     "exactly one of"),
])
def test_bad_csv_named_by_file_row_and_field(tmp_path, body, row, field, message):
    path = _csv(tmp_path, body)
    with pytest.raises(TeacherFileError, match=message) as err:
        read_teacher_logits(path, num_levels=4)
    assert (err.value.source, err.value.row, err.value.field) == (str(path), row, field)
    assert str(path) in str(err.value)


def test_wrong_number_of_levels(tmp_path):
    path = _csv(tmp_path, "query,title,logit_0,logit_1,logit_2\na,x,1,2,3\n")
    with pytest.raises(TeacherFileError, match="expected K=4") as err:
        read_teacher_logits(path, num_levels=4)
    assert err.value.field == "logit_3"
    assert read_teacher_logits(path).num_levels == 3  # K from the columns when not given
    gap = _csv(tmp_path, "query,title,logit_0,logit_2\na,x,1,2\n", "gap.csv")
    with pytest.raises(TeacherFileError, match="missing \\[1\\]"):
        read_teacher_logits(gap)


def test_invalid_utf8_in_csv_and_parquet(tmp_path):
    path = _csv(tmp_path, HEADER.encode() + b"a,x,1,2,3,4\nb,caf\xe9 latin-1,1,2,3,4\n")
    with pytest.raises(TeacherFileError, match="invalid UTF-8") as err:
        read_teacher_logits(path)
    assert (err.value.row, err.value.field) == (2, "title")
    table = pa.table({"query": pa.array([b"ok", b"\xff\xfe"], pa.binary()),
                      "title": pa.array([b"t1", b"t2"], pa.binary()),
                      **{f"logit_{k}": pa.array([0.0, 1.0]) for k in range(4)}})
    pq.write_table(table, tmp_path / "bad.parquet")
    with pytest.raises(TeacherFileError, match="invalid UTF-8") as err:
        read_teacher_logits(tmp_path / "bad.parquet")
    assert (err.value.row, err.value.field) == (2, "query")


def test_missing_file_and_wrong_extension(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_teacher_logits(tmp_path / "none.parquet")
    with pytest.raises(TeacherFileError, match=".parquet or .csv"):
        write_teacher_logits(tmp_path / "t.json", ["a"], ["b"], [[0.0, 1.0]])


def test_probabilities_with_temperature():
    teacher = TeacherLogits(np.array(["a"], object), np.array(["b"], object),
                            np.array([[0.0, np.log(3.0)]], np.float32))
    np.testing.assert_allclose(teacher.probabilities(), [[0.25, 0.75]], rtol=1e-6)
    np.testing.assert_allclose(teacher.probabilities(2.0), [[1 / (1 + 3 ** 0.5),
                                                             3 ** 0.5 / (1 + 3 ** 0.5)]],
                               rtol=1e-6)
