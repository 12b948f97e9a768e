"""`DCNv2Baseline`: a Deep & Cross Network v2 click model (Wang et al. 2021).

The external CTR baseline of the benchmarks: no text, no relevance, one click
logit from the same input dict `prectr_tf.data.pipeline.make_dataset` yields,

    x0     = [e(user_id), e(item_id), e(item_category), e(query_id),
              item_features, mean e(user_history_item_id)]
    x_{l+1} = FeatureCross(x0, x_l)            (keras-rs, l = 0..L-1)
    logit  = Dense(1)(MLP(x_L))                ("stacked" DCN-v2)

and trained with binary cross-entropy on `labels["click"]`, unknown clicks
(-1) masked. The labels stay the pipeline's dict `{"click", "relevance"}`:
`compute_loss` picks the click column itself, so `model.fit(make_dataset(...))`
works with no `map` (a plain click tensor as `y` works too).

Example:
>>> from prectr_tf.data.pipeline import make_dataset
>>> model = DCNv2Baseline.from_dataset(data_dir)
>>> model.compile(optimizer=keras.optimizers.Adam(1e-3))
>>> history = model.fit(make_dataset(data_dir, "train"), epochs=1, verbose=0)
>>> model.predict(features, verbose=0)["score"].shape   # P(click) of the 8 impressions
(8,)
"""

import dataclasses
import os

import keras
import keras_rs
from keras import ops

from prectr_tf.data.build import read_dataset_info
from prectr_tf.data.schema import DataSchema
from prectr_tf.layers.id_embedding import IdEmbedding, load_vocabulary
from prectr_tf.losses.masked_loss import flatten_rows, reduce_masked, track_loss
from prectr_tf.metrics import log_loss, masked_auc
from prectr_tf.models.distribute import DistributedModel
from prectr_tf.models.dummy import dummy_batch
from prectr_tf.models.evaluation_rows import GroupedEvaluation
from prectr_tf.models.prectr_model import QUERY_ID_BUCKETS

ID_FIELDS = ("user_id", "item_id", "item_category")


