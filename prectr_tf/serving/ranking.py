"""The serving computation (DESIGN §6): a batch of requests → per-candidate
scores, with the catalogue and the query context inside the graph.

For each real candidate (row) of each request the graph assembles exactly the
feature dict a training example has — request fields repeated, `query_id`
hashed from the query text, the own-user-free query context from the
`QueryContextTable`, titles / categories / features filled from the
`ItemCatalogue` where the request leaves them out — and runs the model with
`training=False`. Padding rows are never computed: the real rows are
gathered, scored, and scattered back (0 elsewhere).

Two encoder modes:

* `exact`: the model's own call (joint or split cross-encoding per row);
* `split` (a split-arranged encoder, `num_split_layers > 0`): the query's
  lower layers run once per request; a known item's title cache (the top
  layer's keys and values at its title positions, `encode_title_cache`)
  comes from the export, precomputed per item; only unknown items, or titles
  the request changes, are encoded at request time. Same r as `exact`.
"""

import numpy as np
import tensorflow as tf

from prectr_tf.data.query_normalization import query_id
from prectr_tf.data.schema import EVENT_FIELDS
from prectr_tf.layers.event_encoder import REQUEST_INDEX
from prectr_tf.models.relevance_cache import FEATURE as CACHED_R
from prectr_tf.serving.signature import NUM_CANDIDATES

MODES = ("exact", "split")


