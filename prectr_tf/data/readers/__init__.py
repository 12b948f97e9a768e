"""Readers that turn public search datasets into the impression log (DESIGN §3).

Each reader takes the dataset's directory (never a bundled copy: the data's
terms forbid redistribution) and returns the log checked by `validate_log`.
Each module's docstring says how its format maps onto the contract and what
stands in for fields the dataset lacks.

Example:
>>> sorted(READERS)
['esci', 'homedepot', 'jdsearch', 'kuaisar', 'trec_session']
>>> frame, report = read_dataset("trec_session", f"{shared_data}/trec2014_session",
...                              split="valid")
>>> len(frame), report.count
(3610, 0)
"""

from prectr_tf.data.readers.esci import read_esci
from prectr_tf.data.readers.homedepot import read_homedepot
from prectr_tf.data.readers.jdsearch import read_jdsearch
from prectr_tf.data.readers.kuaisar import read_kuaisar
from prectr_tf.data.readers.trec_session import read_trec_session

READERS = {
    "homedepot": read_homedepot,
    "trec_session": read_trec_session,
    "jdsearch": read_jdsearch,
    "esci": read_esci,
    "kuaisar": read_kuaisar,
}


def read_dataset(name, data_dir, **kwargs):
    """Read a public dataset by its registry name.

    Args:
        name: a key of `READERS`.
        data_dir: the dataset's directory.
        **kwargs: passed to the reader (`schema`, `split`, `on_bad_row`, ...).

    Returns:
        What the reader returns: `(frame, report)`.

    Raises:
        ValueError: `name` is not a registered reader.
    """
    if name not in READERS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(sorted(READERS))}")
    return READERS[name](data_dir, **kwargs)


__all__ = ["READERS", "read_dataset", "read_esci", "read_homedepot", "read_jdsearch",
           "read_kuaisar", "read_trec_session"]
