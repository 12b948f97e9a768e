"""Tests of the TFDS builders `prectr_homedepot` and `prectr_trec_session`.

They prepare the full datasets from `$PRECTR_SHARED_DATA` (default
`<repo>/../shared/data`) into a temporary TFDS data_dir, offline, once per
module (about 25 s for Home Depot's 74,067 rows, 10 s for TREC).
"""

import os
import pathlib

import pytest
import tensorflow_datasets as tfds

import prectr_tf.data.tfds_builders as builders
from prectr_tf.data.schema import DataSchema
from prectr_tf.data.validation import DataError

SHARED = pathlib.Path(os.environ.get(
    "PRECTR_SHARED_DATA", pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def _needs(path):
    return pytest.mark.skipif(not (SHARED / path).is_file(),
                              reason=f"{SHARED / path} not found (set PRECTR_SHARED_DATA)")


def _load(name, manual_dir, data_dir, **kwargs):
    return tfds.load(name, data_dir=str(data_dir), with_info=True, download_and_prepare_kwargs={
        "download_config": tfds.download.DownloadConfig(manual_dir=str(manual_dir))}, **kwargs)


def test_features_derive_from_schema():
    schema = DataSchema(num_item_features=3)
    features = builders.log_features(schema)
    assert list(features.keys()) == list(schema.log_columns())
    assert features["item_features"].shape == (3,)
    assert "item_features" not in builders.log_features(DataSchema()).keys()


@_needs("homedepot/train.csv.zip")
def test_homedepot(tmp_path_factory):
    ds, info = _load("prectr_homedepot", SHARED / "homedepot", tmp_path_factory.mktemp("tfds"),
                     split="train")
    assert list(info.splits.keys()) == ["train"]
    assert info.splits["train"].num_examples == 74_067
    first = next(iter(ds.take(1)))
    assert int(first["click"]) == -1  # Home Depot has no clicks: missing, not 0
    assert 0 <= int(first["relevance"]) < 4
    assert first["item_title"].numpy()


@_needs("trec2014_session/train_per_query_quid.txt")
def test_trec_session(tmp_path_factory):
    splits, info = _load("prectr_trec_session", SHARED / "trec2014_session",
                         tmp_path_factory.mktemp("tfds"))
    counts = {name: split.num_examples for name, split in info.splits.items()}
    assert counts == {"train": 28_720, "validation": 3_610, "test": 3_630}
    # Not shuffled: the first examples are line 1's page in rank order.
    page = list(splits["train"].take(10).as_numpy_iterator())
    assert [p["impression_id"] for p in page] == [f"trec:train:1:{i}".encode() for i in range(10)]
    assert page[0]["query"] == b"SUNY" and page[0]["timestamp"] == 1
    clicks = splits["train"].map(lambda x: x["click"]).batch(50_000)
    assert int(next(iter(clicks)).numpy().sum()) == 1293


def test_missing_file_in_manual_dir_names_it(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    (manual / "README").write_text("not the release")
    with pytest.raises(DataError, match="train_per_query_quid.txt: file not found"):
        _load("prectr_trec_session", manual, tmp_path / "tfds")