def check_mode(model, mode):
    """Raise a clear `ValueError` unless `model` can be served in `mode`."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if mode == "split" and not (model.config.uses_text and model.config.encoder.num_split_layers):
        raise ValueError("mode 'split' needs a model trained with the split encoder "
                         "(encoder.num_split_layers > 0); this one is joint: export it with "
                         "mode 'exact'")


class ServingTables(tf.Module):
    """The export's lookup tables and arrays, as TF resources (saved with the
    SavedModel: arrays as variables, so large catalogues stay out of the
    graph).

    Args:
        catalogue: `ItemCatalogue`, the known items.
        context: `QueryContextTable`, the latest events per query.
        title_ids: int32 `[I, St]` or None, the catalogue titles' token ids
            (split mode).
        title_cache: float32 `[I, St, c]` or None, their
            `encode_title_cache` (split mode).
    """

    def __init__(self, catalogue, context, title_ids=None, title_cache=None):
        super().__init__(name="serving_tables")
        self.item_index = _index_table(catalogue.item_id.astype(str), tf.string)
        self.item_title = _constant(catalogue.item_title.astype(str), "item_title")
        self.item_category = _constant(catalogue.item_category.astype(str), "item_category")
        self.item_features = _constant(catalogue.item_features.astype(np.float32),
                                       "item_features")
        self.context_index = _index_table(context.query_id, tf.int64)
        self.context_events = {name: _constant(values, f"context_{name}")
                               for name, values in context.events.items()}
        self.context_user = _constant(context.user_id.astype(str), "context_user_id")
        self.context_length = _constant(context.length, "context_length")
        self.title_ids = None if title_ids is None else _constant(title_ids, "title_ids")
        self.title_cache = (None if title_cache is None
                            else _constant(title_cache, "title_cache"))


def _index_table(keys, dtype):
    init = tf.lookup.KeyValueTensorInitializer(
        tf.constant(keys, dtype), tf.range(len(keys), dtype=tf.int64))
    return tf.lookup.StaticHashTable(init, default_value=-1)


def _constant(values, name):
    values = np.asarray(values)
    if values.dtype == object:
        values = values.astype(str)
    return tf.Variable(values, trainable=False, name=name)


class RankingFunction:
    """`rank(inputs)` over a trained `PRECTRModel` (see the module doc).

    Args:
        model: a trained `PRECTRModel`.
        tables: `ServingTables`.
        mode: `"exact"` or `"split"`.
        max_candidates: the most candidates one request may send.
    """

    def __init__(self, model, tables, mode, max_candidates):
        check_mode(model, mode)
        self.model, self.tables, self.mode = model, tables, mode
        self.max_candidates = int(max_candidates)
        self.schema = model.schema

    # --- checks ---------------------------------------------------------
    def _check(self, inputs):
        item_id = inputs["item_id"]
        num_requests, width = tf.shape(item_id, tf.int64)[0], tf.shape(item_id, tf.int64)[1]
        n = inputs[NUM_CANDIDATES]
        checks = [
            tf.debugging.assert_less_equal(
                width, tf.constant(self.max_candidates, tf.int64),
                message=f"a request has at most {self.max_candidates} candidates (the "
                        "export's max_candidates); item_id has more columns"),
            tf.debugging.assert_non_negative(n, message="num_candidates must be >= 0"),
            tf.debugging.assert_less_equal(
                n, width, message="num_candidates exceeds the candidate columns sent"),
        ]
        candidates = {name for name, _, _ in self.schema.candidate_features()}
        for name, value in inputs.items():
            checks.append(tf.debugging.assert_equal(
                tf.shape(value, tf.int64)[0], num_requests,
                message=f"input {name!r} must have one row per request, like item_id"))
            if name in candidates:
                checks.append(tf.debugging.assert_equal(
                    tf.shape(value, tf.int64)[1], width,
                    message=f"input {name!r} must have as many candidate columns as item_id"))
        return checks

    # --- the graph ------------------------------------------------------
    def rank(self, inputs):
        """The `rank` signature's body.

        Args:
            inputs: `{name: tensor}` as `signature.request_signature` says.

        Returns:
            dict: `score` `[R, N]`, `relevance_probs` and
            `click_given_relevance` `[R, N, K]`; 0 past `num_candidates`.
        """
        with tf.control_dependencies(self._check(inputs)):
            valid = tf.sequence_mask(inputs[NUM_CANDIDATES], tf.shape(inputs["item_id"])[1])
        rows = tf.where(valid)  # [M, 2]: (request, candidate) of each real candidate
        request = rows[:, 0]
        # The history and context lists stay one per request ([R, L]): the
        # model looks their ids up once per request (REQUEST_INDEX); the
        # rest of the request fields are repeated per candidate row.
        features = {REQUEST_INDEX: request}
        qid = query_id(inputs["query"])
        lists = {name: inputs[name] for name, _, shape in self.schema.request_features()
                 if shape}
        lists.update(self._context(qid, inputs["user_id"]))
        for name, value in lists.items():
            features[name] = value if len(value.shape) > 1 else tf.gather(value, request)
        for name, _, shape in self.schema.request_features():
            if not shape:
                features[name] = tf.gather(inputs[name], request)
        features["query_id"] = tf.gather(qid, request)
        index, sent_title = self._candidates(inputs, rows, features)
        if self.mode == "split":
            features[CACHED_R] = self._split_representation(inputs["query"], request, index,
                                                            sent_title, features["item_title"])
        out = self.model(features, training=False)
        shape = tf.shape(valid, tf.int64)
        k = tf.shape(out["relevance_probs"], tf.int64)[1]
        return {"score": tf.scatter_nd(rows, out["score"], shape),
                "relevance_probs": tf.scatter_nd(rows, out["relevance_probs"],
                                                 tf.concat([shape, [k]], 0)),
                "click_given_relevance": tf.scatter_nd(rows, out["click_given_relevance"],
                                                       tf.concat([shape, [k]], 0))}

    def _candidates(self, inputs, rows, features):
        """Candidate fields per row, filled from the catalogue; returns the
        catalogue index (-1 unknown) and the title the request sent."""
        t = self.tables
        item = tf.gather_nd(inputs["item_id"], rows)
        index = t.item_index.lookup(item)
        known, safe = index >= 0, tf.maximum(index, 0)
        features["item_id"] = item
        sent_title = tf.gather_nd(inputs["item_title"], rows)
        for name, table, sent in (("item_title", t.item_title, sent_title),
                                  ("item_category", t.item_category,
                                   tf.gather_nd(inputs["item_category"], rows))):
            features[name] = tf.where(known & tf.equal(sent, ""), tf.gather(table, safe), sent)
        if self.schema.num_item_features:
            sent = tf.gather_nd(inputs["item_features"], rows)
            fill = tf.where(known[:, None], tf.gather(t.item_features, safe), 0.0)
            features["item_features"] = tf.where(tf.math.is_nan(sent), fill, sent)
        return index, sent_title

    def _context(self, qid, user):
        """The own-user-free query context of each request, `[R, L_g]` lists."""
        t, length = self.tables, self.schema.context_length
        index = t.context_index.lookup(qid)
        safe = tf.maximum(index, 0)
        stored = tf.gather(t.context_length, safe) * tf.cast(index >= 0, tf.int64)
        width = tf.shape(t.context_user)[1]
        j = tf.range(width, dtype=tf.int64)[None, :]
        keep = (j < stored[:, None]) & tf.not_equal(tf.gather(t.context_user, safe),
                                                    user[:, None])
        # The latest `length` kept events: count kept events from the end.
        from_end = tf.cumsum(tf.cast(keep, tf.int64), axis=1, reverse=True)
        keep &= from_end <= length
        # Move them to the front, in time order (a stable sort on ~keep).
        order = tf.argsort(tf.cast(~keep, tf.int32), axis=1, stable=True)[:, :length]
        count = tf.reduce_sum(tf.cast(keep, tf.int64), axis=1)
        filled = tf.range(length, dtype=tf.int64)[None, :] < count[:, None]
        out = {self.schema.list_length_name("query_context"): count}
        for f in EVENT_FIELDS:
            values = tf.gather(tf.gather(t.context_events[f.name], safe), order, batch_dims=1)
            pad = tf.constant(self.schema.padding_value(f.dtype), values.dtype)
            out[self.schema.list_feature_name("query_context", f.name)] = tf.where(
                filled, values, pad)
        return out

    def _split_representation(self, query, request, index, sent_title, title):
        """r with the query encoded once per request and known titles'
        cache taken from the export."""
        t, tokenizer, encoder = self.tables, self.model.tokenizer, self.model.encoder
        known, safe = index >= 0, tf.maximum(index, 0)
        stored = known & (tf.equal(sent_title, "") | tf.equal(sent_title,
                                                              tf.gather(t.item_title, safe)))
        title_ids = tf.gather(t.title_ids, safe)
        title_cache = tf.gather(t.title_cache, safe)
        fresh = tf.where(~stored)
        fresh_ids = tokenizer.tokenize_title(tf.gather_nd(title, fresh))
        fresh_cache = encoder.encode_title_cache(fresh_ids)
        title_ids = tf.tensor_scatter_nd_update(title_ids, fresh, fresh_ids)
        title_cache = tf.tensor_scatter_nd_update(title_cache, fresh,
                                                  tf.cast(fresh_cache, title_cache.dtype))
        return encoder.call_with_title_cache(tokenizer.tokenize_query(query), title_cache,
                                             tf.not_equal(title_ids, 0), request_index=request)


def precompute_title_cache(model, titles, batch_size=1024):
    """Title ids `[I, St]` and `encode_title_cache` `[I, St, c]` of every
    catalogue title (split mode)."""
    tokenizer, encoder = model.tokenizer, model.encoder

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])  # one trace
    def encode(batch):
        ids = tokenizer.tokenize_title(batch)
        return ids, encoder.encode_title_cache(ids)

    ids, cache = [], []
    titles = np.asarray(titles, dtype=object).astype(str)
    for start in range(0, len(titles), batch_size):
        i, c = encode(tf.constant(titles[start:start + batch_size]))
        ids.append(i.numpy())
        cache.append(c.numpy())
    if not ids:
        width = tokenizer.title_length
        return (np.zeros((0, width), np.int32),
                np.zeros((0, width, encoder.title_cache_dim), np.float32))
    return np.concatenate(ids), np.concatenate(cache).astype(np.float32)
