"""Amazon Shopping Queries (ESCI, KDD Cup 2022).

Published format (github.com/amazon-science/esci-data,
`shopping_queries_dataset/`):

* `shopping_queries_dataset_examples.parquet`: `example_id, query, query_id,
  product_id, product_locale, esci_label, small_version, large_version,
  split` — one judged (query, product) pair per row; `esci_label` is E
  (exact), S (substitute), C (complement) or I (irrelevant); `small_version`
  / `large_version` (0/1) select the Task 1 / Task 2-3 subsets; `split` is
  train or test.
* `shopping_queries_dataset_products.parquet`: `product_id, product_title,
  product_description, product_bullet_point, product_brand, product_color,
  product_locale`, joined on `(product_locale, product_id)`.

How the format maps onto the impression log (ESCI has human grades and real
product text, but no users, clicks, ranks or time):

* one example -> one impression, `impression_id` = `esci:<example_id>`;
* `request_id` = `esci:<query_id>`: a query's judged products form one page;
  `user_id` is the same string, one anonymous user per query, so there is no
  user history and no cross-user context (each query is asked once);
* `timestamp` = `query_id` — it only orders requests (rows are sorted by it);
  `position` = the example's order within its query in the file (ESCI lists
  are judgement pools, not rankings);
* `item_id` = `product_id`, `item_title` = `product_title` ("" when the
  product file lacks the product); `item_category` = "" (ESCI has none);
* `click` missing; `relevance` = E/S/C/I -> grades 3/2/1/0 -> levels
  `min(grade, K - 1)` (K=4: 3/2/1/0).
"""

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from prectr_tf.data.readers import _common
from prectr_tf.data.schema import DataSchema
from prectr_tf.data.validation import DataError

EXAMPLES_FILE = "shopping_queries_dataset_examples.parquet"
PRODUCTS_FILE = "shopping_queries_dataset_products.parquet"
EXAMPLE_COLUMNS = ("example_id", "query", "query_id", "product_id", "product_locale",
                   "esci_label", "small_version", "large_version", "split")
PRODUCT_COLUMNS = ("product_id", "product_title", "product_locale")
ESCI_GRADES = {"E": 3, "S": 2, "C": 1, "I": 0}
VERSIONS = ("small", "large", None)
SPLITS = ("train", "test", None)


def read_esci(data_dir, schema=DataSchema(), version="small", split="train", locale=None,
              on_bad_row="reject"):
    """Read the Shopping Queries dataset into the impression log.

    Args:
        data_dir: the `shopping_queries_dataset` directory.
        schema: the `DataSchema` (K sets the grade -> level mapping).
        version: `"small"` (Task 1), `"large"` (Tasks 2-3) or None (all rows).
        split: `"train"`, `"test"` or None (both).
        locale: `"us"`, `"es"`, `"jp"` or None (all).
        on_bad_row: `"reject"` or `"raise"`.

    Returns:
        `(frame, report)` as `validate_log` returns them; `_source` is the
        examples file and `_row` the example's 1-based row in it.

    Example:
    (ESCI is not in `../shared/data`, so this one cannot run here.)

    >>> frame, _ = read_esci("esci-data/shopping_queries_dataset",
    ...                      locale="us")  # doctest: +SKIP
    >>> frame["relevance"].value_counts().sort_index().index.tolist()  # doctest: +SKIP
    [0, 1, 2, 3]
    """
    if version not in VERSIONS or split not in SPLITS:
        raise ValueError(f"version must be one of {VERSIONS} and split one of {SPLITS}, "
                         f"got {version!r}, {split!r}")
    errors = _common.FormatErrors(on_bad_row)
    path = _common.find_file(data_dir, EXAMPLES_FILE)
    examples = _read_parquet(path, EXAMPLE_COLUMNS)
    products = _read_parquet(_common.find_file(data_dir, PRODUCTS_FILE), PRODUCT_COLUMNS)
    examples["_row"] = np.arange(1, len(examples) + 1)
    keep = np.ones(len(examples), dtype=bool)
    if version is not None:
        keep &= examples[f"{version}_version"].to_numpy() == 1
    if split is not None:
        keep &= (examples["split"] == split).to_numpy()
    if locale is not None:
        keep &= (examples["product_locale"] == locale).to_numpy()
    examples = examples[keep]

    grades = examples["esci_label"].map(ESCI_GRADES)
    for row, label in zip(examples["_row"][grades.isna()], examples["esci_label"][grades.isna()]):
        errors(path, row, "esci_label", f"not one of {sorted(ESCI_GRADES)}", label)
    examples = examples[grades.notna()].assign(grade=grades[grades.notna()])

    key = ["product_locale", "product_id"]
    titles = products.drop_duplicates(key).set_index(key)["product_title"]
    title = pd.Series(titles.reindex(pd.MultiIndex.from_frame(examples[key])).to_numpy(),
                      dtype=object).fillna("")
    request = "esci:" + examples["query_id"].astype(str)
    columns = {
        "impression_id": "esci:" + examples["example_id"].astype(str),
        "request_id": request,
        "user_id": request,
        "query": examples["query"],
        "item_id": examples["product_id"],
        "item_title": title.to_numpy(),
        "item_category": "",
        "position": examples.groupby("query_id", sort=False).cumcount(),
        "timestamp": examples["query_id"],
        "click": None,
        "relevance": _common.grade_to_level(examples["grade"], schema),
    }
    columns = {name: (value.to_numpy() if isinstance(value, pd.Series) else value)
               for name, value in columns.items()}
    return _common.to_log(columns, schema, path, examples["_row"].to_numpy(), errors,
                          out_of_order="sort")


def _read_parquet(path, columns):
    """The named columns of a parquet file; a missing column is a `DataError`."""
    try:
        present = pq.read_schema(path).names
    except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
        raise DataError(f"cannot read parquet: {err}", source=path) from err
    missing = [c for c in columns if c not in present]
    if missing:
        raise DataError(f"missing column(s) {missing} of the published format",
                        source=path, field=missing[0])
    return pd.read_parquet(path, columns=list(columns))
