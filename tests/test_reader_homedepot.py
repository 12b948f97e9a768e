import pathlib
import zipfile

import numpy as np
import pandas as pd
import pytest

from prectr_tf.data.readers.homedepot import (
    normalize_query_text, read_homedepot, read_homedepot_pairs, relevance_level_from_mean_rating)
from prectr_tf.data.query_normalization import query_ids_for
from prectr_tf.data.schema import DataSchema
from prectr_tf.data.validation import validate_log

HOMEDEPOT_DIR = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data" / "homedepot"
needs_data = pytest.mark.skipif(
    not (HOMEDEPOT_DIR / "train.csv.zip").is_file(),
    reason=f"real Home Depot data not found at {HOMEDEPOT_DIR}")


def _write_zip(directory, rows):
    frame = pd.DataFrame(rows, columns=["id", "product_uid", "product_title", "search_term",
                                        "relevance"])
    text = frame.to_csv(index=False)
    with zipfile.ZipFile(directory / "train.csv.zip", "w") as archive:
        archive.writestr("train.csv", text.encode("ISO-8859-1"))
    return directory


@pytest.mark.parametrize("rating, level", [
    (1.0, 0), (1.25, 0), (1.33, 0), (1.5, 1), (1.67, 1), (1.75, 1),
    (2.0, 2), (2.25, 2), (2.33, 2), (2.5, 3), (2.67, 3), (2.75, 3), (3.0, 3)])
def test_mapping_k4_hand_computed(rating, level):
    assert relevance_level_from_mean_rating(rating) == level


def test_mapping_is_vectorised_and_uniform_for_other_k():
    ratings = np.array([1.0, 1.33, 1.67, 2.0, 2.33, 2.67, 3.0])
    # K=2: [1, 2) -> 0, [2, 3] -> 1.
    assert relevance_level_from_mean_rating(ratings, 2).tolist() == [0, 0, 0, 1, 1, 1, 1]
    # K=3: bins [1, 5/3), [5/3, 7/3), [7/3, 3]; 1.67 > 5/3 and 2.33 < 7/3.
    assert relevance_level_from_mean_rating(ratings, 3).tolist() == [0, 0, 1, 1, 1, 2, 2]
    assert relevance_level_from_mean_rating(ratings).dtype == np.int64


@pytest.mark.parametrize("bad", [0.9, 3.01, np.nan])
def test_mapping_rejects_out_of_range(bad):
    with pytest.raises(ValueError, match="mean ratings"):
        relevance_level_from_mean_rating([2.0, bad])


def test_missing_file_names_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "train.csv.zip")):
        read_homedepot_pairs(tmp_path)


def test_log_from_tiny_file(tmp_path):
    _write_zip(tmp_path, [
        (2, 100001, "Simpson Angle", "angle bracket", 3.0),
        (3, 100001, "Simpson Angle", "l bracket", 2.5),
        (9, 100002, "Deck Cover", "Angle  Bracket ", 1.33),  # normalises to request 0
        (16, 100005, "Shower Head Café", "rain shower head", 2.0),
    ])
    log, report = read_homedepot(tmp_path)
    assert report.count == 0
    assert tuple(log.columns[:-2]) == DataSchema().log_columns()
    assert log["_row"].tolist() == [1, 3, 2, 4]  # CSV records, for error messages
    assert log["impression_id"].tolist() == ["hd-2", "hd-9", "hd-3", "hd-16"]
    assert log["request_id"].tolist() == ["hd-q0", "hd-q0", "hd-q1", "hd-q2"]
    assert (log["user_id"] == log["request_id"]).all()
    # The request keeps its first raw spelling; time = smallest id of the request.
    assert log["query"].tolist() == ["angle bracket", "angle bracket", "l bracket",
                                     "rain shower head"]
    assert log["timestamp"].tolist() == [2, 2, 3, 16]
    assert log["position"].tolist() == [0, 1, 0, 0]
    assert log["relevance"].tolist() == [3, 0, 3, 2]
    assert (log["click"] == -1).all()  # missing, not "not clicked"
    assert log["item_title"].iloc[3] == "Shower Head Café"  # ISO-8859-1 decoded
    assert (log["item_category"] == "").all()
    assert log["item_id"].tolist() == ["100001", "100002", "100001", "100005"]


def test_item_features_schema_rejected(tmp_path):
    _write_zip(tmp_path, [(2, 100001, "A", "a", 3.0)])
    with pytest.raises(ValueError, match="num_item_features"):
        read_homedepot(tmp_path, DataSchema(num_item_features=2))


@needs_data
def test_real_pairs():
    pairs = read_homedepot_pairs(HOMEDEPOT_DIR)
    assert len(pairs) == 74_067
    assert pairs["search_term"].nunique() == 11_795
    assert pairs["product_uid"].nunique() == 54_667
    assert np.bincount(pairs["level"], minlength=4).tolist() == [5115, 6794, 27801, 34357]


@needs_data
def test_real_log_passes_validation():
    schema = DataSchema()
    log, report = read_homedepot(HOMEDEPOT_DIR, schema)
    assert report.count == 0 and len(log) == 74_067
    assert log["request_id"].nunique() == 11_793  # normalised search terms
    assert log["timestamp"].is_monotonic_increasing
    # The simulator's pandas normalisation agrees with the TF rule everywhere.
    pairs = read_homedepot_pairs(HOMEDEPOT_DIR)
    assert (pd.factorize(normalize_query_text(pairs["search_term"]))[0]
            == pd.factorize(query_ids_for(pairs["search_term"].to_numpy(dtype=object)))[0]).all()

