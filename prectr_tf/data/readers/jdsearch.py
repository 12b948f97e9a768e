"""JDsearch personalised product search (JD.com, SIGIR 2023).

Published format (github.com/rucliujn/JDsearch): the behaviour file
(`release_data.txt`; its published sample `user_behavior_data_sample.txt`)
has one user per line, tab-separated, optionally after a header:

    query  candidate_wid_list  candidate_label_list  history_qry_list
    history_wid_list  history_type_list  history_time_list

List columns join their elements with `_`; text (queries, names) is
anonymised term ids joined by `\\x18` (`^X`). Candidate labels are 0.0 none,
1.0 click, 2.0 add to cart, 3.0 purchase; history types are CLICK, CART, ORD
(purchase) and FLW (follow); a history query of -1 marks a query-less
interaction; `history_time_list` holds the interval since the previous
behaviour (first 0) and has one more element than the other history lists:
the last is the interval up to the test search. The product file
(`product_data.txt`; sample `product_meta_data_sample.txt`) has `wid, name,
brand_id, brand_name, cate_id_1, cate_name_1, ..., cate_id_4, cate_name_4,
shop_id`; some products are missing from it.

How the format maps onto the impression log:

* `user_id`: `jd:<line>` — lines are anonymous users without ids.
* each history interaction with a query -> one impression, its own request
  (`jd:<line>:h<i>`), `position` 0 (not logged), `click` 1 (every history
  type is an interaction with the product: a click or more). Query-less
  interactions are not search impressions and are skipped.
* the test search -> one request (`jd:<line>:test`) with one impression per
  candidate, `position` its index in the candidate list, `click` 1 when the
  label is above 0.0 (cart and purchase imply a click).
* `timestamp`: the cumulative intervals, shifted so that every user's test
  search is at 0 and their history is negative. Users' clocks are only
  relative, and the release asks for each user's last search as the test
  query, so aligning the test searches is what keeps other users' history
  "before" a test search (as cross-user context needs). Units as published
  (the README does not state them). Rows are sorted by this timestamp.
* `query`, `item_title`: term ids joined by spaces (title = product `name`);
  `item_category`: the deepest non-empty `cate_id_*`; products missing from
  the product file get an empty title and category.
* `relevance`: missing — JDsearch has no graded relevance.
"""

import itertools

from prectr_tf.data.readers import _common
from prectr_tf.data.schema import DataSchema

BEHAVIOR_FILES = ("release_data.txt", "user_behavior_data_sample.txt")
PRODUCT_FILES = ("product_data.txt", "product_meta_data_sample.txt")
BEHAVIOR_COLUMNS = ("query", "candidate_wid_list", "candidate_label_list", "history_qry_list",
                    "history_wid_list", "history_type_list", "history_time_list")
PRODUCT_COLUMNS = ("wid", "name", "brand_id", "brand_name", "cate_id_1", "cate_name_1",
                   "cate_id_2", "cate_name_2", "cate_id_3", "cate_name_3", "cate_id_4",
                   "cate_name_4", "shop_id")
LIST_SEP = "_"
TERM_SEP = "\x18"
NO_QUERY = "-1"
HISTORY_TYPES = ("CLICK", "CART", "ORD", "FLW")
CANDIDATE_LABELS = (0.0, 1.0, 2.0, 3.0)


