"""Tests of the Amazon Shopping Queries (ESCI) reader.

ESCI is not available offline here, so every test writes small parquet files
in exactly the published format of github.com/amazon-science/esci-data
(`shopping_queries_dataset/README.md`): the examples file with `example_id,
query, query_id, product_id, product_locale, esci_label, small_version,
large_version, split` and the products file with `product_id, product_title,
product_description, product_bullet_point, product_brand, product_color,
product_locale`. The rows are invented; the values are not real data.
"""

import pandas as pd
import pytest

from prectr_tf.data.readers.esci import read_esci
from prectr_tf.data.schema import DataSchema
from prectr_tf.data.validation import DataError

EXAMPLES = "shopping_queries_dataset_examples.parquet"
PRODUCTS = "shopping_queries_dataset_products.parquet"
EXAMPLE_ROWS = [
    # example_id, query, query_id, product_id, locale, label, small, large, split
    (0, "revent 80 cfm", 0, "B000MOO21W", "us", "I", 0, 1, "train"),
    (1, "revent 80 cfm", 0, "B07X3Y6B1V", "us", "E", 0, 1, "train"),
    (16, "!qscreen fence", 1, "B07DHX8YH6", "us", "S", 1, 1, "train"),
    (17, "!qscreen fence", 1, "B07FQVWVJ9", "us", "C", 1, 1, "train"),
    (18, "!qscreen fence", 1, "B00NOTLISTED", "us", "E", 1, 1, "train"),
    (30, "# 10 sobres", 3, "B07DHX8YH6", "es", "E", 1, 1, "test"),
]
PRODUCT_ROWS = [
    ("B000MOO21W", "Panasonic FV-20VQ3 WhisperCeiling 190 CFM", "", "", "Panasonic", "White", "us"),
    ("B07X3Y6B1V", "Homewerks 7141-80 Bathroom Fan", "", "", "Homewerks", "White", "us"),
    ("B07DHX8YH6", "Fence Privacy Screen 4 x 50", "", "", "Amgo", "Green", "us"),
    ("B07DHX8YH6", "Sobres de papel", "", "", "Marca", "Blanco", "es"),
    ("B07FQVWVJ9", "Zip Ties 100 pack", "", "", "Ties", "Black", "us"),
]


def _write(directory, examples=EXAMPLE_ROWS, products=PRODUCT_ROWS):
    pd.DataFrame(examples, columns=["example_id", "query", "query_id", "product_id",
                                    "product_locale", "esci_label", "small_version",
                                    "large_version", "split"]).to_parquet(directory / EXAMPLES)
    pd.DataFrame(products, columns=["product_id", "product_title", "product_description",
                                    "product_bullet_point", "product_brand", "product_color",
                                    "product_locale"]).to_parquet(directory / PRODUCTS)
    return directory


def test_large_train_mapping(tmp_path):
    frame, report = read_esci(_write(tmp_path), version="large", split="train")
    assert report.count == 0
    assert frame["impression_id"].tolist() == ["esci:0", "esci:1", "esci:16", "esci:17",
                                               "esci:18"]
    assert frame["relevance"].tolist() == [0, 3, 2, 1, 3]  # I, E, S, C, E
    assert (frame["click"] == -1).all()
    assert frame["request_id"].tolist() == ["esci:0"] * 2 + ["esci:1"] * 3
    assert frame["user_id"].tolist() == frame["request_id"].tolist()
    assert frame["position"].tolist() == [0, 1, 0, 1, 2]
    assert frame["timestamp"].tolist() == [0, 0, 1, 1, 1]
    # Titles join on (locale, id): B07DHX8YH6 has a us and an es title.
    assert frame["item_title"].tolist() == [
        "Panasonic FV-20VQ3 WhisperCeiling 190 CFM", "Homewerks 7141-80 Bathroom Fan",
        "Fence Privacy Screen 4 x 50", "Zip Ties 100 pack", ""]
    assert frame["_row"].tolist() == [1, 2, 3, 4, 5]


def test_filters_keep_file_rows(tmp_path):
    _write(tmp_path)
    frame, _ = read_esci(tmp_path)  # small, train
    assert frame["_row"].tolist() == [3, 4, 5]
    frame, _ = read_esci(tmp_path, version=None, split="test", locale="es")
    assert frame["item_title"].tolist() == ["Sobres de papel"] and frame["_row"].tolist() == [6]


def test_fewer_levels(tmp_path):
    frame, _ = read_esci(_write(tmp_path), schema=DataSchema(num_relevance_levels=2),
                         version=None, split=None)
    assert frame["relevance"].tolist() == [0, 1, 1, 1, 1, 1]


def test_unknown_label_is_rejected_with_file_row_field(tmp_path):
    rows = EXAMPLE_ROWS[:3] + [(17, "!qscreen fence", 1, "B07FQVWVJ9", "us", "exact", 1, 1,
                                "train")]
    frame, report = read_esci(_write(tmp_path, rows), version=None)
    assert frame["_row"].tolist() == [1, 2, 3]
    [r] = report.rejections
    assert (r.source, r.row, r.field, r.value) == (str(tmp_path / EXAMPLES), 4, "esci_label",
                                                   "exact")
    with pytest.raises(DataError, match=r"row 4, field 'esci_label'"):
        read_esci(tmp_path, version=None, on_bad_row="raise")


def test_empty_query_is_rejected(tmp_path):
    rows = [(0, " ", 0, "B000MOO21W", "us", "E", 1, 1, "train")]
    frame, report = read_esci(_write(tmp_path, rows))
    assert len(frame) == 0 and report.rejections[0].field == "query"


def test_missing_column_names_file_and_field(tmp_path):
    _write(tmp_path)
    pd.read_parquet(tmp_path / EXAMPLES).drop(columns="esci_label").to_parquet(
        tmp_path / EXAMPLES)
    with pytest.raises(DataError, match=r"file .*examples.parquet, field 'esci_label'"):
        read_esci(tmp_path)


def test_truncated_parquet_is_a_data_error(tmp_path):
    _write(tmp_path)
    data = (tmp_path / EXAMPLES).read_bytes()
    (tmp_path / EXAMPLES).write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="cannot read parquet"):
        read_esci(tmp_path)


@pytest.mark.parametrize("missing", [EXAMPLES, PRODUCTS])
def test_missing_file_names_path(tmp_path, missing):
    _write(tmp_path)
    (tmp_path / missing).unlink()
    with pytest.raises(DataError, match=f"file {tmp_path / missing}: file not found"):
        read_esci(tmp_path)
