"""`export_model`: a trained model → `<base>/<version>/`, a SavedModel for TF
Serving (DESIGN §6).

Written the way TF Serving polls a base path: the version is staged in a
hidden folder beside it (TF Serving only loads integer-named folders), then
renamed into place, so a half-written version is never visible; the next
version number is one above the highest present, older versions stay.

Inside: the `rank` signature (also `serving_default`; `signature.py`), the
weights the inference path uses and nothing else (`keras.export.ExportArchive`
keeps only the variables an endpoint reads: no optimizer, metric or
noise-negative state), the item catalogue and the query-context table as
variables and lookup tables, `assets.extra/tf_serving_warmup_requests`
(`warmup.py`; with the `serving` extra) and `assets.extra/prectr_export.json`
describing the export.

Example:
>>> import tensorflow as tf
>>> path = export_model(model, f"{tmp}/exports/prectr_v2", data_dir)
>>> os.path.basename(path), versions(f"{tmp}/exports/prectr_v2")
('1', [1])
>>> sorted(tf.saved_model.load(path).signatures)
['rank', 'serving_default']
"""

import json
import os
import shutil
import tempfile
import warnings

import keras

from prectr_tf.serving.client import EXPORT_INFO
from prectr_tf.serving.ranking import (RankingFunction, ServingTables, check_mode,
                                       precompute_title_cache)
from prectr_tf.serving.signature import OUTPUTS, request_signature
from prectr_tf.serving.tables import (catalogue_from_frame, dataset_rows, item_catalogue,
                                      query_context_table)
from prectr_tf.serving.warmup import warmup_requests, write_warmup

DEFAULT_MAX_CANDIDATES = 5000


def versions(base_dir):
    """The integer versions present under `base_dir`, ascending."""
    if not os.path.isdir(base_dir):
        return []
    return sorted(int(name) for name in os.listdir(base_dir) if name.isdigit())


def export_model(model, base_dir, data_dir, mode="exact", version=None,
                 max_candidates=DEFAULT_MAX_CANDIDATES, context_reserve=None, items=None):
    """Export `model` for coarse-ranking serving.

    Args:
        model: a trained `PRECTRModel`.
        base_dir: str, the model's base path (TF Serving's `base_path`).
        data_dir: str, the built dataset whose items and events fill the
            catalogue and the query context (as of now).
        mode: str, `"exact"` (default) or `"split"` (needs a split-arranged
            encoder; precomputes every known title's lower-layer states).
        version: int or None, the version folder (default: one above the
            highest present). A non-empty existing one is refused.
        max_candidates: int, the most candidates a request may send (default
            5000); more is an `INVALID_ARGUMENT` error at serving.
        context_reserve: int or None, extra context events stored per query
            (`query_context_table`; default L_g).
        items: the catalogue to carry: None (default) for every item of the
            dataset, or a DataFrame of items (a product feed: `item_id`,
            `item_title`, `item_category`[, `item_features`]).

    Returns:
        str, the written version folder.
    """
    check_mode(model, mode)
    present = versions(base_dir)
    version = (present[-1] + 1 if present else 1) if version is None else int(version)
    if version < 0:
        raise ValueError(f"version must be >= 0, got {version}")
    target = os.path.join(os.fspath(base_dir), str(version))
    if os.path.exists(target) and os.listdir(target):
        raise FileExistsError(f"{target} exists and is not empty: TF Serving may be serving "
                              "it; export a new version (leave version unset)")
    os.makedirs(base_dir, exist_ok=True)
    # Staged first, so whatever fails below (a bad dataset, a full disk)
    # leaves neither a version nor a half-written folder behind.
    staging = tempfile.mkdtemp(prefix=f".export-{version}-", dir=base_dir)
    try:
        rows = dataset_rows(data_dir)  # one pass over the data for both tables
        catalogue = (item_catalogue(data_dir, rows) if items is None
                     else catalogue_from_frame(items, model.schema.num_item_features))
        context = query_context_table(data_dir, context_reserve, rows)
        title_ids = title_cache = None
        if mode == "split":
            title_ids, title_cache = precompute_title_cache(model, catalogue.item_title)
        tables = ServingTables(catalogue, context, title_ids, title_cache)
        ranking = RankingFunction(model, tables, mode, max_candidates)
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.track(tables)
        archive.add_endpoint("rank", ranking.rank,
                             input_signature=[request_signature(model.schema)])
        archive.write_out(staging, verbose=False)
        info = {"mode": mode, "version": version, "max_candidates": int(max_candidates),
                "preset": model.config.name, "encoder_mode": model.config.encoder_mode,
                "schema": json.loads(model.schema.to_json()),
                "num_items": len(catalogue), "num_context_queries": len(context.query_id),
                "context_width": context.width, "outputs": list(OUTPUTS),
                "dataset": os.path.abspath(data_dir)}
        try:
            info["warmup_requests"] = write_warmup(
                staging, warmup_requests(catalogue, max_candidates), model.schema,
                os.path.basename(os.path.abspath(base_dir)))
        except ImportError:  # the optional `serving` extra is not installed
            info["warmup_requests"] = 0
            warnings.warn("tensorflow-serving-api is not installed (pip install "
                          "'prectr_tf[serving]'): the export has no TF Serving warm-up records")
        os.makedirs(os.path.join(staging, "assets.extra"), exist_ok=True)
        with open(os.path.join(staging, EXPORT_INFO), "w") as fh:
            json.dump(info, fh, indent=2)
        if os.path.exists(target):
            os.rmdir(target)  # empty (checked above)
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