def read_jdsearch(data_dir, schema=DataSchema(), on_bad_row="reject"):
    """Read a JDsearch release (or its published sample) into the log.

    Args:
        data_dir: the directory with the behaviour and product files (full
            release names preferred over the sample names).
        schema: the `DataSchema`.
        on_bad_row: `"reject"` (record bad lines in the report) or `"raise"`.

    Returns:
        `(frame, report)` as `validate_log` returns them, `_source` the
        behaviour file and `_row` the user's record number in it.

    Example:
    >>> frame, report = read_jdsearch(f"{shared_data}/jdsearch_sample")
    >>> int(frame["request_id"].str.endswith(":test").sum())
    262
    """
    errors = _common.FormatErrors(on_bad_row)
    path = _common.find_file(data_dir, *BEHAVIOR_FILES)
    products = _read_products(_common.find_file(data_dir, *PRODUCT_FILES), errors)
    columns = {name: [] for name in schema.required_log_columns()}
    rows = []
    records = _common.read_records(path, BEHAVIOR_COLUMNS, errors, header="optional")
    for row, fields in zip(*records):
        user = _parse_user(fields, path, row, errors)
        if user is None:
            continue
        for event in _events(row, *user):
            title, category = products.get(event["item_id"], ("", ""))
            event.update(user_id=f"jd:{row}", item_title=title, item_category=category,
                         relevance=None)
            for name in columns:
                columns[name].append(event[name])
            rows.append(row)
    return _common.to_log(columns, schema, path, rows, errors, out_of_order="sort")


def _read_products(path, errors):
    """`{wid: (title, category)}` from the product file."""
    products = {}
    for fields in _common.read_records(path, PRODUCT_COLUMNS, errors, header="optional")[1]:
        p = dict(zip(PRODUCT_COLUMNS, fields))
        products[p["wid"]] = (
            _common.join_terms(p["name"], TERM_SEP),
            _common.deepest_category(*(p[f"cate_id_{level}"] for level in range(1, 5))))
    return products


def _parse_user(fields, path, row, errors):
    """The parsed lists of one user line, or None when the line is rejected."""
    f = dict(zip(BEHAVIOR_COLUMNS, fields))
    parsers = {"candidate_wid_list": (str, "ids"),
               "candidate_label_list": (_candidate_label, f"labels in {CANDIDATE_LABELS}"),
               "history_qry_list": (str, "queries"), "history_wid_list": (str, "ids"),
               "history_type_list": (_history_type, f"types in {HISTORY_TYPES}"),
               "history_time_list": (_interval, "non-negative integer intervals")}
    lists = {}
    for name, (item, what) in parsers.items():
        lists[name] = _common.parse_list(f[name], item, name, path, row, errors,
                                         sep=LIST_SEP, what=what)
        if lists[name] is None:
            return None
    candidates = {n: lists[n] for n in ("candidate_wid_list", "candidate_label_list")}
    history = {n: lists[n] for n in ("history_qry_list", "history_wid_list", "history_type_list")}
    if not (_common.same_lengths(candidates, path, row, errors)
            and _common.same_lengths(history, path, row, errors)
            and _common.same_lengths({"history_time_list": lists["history_time_list"]},
                                     path, row, errors,
                                     expected=len(lists["history_wid_list"]) + 1)):
        return None
    return (f["query"], lists["candidate_wid_list"], lists["candidate_label_list"],
            lists["history_qry_list"], lists["history_wid_list"], lists["history_time_list"])


def _events(row, query, cand_ids, cand_labels, hist_queries, hist_ids, intervals):
    """The user's impressions (contract names), history first."""
    times = list(itertools.accumulate(intervals))
    test_time = times[-1]
    for i, (hq, item) in enumerate(zip(hist_queries, hist_ids)):
        if hq == NO_QUERY:
            continue
        yield dict(impression_id=f"jd:{row}:h{i}", request_id=f"jd:{row}:h{i}",
                   query=_common.join_terms(hq, TERM_SEP), item_id=item, position=0,
                   timestamp=times[i] - test_time, click=1)
    for position, (item, label) in enumerate(zip(cand_ids, cand_labels)):
        yield dict(impression_id=f"jd:{row}:c{position}", request_id=f"jd:{row}:test",
                   query=_common.join_terms(query, TERM_SEP), item_id=item, position=position,
                   timestamp=0, click=int(label > 0))


def _candidate_label(text):
    value = float(text)
    if value not in CANDIDATE_LABELS:
        raise ValueError(text)
    return value


def _history_type(text):
    if text not in HISTORY_TYPES:
        raise ValueError(text)
    return text


def _interval(text):
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value
