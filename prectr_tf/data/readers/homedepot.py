"""Reader for the Home Depot Product Search Relevance data (Kaggle, 2016).

The training split (`train.csv.zip`, ISO-8859-1 CSV inside a zip) holds
74,067 real (search term, product title) pairs, each graded by about three
human raters; `relevance` is their mean rating in [1, 3] (1 irrelevant,
2 partially, 3 perfectly relevant), so it takes the values
1, 1.33, 1.67, 2, 2.33, 2.67, 3 and, for the few pairs rated by four people,
1.25, 1.5, 1.75, 2.25, 2.5, 2.75.

`read_homedepot` turns the pairs into the impression log of the data contract
(DESIGN §3). Home Depot has no users, clicks or time, so the log is built
as follows — each choice is the simplest one that keeps the contract
(`prectr_tf.data.validation` rejects a request whose rows disagree on user,
query or timestamp):

* one judged pair = one impression; `impression_id` = `"hd-<id>"`;
* one **request per normalised search term** (the `query_id` of
  `prectr_tf.data.query_normalization`, the rule the builder and serving use);
  `request_id` = `"hd-q<n>"`, n counting normalised terms in order of first
  appearance in the file;
* `user_id` = one pseudo-user per request, `"hd-q<n>"`: every user has a
  single request, so every impression is cold-start (no user history), and no
  request has cross-user context — Home Depot says nothing about users;
* `query` = the raw search term of the request's first pair (two raw spellings
  normalise to an existing term; they join its request under its spelling);
* `timestamp` = the smallest `id` of the request's pairs: ids follow the file
  order, so time order is file order and all rows of a request share it;
* `position` = 0-based rank of the pair within its request in file order
  (there is no real ranking: it only orders the page);
* `click` = missing (nullable `Int64` `<NA>`): nobody clicked anything;
* `relevance` = the mean rating mapped to a level by
  `relevance_level_from_mean_rating` (nullable `Int64`);
* `item_id` = the `product_uid`; `item_title` = the product title;
  `item_category` = `""` (the training file has no category).

The log is sorted by (timestamp, position), so each request is contiguous.
"""

import os
import zipfile

import numpy as np
import pandas as pd

from prectr_tf.data.query_normalization import query_ids_for
from prectr_tf.data.schema import DataSchema
from prectr_tf.data.validation import validate_log

FILE_NAME = "train.csv.zip"
NUM_PAIRS = 74_067
RAW_COLUMNS = ("id", "product_uid", "product_title", "search_term", "relevance")
MIN_RATING = 1.0
MAX_RATING = 3.0


def relevance_level_from_mean_rating(mean_rating, num_levels=4):
    """Map Home Depot mean ratings in [1, 3] to relevance levels in [0, K).

    The one mapping the package uses: [1, 3] is cut into `num_levels` equal
    half-open bins, the last one closed. For K=4 the bins are

    | mean rating | level | raters (of 3) |
    |---|---|---|
    | 1, 1.25, 1.33 (< 1.5) | 0 | at most one said "partially" |
    | 1.5, 1.67, 1.75 ([1.5, 2)) | 1 | leaning irrelevant |
    | 2, 2.25, 2.33 ([2, 2.5)) | 2 | partially relevant |
    | 2.5, 2.67, 2.75, 3 (>= 2.5) | 3 | most said "perfect" |

    Why: the bins sit halfway between the rating steps of three raters
    (multiples of 1/3), so no observed value lies on a boundary and each level
    is a distinct rater consensus; equal widths keep the mapping free of tuned
    thresholds. Level counts on the training split are 5,115 / 6,794 /
    27,801 / 34,357.

    Args:
        mean_rating: float or array of mean ratings in [1, 3].
        num_levels: K, the number of relevance levels (>= 2).

    Returns:
        int64 array (0-d for a scalar) of levels in [0, K).

    Example:
    >>> relevance_level_from_mean_rating([1.0, 1.33, 1.67, 2.0, 2.33, 2.67, 3.0]).tolist()
    [0, 0, 1, 2, 2, 3, 3]
    >>> relevance_level_from_mean_rating([1.0, 2.0, 3.0], num_levels=2).tolist()
    [0, 1, 1]
    """
    if num_levels < 2:
        raise ValueError(f"num_levels must be >= 2, got {num_levels}")
    rating = np.asarray(mean_rating, dtype=np.float64)
    bad = ~((rating >= MIN_RATING) & (rating <= MAX_RATING))  # also catches NaN
    if np.any(bad):
        raise ValueError(f"mean ratings must lie in [{MIN_RATING}, {MAX_RATING}], got "
                         f"{np.asarray(rating)[bad].ravel()[:5].tolist()}")
    # (rating - 1) * K / 2 rather than dividing by the bin width keeps the
    # K=4 boundaries 1.5, 2.0, 2.5 exact in floating point.
    level = np.floor((rating - MIN_RATING) * num_levels / (MAX_RATING - MIN_RATING))
    return np.minimum(level, num_levels - 1).astype(np.int64)