@keras.saving.register_keras_serializable(package="prectr_tf")
class DCNv2Baseline(DistributedModel, GroupedEvaluation, keras.Model):
    """DCN-v2 over id embeddings, dense item features and the user history.

    Args:
        schema: the `DataSchema` of the inputs (or its dict).
        vocabularies: `{"user_id", "item_id", "item_category": [tokens]}`,
            most frequent first (`prectr build` writes them). `query_id` is an
            int64 fingerprint and is hashed into `QUERY_ID_BUCKETS`, as in
            `PRECTRModel`.
        embedding_dim: width of every id embedding.
        num_cross_layers: `keras_rs.layers.FeatureCross` layers.
        projection_dim: low-rank size of the cross kernels (`None`: full
            rank; the default input is 5·16 + F wide, 84 on the simulator, so
            full rank is cheap).
        hidden_units: widths of the deep MLP after the cross stack.
        dropout: dropout after each MLP layer.
        use_history: append the mean of the user's history item embeddings
            (the embedding table is shared with `item_id`; padded slots are
            excluded from the mean).
        **kwargs: base `keras.Model` arguments (`name`, ...).

    Call arguments:
        features: the dict of `make_dataset` (extra keys are ignored).
        training: Python bool, for dropout.

    Returns:
        dict: `logit` [B] and `score` [B] = sigmoid(logit) = P(click), the
        same `score` key `PRECTRModel` returns.

    Example:
    >>> model = DCNv2Baseline(DataSchema(history_length=5, num_item_features=2),
    ...                       {"user_id": ["u1"], "item_id": ["i1"],
    ...                        "item_category": ["c1"]})
    >>> model.build()
    >>> len(model.cross_layers)
    3
    """

    def __init__(self, schema, vocabularies, embedding_dim=16, num_cross_layers=3,
                 projection_dim=None, hidden_units=(128, 64), dropout=0.0, use_history=True,
                 **kwargs):
        super().__init__(**kwargs)
        self.schema = schema if isinstance(schema, DataSchema) else DataSchema(**schema)
        self.vocabularies = {k: list(vocabularies[k]) for k in ID_FIELDS}
        self.embedding_dim = int(embedding_dim)
        self.num_cross_layers = int(num_cross_layers)
        self.projection_dim = None if projection_dim is None else int(projection_dim)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.dropout = float(dropout)
        self.use_history = bool(use_history)

        self.id_embeddings = {
            name: IdEmbedding(self.embedding_dim, vocabulary=self.vocabularies[name],
                              name=f"{name}_embedding")
            for name in ID_FIELDS}
        self.query_embedding = IdEmbedding(self.embedding_dim, num_buckets=QUERY_ID_BUCKETS,
                                           id_dtype="int64", name="query_id_embedding")
        self.cross_layers = [keras_rs.layers.FeatureCross(projection_dim=self.projection_dim,
                                                          name=f"cross_{i}")
                             for i in range(self.num_cross_layers)]
        self.deep_layers = [keras.layers.Dense(units, activation="relu", name=f"deep_{i}")
                            for i, units in enumerate(self.hidden_units)]
        self.dropout_layer = keras.layers.Dropout(self.dropout) if self.dropout else None
        self.logit_layer = keras.layers.Dense(1, name="logit")

        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.auc = masked_auc(name="auc")
        self.log_loss = log_loss(name="log_loss")

    @classmethod
    def from_dataset(cls, data_dir, **kwargs):
        """A model whose schema and vocabularies are those of a built dataset.

        Args:
            data_dir: a dataset built by `prectr build`.
            **kwargs: the other constructor arguments.

        Returns:
            an unbuilt `DCNv2Baseline` (call `build()` or fit it).
        """
        info = read_dataset_info(data_dir)
        vocabularies = {name: load_vocabulary(os.path.join(data_dir, "vocab", f"{name}.txt"))
                        for name in ID_FIELDS}
        return cls(DataSchema(**info["schema"]), vocabularies, **kwargs)

    # --- forward --------------------------------------------------------
    def _inputs(self, features):
        """x0: the concatenated feature vector [B, D]."""
        parts = [self.id_embeddings[name](features[name]) for name in ID_FIELDS]
        parts.append(self.query_embedding(features["query_id"]))
        if self.schema.num_item_features:
            parts.append(ops.cast(features["item_features"], parts[0].dtype))
        if self.use_history:
            history_ids = features["user_history_item_id"]
            vectors = self.id_embeddings["item_id"](history_ids)  # padding rows are exact 0
            present = ops.cast(self.id_embeddings["item_id"].lookup(history_ids) > 0,
                               vectors.dtype)
            count = ops.maximum(ops.sum(present, axis=1, keepdims=True), 1.0)
            parts.append(ops.sum(vectors, axis=1) / count)
        return ops.concatenate(parts, axis=-1)

    def call(self, features, training=False):
        x0 = self._inputs(features)
        x = x0
        for cross in self.cross_layers:
            x = cross(x0, x)
        for dense in self.deep_layers:
            x = dense(x)
            if self.dropout_layer is not None:
                x = self.dropout_layer(x, training=training)
        logit = self.logit_layer(x)[:, 0]
        return {"logit": logit, "score": ops.sigmoid(logit)}

    # --- objective and metrics -----------------------------------------
    @staticmethod
    def _clicks(y):
        # The pipeline's labels are a dict; a bare click tensor is accepted too.
        return y["click"] if isinstance(y, dict) else y

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Mean BCE over rows with a known click (label -1 is masked: it
        leaves both the sum and the count), weighted by `sample_weight` and
        divided by the summed weights: weight 2 equals the row twice."""
        clicks = flatten_rows(self._clicks(y), "int64")
        logits = flatten_rows(y_pred["logit"])
        known = clicks >= 0
        targets = ops.cast(ops.maximum(clicks, 0), logits.dtype)
        # BCE from logits: softplus(z) - y·z, stable for any z.
        losses = ops.softplus(logits) - targets * logits
        loss = reduce_masked(losses, known, sample_weight, "mean_with_sample_weight")
        track_loss(self.loss_tracker, loss, ops.shape(logits)[0])
        return loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        clicks = self._clicks(y)
        for metric in (self.auc, self.log_loss):
            metric.update_state(clicks, y_pred["score"], sample_weight=sample_weight)
        return {m.name: m.result() for m in self.metrics}

    @property
    def metrics(self):
        # Listed so Keras resets them at each epoch / evaluate.
        return [self.loss_tracker, self.auc, self.log_loss]

    def compile(self, optimizer="adam", **kwargs):
        """Keras `compile`; the loss is `compute_loss`'s, so pass none.
        `jit_compile` defaults to False: the string lookups do not compile
        under XLA."""
        kwargs.setdefault("jit_compile", False)
        super().compile(optimizer=optimizer, **kwargs)

    def compile_from_config(self, config):
        # Keras skips (with a warning) re-compiling a loaded model whose
        # `compile` is overridden; this one only adds a default, so a loaded
        # `.keras` file comes back compiled, optimizer state included.
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    # --- serialisation --------------------------------------------------
    def get_config(self):
        return {**super().get_config(), "schema": dataclasses.asdict(self.schema),
                "vocabularies": self.vocabularies, "embedding_dim": self.embedding_dim,
                "num_cross_layers": self.num_cross_layers,
                "projection_dim": self.projection_dim, "hidden_units": list(self.hidden_units),
                "dropout": self.dropout, "use_history": self.use_history}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def build(self, input_shape=None):
        # A dict of strings and ints whose shapes cannot build the lookups:
        # build every sublayer by running a dummy batch.
        batch = dummy_batch(self.schema)
        self.call(batch, training=False)
        self.built = True

    def build_from_config(self, config):
        self.build()

    def get_build_config(self):
        return {"schema": dataclasses.asdict(self.schema)}
