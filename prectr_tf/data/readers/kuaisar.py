"""KuaiSAR (Kuaishou unified search & recommendation, CIKM 2023): its search log.

Published format (kuaisar.github.io, github.com/Ethan00Si/KuaiSAR,
`pages/decriptions.md`): comma-separated CSV files with a header.

* `src_inter.csv`, one row per item shown in a search session:
  `user_id, search_session_id, search_session_time,
  search_session_timestamp, keyword, search_source, item_id, click_cnt,
  item_type`; `keyword` is a list of anonymised term ids written like
  `[20, 34, 3]`; `search_session_timestamp` is Unix milliseconds (stored as
  float64); `click_cnt` says whether the user clicked the item.
* `item_features.csv`: `item_id, caption` (term-id list like `keyword`),
  `author_id, item_type, upload_time, upload_type`, and
  `{first,second,third,fourth}_level_category_{id,name,name_en}`, where
  category id 0 means "empty". Search can show items (users, live streams)
  that have no row here.

How the format maps onto the impression log (the recommendation log,
`rec_inter.csv`, has no queries and is not read):

* one `src_inter.csv` row -> one impression, `impression_id` =
  `kuaisar:<row>`; `user_id` as published;
* `request_id` = `<user_id>:<search_session_id>`, the search session (one
  query and its results; keyed by user too, since the description does not
  say session ids are global); `timestamp` = `search_session_timestamp` (ms);
  rows are sorted by it;
* `position` = the row's order within its session in the file (the release
  logs no rank);
* `query` = the keyword term ids joined by spaces; `item_title` = the
  caption term ids joined by spaces; `item_category` = the deepest non-zero
  `*_level_category_id`; both "" for items without features;
* `click` = 1 when `click_cnt` > 0; `relevance` missing (KuaiSAR has no
  relevance grades).
"""

from prectr_tf.data.readers import _common
from prectr_tf.data.schema import DataSchema

SEARCH_FILE = "src_inter.csv"
ITEM_FILE = "item_features.csv"
SEARCH_COLUMNS = ("user_id", "search_session_id", "search_session_time",
                  "search_session_timestamp", "keyword", "search_source", "item_id",
                  "click_cnt", "item_type")
CATEGORY_LEVELS = ("first", "second", "third", "fourth")
ITEM_COLUMNS = ("item_id", "caption") + tuple(
    f"{level}_level_category_id" for level in CATEGORY_LEVELS)


def read_kuaisar(data_dir, schema=DataSchema(), on_bad_row="reject"):
    """Read KuaiSAR's search interactions into the impression log.

    Args:
        data_dir: the directory of the release (`src_inter.csv`,
            `item_features.csv`, ...).
        schema: the `DataSchema`.
        on_bad_row: `"reject"` or `"raise"`.

    Returns:
        `(frame, report)` as `validate_log` returns them; `_source` is
        `src_inter.csv` and `_row` the 1-based record number in it.

    Example:
    (KuaiSAR is not in `../shared/data`, so this one cannot run here.)

    >>> frame, report = read_kuaisar("KuaiSAR_final")  # doctest: +SKIP
    >>> frame["relevance"].eq(-1).all()  # doctest: +SKIP
    True
    """
    errors = _common.FormatErrors(on_bad_row)
    path = _common.find_file(data_dir, SEARCH_FILE)
    items = _read_items(_common.find_file(data_dir, ITEM_FILE), errors)
    columns = {name: [] for name in schema.required_log_columns()}
    rows, next_position = [], {}
    for row, fields in zip(*_common.read_records(path, SEARCH_COLUMNS, errors,
                                                 delimiter=",", header="required")):
        f = dict(zip(SEARCH_COLUMNS, fields))
        terms = _common.parse_list(f["keyword"], int, "keyword", path, row, errors,
                                   what="integer term ids")
        timestamp = _parse_number(f, "search_session_timestamp", path, row, errors)
        clicks = _parse_number(f, "click_cnt", path, row, errors)
        if terms is None or timestamp is None or clicks is None:
            continue
        request = f"{f['user_id']}:{f['search_session_id']}"
        position = next_position.get(request, 0)
        next_position[request] = position + 1
        title, category = items.get(f["item_id"], ("", ""))
        values = dict(impression_id=f"kuaisar:{row}", request_id=request,
                      user_id=f["user_id"], query=" ".join(map(str, terms)),
                      item_id=f["item_id"], item_title=title, item_category=category,
                      position=position, timestamp=timestamp,
                      click=int(clicks > 0), relevance=None)
        for name in columns:
            columns[name].append(values[name])
        rows.append(row)
    return _common.to_log(columns, schema, path, rows, errors, out_of_order="sort")


def _read_items(path, errors):
    """`{item_id: (caption terms, deepest category id)}`."""
    items = {}
    for row, fields in zip(*_common.read_records(path, ITEM_COLUMNS, errors,
                                                 delimiter=",", header="required")):
        f = dict(zip(ITEM_COLUMNS, fields))
        caption = _common.parse_list(f["caption"], int, "caption", path, row, errors,
                                     what="integer term ids")
        if caption is not None:
            items[f["item_id"]] = (" ".join(map(str, caption)), _common.deepest_category(
                *(f[f"{level}_level_category_id"] for level in CATEGORY_LEVELS)))
    return items


def _parse_number(fields, name, path, row, errors):
    """A non-negative integer that may be written as a float (`1.68e12`)."""
    try:
        value = float(fields[name])
        if not value >= 0 or value != int(value):
            raise ValueError
        return int(value)
    except (ValueError, OverflowError):
        errors(path, row, name, "not a non-negative integer", fields[name])
        return None
