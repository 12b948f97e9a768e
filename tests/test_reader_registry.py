"""Tests of the reader registry (`prectr_tf.data.readers`)."""

import pytest

from prectr_tf.data import readers
from prectr_tf.data.readers.jdsearch import read_jdsearch
from prectr_tf.data.validation import DataError


def test_registry_names():
    assert sorted(readers.READERS) == ["esci", "homedepot", "jdsearch", "kuaisar",
                                       "trec_session"]
    assert readers.READERS["jdsearch"] is read_jdsearch


def test_read_dataset_passes_arguments(tmp_path):
    # Reaching the reader with its keyword arguments: it looks for its file.
    with pytest.raises(DataError, match="valid_per_query_quid.txt: file not found"):
        readers.read_dataset("trec_session", tmp_path, split="valid")


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="unknown dataset 'amazon'; valid names: esci, "
                                         "homedepot, jdsearch, kuaisar, trec_session"):
        readers.read_dataset("amazon", "anywhere")
