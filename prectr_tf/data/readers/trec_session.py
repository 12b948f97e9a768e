"""TREC 2014 Session Track click logs, as prepared by GraphCM.

The directory holds `{train,valid,test}_per_query_quid.txt`,
`human_label_for_GraphCM_per_query_quid.txt`, and the Python-literal dicts
`query_qid.dict` (query text -> id), `url_uid.dict` (ClueWeb12 id -> id) and
`vtype_vid.dict` (vertical type -> id). A split file has one result page of 10
per line, tab-separated, no header:

    session_id  query_id  [10 doc ids]  [10 vertical type ids]  [10 clicks]

How the format maps onto the impression log (one line -> 10 impressions):

* `user_id`: the session id. TREC has no user ids; a session stands in for a
  user, so a "user history" is the session's earlier pages.
* `request_id`: `trec:<split>:<line>`, the page. One session can show the
  same page twice (a reload with other clicks), so the page id is not unique.
* `timestamp`: the line number. Sessions are contiguous and their pages are
  in the order they were shown, so line order is the only clock there is; it
  orders events but has no unit.
* `query`: the query text (from the inverted `query_qid.dict`).
* `item_id`: the ClueWeb12 document id (from the inverted `url_uid.dict`);
  `item_title` is empty (the release has no document text); `item_category`
  is the vertical type (inverted `vtype_vid.dict`; "0", web, in this release).
* `position`: the 0-based rank on the page; `click`: the click list.
* `relevance`: the human-label file repeats 856 of the pages of train, valid
  and test (in that order) with a 6th column of grades. A page is labelled
  when its first five columns equal a human-label row; on this release that
  matches exactly the 704 + 72 + 80 labelled pages, and repeated pages carry
  identical grades. Grades 0..4 become levels `min(grade, K - 1)` (K=4:
  0->0, 1->1, 2->2, 3 and 4->3); -2 ("judged unusable") and unlabelled pages
  are missing, never 0.
"""

import ast

from prectr_tf.data.readers import _common
from prectr_tf.data.schema import DataSchema
from prectr_tf.data.validation import DataError

SPLITS = ("train", "valid", "test")
PAGE_COLUMNS = ("session_id", "query_id", "doc_ids", "vertical_ids", "clicks")
LABEL_COLUMNS = PAGE_COLUMNS + ("grades",)
LABEL_FILE = "human_label_for_GraphCM_per_query_quid.txt"
UNUSABLE_GRADE = -2
MAX_GRADE = 4


def read_trec_session(data_dir, split="train", schema=DataSchema(), on_bad_row="reject"):
    """Read one split of the GraphCM TREC 2014 Session Track release.

    Args:
        data_dir: the directory of the release (see the module docstring).
        split: `"train"`, `"valid"` or `"test"`.
        schema: the `DataSchema` (K sets the grade -> level mapping).
        on_bad_row: `"reject"` (record bad lines in the report) or `"raise"`.

    Returns:
        `(frame, report)`: the impression log (10 rows per accepted page) as
        `validate_log` returns it, with `_source` the split file and `_row`
        its line number; and the `RejectReport`.

    Example:
    >>> frame, report = read_trec_session(f"{shared_data}/trec2014_session")
    >>> len(frame), report.count
    (28720, 0)
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    errors = _common.FormatErrors(on_bad_row)
    path = _common.find_file(data_dir, f"{split}_per_query_quid.txt")
    queries = _inverted_dict(_common.find_file(data_dir, "query_qid.dict"))
    urls = _inverted_dict(_common.find_file(data_dir, "url_uid.dict"))
    verticals = _inverted_dict(_common.find_file(data_dir, "vtype_vid.dict"))
    grades = _read_grades(_common.find_file(data_dir, LABEL_FILE), schema, errors)

    columns = {name: [] for name in schema.required_log_columns()}
    rows = []
    for row, page in _read_pages(path, PAGE_COLUMNS, errors):
        session, qid, docs, verticals_ids, clicks = page
        names = _lookup(path, row, errors, query_id=(queries, [qid]),
                        doc_ids=(urls, docs), vertical_ids=(verticals, verticals_ids))
        if names is None:
            continue
        levels = grades.get(page, [None] * len(docs))
        for position, (doc, vertical, click, level) in enumerate(
                zip(names["doc_ids"], names["vertical_ids"], clicks, levels)):
            values = dict(impression_id=f"trec:{split}:{row}:{position}",
                          request_id=f"trec:{split}:{row}", user_id=str(session),
                          query=names["query_id"][0], item_id=doc, item_title="",
                          item_category=vertical, position=position, timestamp=row,
                          click=click, relevance=level)
            for name, value in values.items():
                columns[name].append(value)
            rows.append(row)
    return _common.to_log(columns, schema, path, rows, errors)


def _inverted_dict(path):
    """`{id: text}` from a GraphCM `{text: id}` Python-literal dict file."""
    with open(path, encoding="utf-8") as fh:
        try:
            mapping = ast.literal_eval(fh.read())
        except (ValueError, SyntaxError) as err:
            raise DataError(f"not a Python dict literal: {err}", source=path) from err
    if not isinstance(mapping, dict):
        raise DataError("not a Python dict literal", source=path)
    return {v: k for k, v in mapping.items()}


def _read_pages(path, columns, errors):
    """Yield `(line, page)` for each line of `path` that parses."""
    for row, fields in zip(*_common.read_records(path, columns, errors)):
        page = _parse_page(dict(zip(columns, fields)), path, row, errors)
        if page is not None:
            yield row, page


def _parse_page(fields, path, row, errors):
    """`(session, query id, *lists)` with the lists as tuples (hashable: a
    page is matched to its labels by them), or None when rejected."""
    ids = []
    for name in ("session_id", "query_id"):
        try:
            ids.append(int(fields[name]))
        except ValueError:
            errors(path, row, name, "not an integer", fields[name])
            return None
    lists = {}
    for name in list(fields)[2:]:
        lists[name] = _common.parse_list(fields[name], int, name, path, row, errors,
                                         what="integers")
        if lists[name] is None:
            return None
    if not _common.same_lengths(lists, path, row, errors):
        return None
    return (*ids, *(tuple(values) for values in lists.values()))


def _lookup(path, row, errors, **id_lists):
    """Translate id lists through their inverted dicts; reject unknown ids."""
    out = {}
    for field, (mapping, ids) in id_lists.items():
        unknown = [i for i in ids if i not in mapping]
        if unknown:
            errors(path, row, field, f"id {unknown[0]} is not in the release's dict", unknown[0])
            return None
        out[field] = [str(mapping[i]) for i in ids]
    return out


def _read_grades(path, schema, errors):
    """`{page (first five columns): levels}` from the human-label file."""
    labels = {}
    for row, page in _read_pages(path, LABEL_COLUMNS, errors):
        grades = page[-1]
        bad = [g for g in grades if g != UNUSABLE_GRADE and not 0 <= g <= MAX_GRADE]
        if bad:
            errors(path, row, "grades", f"grade {bad[0]} not in 0..{MAX_GRADE} or "
                   f"{UNUSABLE_GRADE}", grades)
            continue
        labels[page[:-1]] = [None if g == UNUSABLE_GRADE else _common.grade_to_level(g, schema)
                             for g in grades]
    return labels