def read_homedepot_pairs(data_dir, num_levels=4):
    """Read the raw judged pairs of `<data_dir>/train.csv.zip`.

    Args:
        data_dir: folder holding `train.csv.zip` (e.g. `../shared/data/homedepot`).
        num_levels: K for the `level` column.

    Returns:
        DataFrame with `id, product_uid` (int64), `product_title,
        search_term` (str), `relevance` (float64, the mean rating) and
        `level` (int64, `relevance_level_from_mean_rating`), in file order.

    Example:
    >>> pairs = read_homedepot_pairs(f"{shared_data}/homedepot")
    >>> len(pairs)
    74067
    """
    path = os.path.join(os.fspath(data_dir), FILE_NAME)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"Home Depot training file not found: {path} (expected the Kaggle "
            f"'{FILE_NAME}' of the Home Depot Product Search Relevance competition)")
    with zipfile.ZipFile(path) as archive:
        csv_names = [n for n in archive.namelist() if n.endswith(".csv")]
        if len(csv_names) != 1:
            raise ValueError(f"{path}: expected one CSV inside, found {archive.namelist()}")
        with archive.open(csv_names[0]) as fh:
            pairs = pd.read_csv(fh, encoding="ISO-8859-1",
                                dtype={"product_title": str, "search_term": str})
    missing = [c for c in RAW_COLUMNS if c not in pairs.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; found {list(pairs.columns)}")
    pairs = pairs[list(RAW_COLUMNS)].astype({"id": np.int64, "product_uid": np.int64,
                                             "relevance": np.float64})
    pairs["level"] = relevance_level_from_mean_rating(pairs["relevance"].to_numpy(), num_levels)
    return pairs


def normalize_query_text(queries):
    """Lower-case, collapse whitespace runs to one space, strip: the pandas
    twin of `query_normalization.normalize_query` for the simulator, which
    stays free of TensorFlow (tests check the two agree on Home Depot)."""
    return (pd.Series(queries, dtype=str).str.lower()
            .str.replace(r"\s+", " ", regex=True).str.strip())


def read_homedepot(data_dir, schema=DataSchema(), on_bad_row="reject"):
    """Read Home Depot as an impression log in the contract (module docstring).

    Args:
        data_dir: folder holding `train.csv.zip`.
        schema: the `DataSchema`; K (`num_relevance_levels`) sets the level
            mapping. `item_features` is not produced: pass a schema with
            `num_item_features=0` (the default).
        on_bad_row: `"reject"` or `"raise"` (see `validate_log`).

    Returns:
        `(frame, report)` from `validate_log`: 74,067 rows for the published
        file, rows named by their CSV record number; `click` is -1 (missing)
        everywhere.

    Example:
    >>> log, report = read_homedepot(f"{shared_data}/homedepot")
    >>> bool((log["click"] == -1).all())
    True
    """
    if schema.num_item_features:
        raise ValueError("Home Depot has no item features: use a DataSchema with "
                         f"num_item_features=0, got {schema.num_item_features}")
    pairs = read_homedepot_pairs(data_dir, schema.num_relevance_levels)
    # codes in order of first appearance
    request = pd.factorize(query_ids_for(pairs["search_term"].to_numpy(dtype=object)))[0]
    by_request = pairs.groupby(request, sort=False)
    request_ids = pd.Series(request).map(lambda n: f"hd-q{n}").to_numpy(dtype=object)
    log = pd.DataFrame({
        "impression_id": "hd-" + pairs["id"].astype(str),
        "request_id": request_ids,
        "user_id": request_ids,
        "query": by_request["search_term"].transform("first"),
        "item_id": pairs["product_uid"].astype(str),
        "item_title": pairs["product_title"],
        "item_category": "",
        "position": by_request.cumcount().astype(np.int64),
        "timestamp": by_request["id"].transform("min").astype(np.int64),
        "click": pd.array([pd.NA] * len(pairs), dtype="Int64"),
        "relevance": pd.array(pairs["level"], dtype="Int64"),
    })
    log = log.astype({c: str for c in ("impression_id", "request_id", "user_id", "query",
                                       "item_id", "item_title", "item_category")})
    log = log.sort_values(["timestamp", "position"], kind="stable")
    file_rows = log.index.to_numpy() + 1  # to name a bad row by its CSV record
    log = log[list(schema.log_columns())].reset_index(drop=True)
    return validate_log(log, schema, source=os.path.join(os.fspath(data_dir), FILE_NAME),
                        rows=file_rows, on_bad_row=on_bad_row)
