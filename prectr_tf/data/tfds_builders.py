"""TensorFlow Datasets builders for the real public datasets.

Importing this module registers `prectr_homedepot` and `prectr_trec_session`.
Both are manual-download datasets: their terms allow research use but not
redistribution, so TFDS reads the user's own copy from `manual_dir` with the
package's readers (`prectr_tf.data.readers`) and stores the impression log,
one example per impression, with the features of `DataSchema.log_fields()`
(labels a dataset lacks are -1, `MISSING_LABEL`).

Example:
>>> import tensorflow_datasets as tfds
>>> import prectr_tf.data.tfds_builders  # registers the builders
>>> ds = tfds.load(
...     "prectr_trec_session", split="validation", data_dir=f"{tmp}/tfds",
...     download_and_prepare_kwargs={"download_config": tfds.download.DownloadConfig(
...         manual_dir=f"{shared_data}/trec2014_session")})  # doctest: +ELLIPSIS
Downloading and preparing dataset ...
Dataset prectr_trec_session downloaded and prepared to .... Subsequent calls will reuse this data.
>>> int(ds.cardinality()), sorted(next(iter(ds)))[:3]
(3610, ['click', 'impression_id', 'item_category'])
"""

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from prectr_tf.data.readers import read_dataset
from prectr_tf.data.schema import FLOAT32, INT64, STRING, DataSchema

_DTYPES = {STRING: tf.string, INT64: np.int64, FLOAT32: np.float32}


def log_features(schema):
    """The TFDS features of one impression, derived from `schema`.

    Args:
        schema: the `DataSchema`.

    Returns:
        A `tfds.features.FeaturesDict` with one tensor per log field: scalars,
        and `item_features` as a float32 vector when the schema has any.
    """
    return tfds.features.FeaturesDict({
        f.name: tfds.features.Tensor(
            shape=(schema.num_item_features,) if f.vector else (), dtype=_DTYPES[f.dtype])
        for f in schema.log_fields()})


class _ImpressionLogBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Shared body: a reader's log, one TFDS split per `SPLITS` entry.

    Subclasses set `READER` (a `READERS` key), `SPLITS` (`{tfds split: reader
    keyword arguments}`), `DESCRIPTION`, `HOMEPAGE`, `CITATION` and
    `MANUAL_DOWNLOAD_INSTRUCTIONS`.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Impression log of the data contract (DESIGN §3)."}
    SCHEMA = DataSchema()
    READER = None
    SPLITS = {}
    DESCRIPTION = HOMEPAGE = CITATION = ""

    def _info(self):
        # The log is in time order and histories are built from that order:
        # TFDS must not shuffle it.
        return tfds.core.DatasetInfo(
            builder=self, description=self.DESCRIPTION, features=log_features(self.SCHEMA),
            homepage=self.HOMEPAGE, citation=self.CITATION, disable_shuffling=True)

    def _split_generators(self, dl_manager):
        return {split: self._generate_examples(dl_manager.manual_dir, kwargs)
                for split, kwargs in self.SPLITS.items()}

    def _generate_examples(self, data_dir, reader_kwargs):
        # A TFDS dataset has no rejects file, so a bad row stops the build
        # (with file, row and field) instead of vanishing from it.
        frame, _ = read_dataset(self.READER, data_dir, schema=self.SCHEMA,
                                on_bad_row="raise", **reader_kwargs)
        for record in frame[list(self.SCHEMA.log_columns())].to_dict("records"):
            yield record["impression_id"], record


class PrectrHomedepot(_ImpressionLogBuilder):
    """Home Depot Product Search Relevance (Kaggle 2016) as an impression log."""

    READER = "homedepot"
    SPLITS = {"train": {}}
    DESCRIPTION = ("Home Depot query-title pairs with mean human relevance ratings, as the "
                   "prectr_tf impression log (no users or clicks; see "
                   "prectr_tf.data.readers.homedepot).")
    HOMEPAGE = "https://www.kaggle.com/c/home-depot-product-search-relevance"
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Download `train.csv.zip` of the Kaggle competition 'Home Depot Product Search "
        "Relevance' (accept its rules) and put it, unzipped no further, in `manual_dir`.")


class PrectrTrecSession(_ImpressionLogBuilder):
    """TREC 2014 Session Track clicks and grades (GraphCM preparation)."""

    READER = "trec_session"
    SPLITS = {"train": {"split": "train"}, "validation": {"split": "valid"},
              "test": {"split": "test"}}
    DESCRIPTION = ("TREC 2014 Session Track result pages with clicks and human grades, as the "
                   "prectr_tf impression log (10 impressions per page; see "
                   "prectr_tf.data.readers.trec_session).")
    HOMEPAGE = "https://github.com/CHIANGEL/GraphCM"
    CITATION = """@inproceedings{lin2021graph,
  title={A Graph-Enhanced Click Model for Web Search},
  author={Lin, Jianghao and Liu, Weiwen and Dai, Xinyi and Zhang, Weinan and Li, Shuai
          and Tang, Ruiming and He, Xiuqiang and Hao, Jianye and Yu, Yong},
  booktitle={SIGIR}, year={2021}}"""
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Put GraphCM's prepared TREC 2014 Session Track files in `manual_dir`: "
        "`{train,valid,test}_per_query_quid.txt`, "
        "`human_label_for_GraphCM_per_query_quid.txt`, `query_qid.dict`, `url_uid.dict`, "
        "`vtype_vid.dict` (from the GraphCM repository).")
