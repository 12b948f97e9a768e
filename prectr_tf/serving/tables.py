"""What an export carries besides the weights (DESIGN §6): the catalogue of
known items and the cross-user query context, both read from a built dataset.

* `ItemCatalogue`: every item of the dataset with its latest title, category
  and dense features, so a request may send only candidate ids.
* `QueryContextTable`: per normalised query, its latest `context_length +
  reserve` events (all users), oldest first, with each event's user. At
  serving the requesting user's own events are dropped and the latest
  `context_length` of the rest kept: the same own-user-free context the
  builder gives a training example (`prectr_tf.data.histories`), as of export
  time. Exact unless the user has more than `reserve` of the stored events;
  then the context is shorter.
"""

import dataclasses

import numpy as np

from prectr_tf.data.schema import EVENT_FIELDS


@dataclasses.dataclass
class ItemCatalogue:
    """Known items, one row each.

    Attributes:
        item_id, item_title, item_category: `[I]` str arrays.
        item_features: float32 `[I, F]` (F may be 0).
    """

    item_id: np.ndarray
    item_title: np.ndarray
    item_category: np.ndarray
    item_features: np.ndarray

    def __len__(self):
        return len(self.item_id)


@dataclasses.dataclass
class QueryContextTable:
    """The latest events of each query, for the serving context.

    Attributes:
        query_id: int64 `[Q]`.
        events: `{event field: [Q, S]}` (`EVENT_FIELDS`), oldest first,
            padded with the schema's pad values after `length` entries.
        user_id: str `[Q, S]`, the user of each event ("" padding).
        length: int64 `[Q]`.
        context_length: L_g, what one request keeps.
    """

    query_id: np.ndarray
    events: dict
    user_id: np.ndarray
    length: np.ndarray
    context_length: int

    @property
    def width(self):
        return self.user_id.shape[1]


def catalogue_from_frame(frame, num_item_features=0):
    """An `ItemCatalogue` from a table of items (e.g. a product feed): one
    row per item, columns `item_id`, `item_title`, `item_category` and, when
    `num_item_features > 0`, `item_features` (a vector per row)."""
    missing = [c for c in ("item_id", "item_title", "item_category")
               if c not in frame.columns]
    if num_item_features and "item_features" not in frame.columns:
        missing.append("item_features")
    if missing:
        raise ValueError(f"the item table lacks the columns {missing}")
    if frame["item_id"].duplicated().any():
        raise ValueError("the item table has duplicate item_id values, e.g. "
                         f"{frame['item_id'][frame['item_id'].duplicated()].iloc[0]!r}")
    features = (np.stack(frame["item_features"].to_numpy()).astype(np.float32)
                if num_item_features else np.zeros((len(frame), 0), np.float32))
    if features.shape[1] != num_item_features:
        raise ValueError(f"item_features has width {features.shape[1]}, the schema "
                         f"{num_item_features}")
    return ItemCatalogue(*(frame[c].astype(str).to_numpy(dtype=object)
                           for c in ("item_id", "item_title", "item_category")), features)


def _schema(data_dir):
    from prectr_tf.data.build import read_dataset_info  # noqa: PLC0415
    from prectr_tf.data.schema import DataSchema  # noqa: PLC0415

    info = read_dataset_info(data_dir)
    return info, DataSchema(**info["schema"])


def dataset_rows(data_dir):
    """Every impression of a built dataset (train, then eval) with the columns
    the catalogue and the context table read, in one pass over the files:
    `{name: np.ndarray}`. Pass it to both so an export reads the data once."""
    from prectr_tf.data.pipeline import read_split_columns  # noqa: PLC0415 (imports TF)

    info, schema = _schema(data_dir)
    names = ["user_id", "item_title", *(f.name for f in EVENT_FIELDS)]
    if schema.num_item_features:
        names.append("item_features")
    parts = [read_split_columns(data_dir, split, names)
             for split in ("train", "eval") if split in info["splits"]]
    return {name: np.concatenate([p[name] for p in parts]) for name in names}


def item_catalogue(data_dir, rows=None):
    """The items of a built dataset (train and eval), each with its latest
    title, category and features; `rows`: `dataset_rows(data_dir)` if read
    already."""
    _, schema = _schema(data_dir)
    rows = dataset_rows(data_dir) if rows is None else rows
    order = np.argsort(rows["timestamp"], kind="stable")
    ids = rows["item_id"][order]
    # The last row of each item in time order: reverse, then first occurrence.
    _, last = np.unique(ids[::-1], return_index=True)
    pick = order[len(ids) - 1 - last]
    features = (rows["item_features"][pick].astype(np.float32) if schema.num_item_features
                else np.zeros((len(pick), 0), np.float32))
    return ItemCatalogue(rows["item_id"][pick].astype(object),
                         rows["item_title"][pick].astype(object),
                         rows["item_category"][pick].astype(object), features)


def query_context_table(data_dir, reserve=None, rows=None):
    """The export's `QueryContextTable` from a built dataset.

    Args:
        data_dir: the dataset (its train and eval impressions are the events;
            its build config says which count: all, or clicked only).
        reserve: extra events stored per query, so that dropping the
            requesting user's own still leaves L_g (default L_g).
        rows: `dataset_rows(data_dir)` if read already.
    """
    info, schema = _schema(data_dir)
    length = schema.context_length
    width = length + (length if reserve is None else int(reserve))
    rows = dataset_rows(data_dir) if rows is None else rows
    if info["config"]["history"]["context_events"] == "clicked":
        keep = rows["click"] == 1
        rows = {k: v[keep] for k, v in rows.items()}
    order = np.lexsort((rows["timestamp"], rows["query_id"]))  # stable: by query, then time
    query = rows["query_id"][order]
    keys, start, count = np.unique(query, return_index=True, return_counts=True)
    take = np.minimum(count, width)
    # Row q holds its query's last `take[q]` events, oldest first.
    j = np.arange(width)[None, :]
    src = (start + count - take)[:, None] + j
    valid = j < take[:, None]
    src = order[np.where(valid, src, 0)]
    events = {}
    for f in EVENT_FIELDS:
        pad = schema.padding_value(f.dtype)
        events[f.name] = np.where(valid, rows[f.name][src], pad).astype(rows[f.name].dtype)
    user = np.where(valid, rows["user_id"][src], "").astype(object)
    return QueryContextTable(keys.astype(np.int64), events, user, take.astype(np.int64), length)
