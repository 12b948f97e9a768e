"""`RelevanceTextEncoder`: the compact (query, title) transformer (DESIGN §4.1, §6).

A keras-hub `TokenAndPositionEmbedding` and a stack of `TransformerEncoder`
layers; r is the output at `[CLS]`. With the defaults (3 layers, d=64, 4 heads,
FFN 256, 30k WordPiece vocabulary, 32 positions) it has 2,072,128 parameters,
the paper's ~2M.

Two arrangements of the same layers:

- joint (`num_split_layers=0`): one cross-encoder over
  `[CLS] query [SEP] title [SEP]` (`PairTokenizer`'s `token_ids`);
- split (`num_split_layers=n > 0`, PreTTR-style): the lower n layers run over
  `[CLS] query [SEP]` and `title [SEP]` separately, the remaining layers over
  their concatenation. A title's lower-layer states depend on the title alone,
  so a coarse-ranking export precomputes a cache per item
  (`encode_title_cache`: the top layer's title keys and values) and scores
  with `call_with_title_cache`, which gives exactly the r of the full call.
"""

import keras
import keras_hub
from keras import ops

MODES = ("finetune", "frozen")
PAD_ID = 0


@keras.saving.register_keras_serializable(package="prectr_tf")
class RelevanceTextEncoder(keras.layers.Layer):
    """Transformer encoder of a (query, title) pair; returns the `[CLS]` vector r.

    Modes:
    - `"finetune"` (PRECTR-V2): trainable, trained jointly with CTR.
    - `"frozen"` (PRECTR v1): every weight non-trainable, so no gradient
      reaches the encoder, and dropout is off even when `training=True` (a
      frozen feature extractor must give the same r in every step). Load the
      pre-trained weights first: a random frozen encoder is a strawman.
    Switch with `encoder.mode = "frozen"`; recompile the model afterwards, as
    for any change of `trainable`.

    Args:
        vocabulary_size: WordPiece vocabulary size (`PairTokenizer.vocabulary_size`).
        sequence_length: the number of position embeddings; at least the
            longest token sequence fed (`max_length`, and in split mode
            `query_length` and `title_length`).
        num_layers: transformer layers.
        hidden_dim: d, the width of r.
        num_heads: attention heads (divides `hidden_dim`).
        intermediate_dim: FFN width.
        dropout: dropout rate in the embeddings and transformer layers.
        num_split_layers: 0 for the joint cross-encoder; n in
            `[1, num_layers)` runs the lower n layers over query and title
            separately (split arrangement).
        mode: `"finetune"` or `"frozen"`.
        layer_norm_epsilon: epsilon of every layer norm.

    Call arguments:
        inputs: joint mode: `token_ids` `[B, S]` or a dict holding it; split
            mode: a dict with `query_ids` `[B, Sq]` and `title_ids` `[B, St]`
            (`PairTokenizer`'s output works for both). Id 0 is padding.
        training: Python bool.
        noise_positions: bool `[B, S]` (joint, in `token_ids`) or `[B, St]`
            (split, in `title_ids`), default None: where `encode_pair` /
            `encode_split` add Gaussian noise to the input embeddings
            (`PairTokenizer.title_positions`, the title-noise twins).
        noise_std: float, default 0.0: that noise's std relative to the
            embeddings' RMS; 0 adds none.

    Returns:
        r, float `[B, hidden_dim]`.

    Example:
    >>> encoder = RelevanceTextEncoder(vocabulary_size=100, sequence_length=8)
    >>> tuple(encoder(ops.array([[1, 5, 6, 2, 7, 2, 0, 0]])).shape)
    (1, 64)
    >>> split = RelevanceTextEncoder(vocabulary_size=100, num_split_layers=2)
    >>> tuple(split({"query_ids": ops.array([[1, 5, 2]]),
    ...              "title_ids": ops.array([[7, 8, 2, 0]])}).shape)
    (1, 64)
    """

    def __init__(self, vocabulary_size=30_000, sequence_length=32, num_layers=3, hidden_dim=64,
                 num_heads=4, intermediate_dim=256, dropout=0.1, num_split_layers=0,
                 mode="finetune", layer_norm_epsilon=1e-5, **kwargs):
        # `mode` alone decides trainability; a stale `trainable` from a config
        # must not contradict it.
        kwargs.pop("trainable", None)
        super().__init__(**kwargs)
        if not 0 <= num_split_layers < num_layers:
            raise ValueError(
                f"num_split_layers must be in [0, {num_layers}), got {num_split_layers}: "
                "at least one layer must see query and title together")
        self.vocabulary_size = vocabulary_size
        self.sequence_length = sequence_length
        self.num_layers = num_layers
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.num_split_layers = num_split_layers
        self.layer_norm_epsilon = layer_norm_epsilon
        init = keras.initializers.TruncatedNormal(stddev=0.02)  # BERT's init.
        self.embedding = keras_hub.layers.TokenAndPositionEmbedding(
            vocabulary_size, sequence_length, hidden_dim, embeddings_initializer=init,
            name="token_and_position_embedding")
        # Split mode numbers query and title positions from 0 each (a title's
        # states must not depend on the query's length), so a segment
        # embedding tells the joint top layers which side a token is on.
        self.segment_embedding = (
            keras.layers.Embedding(2, hidden_dim, embeddings_initializer=init,
                                   name="segment_embedding")
            if num_split_layers else None)
        self.embedding_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, name="embedding_norm")
        self.embedding_dropout = keras.layers.Dropout(dropout, name="embedding_dropout")
        # The title-noise twins' draws; created here, not by an unseeded
        # `keras.random.normal` inside `fit`'s tf.function, which would make
        # a variable per replica call under a tf.distribute strategy.
        self.noise_seed_generator = keras.random.SeedGenerator(name="title_noise_seed")
        self.transformer_layers = [
            keras_hub.layers.TransformerEncoder(
                intermediate_dim, num_heads, dropout=dropout, activation="gelu",
                layer_norm_epsilon=layer_norm_epsilon, kernel_initializer=init,
                name=f"transformer_layer_{i}")
            for i in range(num_layers)]
        self.mode = mode

    @property
    def mode(self):
        return self._mode

    @mode.setter
    def mode(self, value):
        if value not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {value!r}")
        self._mode = value
        self._apply_mode()

    def _apply_mode(self):
        # Set `trainable` on every nested layer, not just on self: on the TF
        # backend `layer.trainable = v` is skipped when it already equals v
        # (an identity short-circuit in Keras' `__setattr__`), so the
        # sublayers keras-hub creates in `build` under an already-frozen
        # parent would otherwise stay trainable. `build` calls this again.
        trainable = self._mode == "finetune"
        for layer in self._flatten_layers(include_self=True, recursive=True):
            keras.layers.Layer.trainable.fset(layer, trainable)

    def build(self, input_shape=None):
        self.embedding.build((None, None))
        if self.segment_embedding is not None:
            self.segment_embedding.build((None, None))
        self.embedding_norm.build((None, None, self.hidden_dim))
        for layer in self.transformer_layers:
            layer.build((None, None, self.hidden_dim))
        self._apply_mode()
        self.built = True

    def _training(self, training):
        return bool(training) and self.mode == "finetune"

    def _output(self, x):
        # Non-trainable Keras weights are still watched by a GradientTape (the
        # TF variables stay trainable), so a frozen encoder also cuts the
        # gradient itself: nothing computed downstream reaches its weights.
        return ops.stop_gradient(x) if self.mode == "frozen" else x

    def _embed(self, ids, segment, training):
        x = self.embedding(ids)
        if segment is not None:
            x = x + self.segment_embedding(ops.full(ops.shape(ids), segment, dtype="int32"))
        return self.embedding_dropout(self.embedding_norm(x), training=training)

    def _with_position_noise(self, x, positions, std, seed):
        """`x` plus the title-noise twin's noise at `positions`; `x` itself
        without positions or at std 0."""
        if positions is None or std <= 0:
            return x
        where = ops.expand_dims(ops.cast(positions, x.dtype), -1)
        count = ops.maximum(ops.sum(where, axis=(1, 2)) * ops.shape(x)[-1], 1.0)
        # The scale only: no gradient through the noise's size.
        rms = ops.stop_gradient(ops.sqrt(ops.sum(ops.square(x) * where, axis=(1, 2)) / count))
        noise = keras.random.normal(ops.shape(x), dtype=x.dtype,
                                    seed=self.noise_seed_generator if seed is None else seed)
        return x + noise * where * ops.reshape(std * rms, (-1, 1, 1))

    def _run_layers(self, x, mask, layers, training):
        for layer in layers:
            x = layer(x, padding_mask=mask, training=training)
        return x

    def _cls_output(self, x, mask, layers, training):
        """The [CLS] (position 0) output `[B, d]` of `layers` over `x`.

        r is the [CLS] output alone, and a transformer layer's output at one
        position depends on all positions' inputs only through its attention
        keys and values: so the top layer computes its query, attention and
        FFN for position 0 only. Exact, and ~5x cheaper for that layer (at 32
        positions) in training and serving alike.
        """
        x = self._run_layers(x, mask, layers[:-1], training)
        keys, values = self._top_keys_values(x)
        return self._top_cls(x[:, :1], keys, values, mask, training)

    def _top_keys_values(self, x):
        """The top layer's attention keys and values of states `x` `[B, S, d]`,
        each `[B, S, heads, head_dim]` (they depend on their own position only)."""
        top = self.transformer_layers[-1]
        inputs = top._self_attention_layer_norm(x) if top.normalize_first else x
        attention = top._self_attention_layer
        return attention._key_dense(inputs), attention._value_dense(inputs)

    def _top_cls(self, x_cls, keys, values, mask, training):
        """The top layer's output at [CLS] `[B, d]` from its input there
        `[B, 1, d]` and every position's keys, values and padding mask."""
        top = self.transformer_layers[-1]
        attention = top._self_attention_layer
        inputs = top._self_attention_layer_norm(x_cls) if top.normalize_first else x_cls
        # The attention of keras' MultiHeadAttention.call, given projected keys and values.
        y, _ = attention._compute_attention(
            attention._query_dense(inputs), keys, values,
            ops.expand_dims(ops.cast(mask, "bool"), 1), training)
        y = attention._output_dense(y)
        y = top._self_attention_dropout(y, training=training) + x_cls
        if not top.normalize_first:
            y = top._self_attention_layer_norm(y)
        z = top._feedforward_layer_norm(y) if top.normalize_first else y
        z = top._feedforward_output_dense(top._feedforward_intermediate_dense(z))
        z = top._feedforward_dropout(z, training=training) + y
        if not top.normalize_first:
            z = top._feedforward_layer_norm(z)
        return z[:, 0, :]

    # --- joint arrangement ------------------------------------------------
    def encode_pair(self, token_ids, training=None, noise_positions=None, noise_std=0.0,
                    seed=None):
        """r of `[CLS] q [SEP] t [SEP]` ids `[B, S]` (joint arrangement only).

        With `noise_positions` (bool `[B, S]`) and `noise_std` > 0, Gaussian
        noise of std `noise_std` · RMS(the row's embeddings there) is added to
        the input embeddings at those positions: a hard negative made in the
        title's token space (`PRECTRConfig.debias = "noise_title_embedding"`),
        drawn from the encoder's own seed generator unless `seed` is given.
        """
        if self.num_split_layers:
            raise ValueError("encode_pair is the joint arrangement; this encoder is split "
                             f"(num_split_layers={self.num_split_layers})")
        training = self._training(training)
        x = self._embed(token_ids, None, training)
        x = self._with_position_noise(x, noise_positions, noise_std, seed)
        return self._output(self._cls_output(x, ops.not_equal(token_ids, PAD_ID),
                                             self.transformer_layers, training))

    # --- split arrangement ------------------------------------------------
    def _check_split(self, name):
        if not self.num_split_layers:
            raise ValueError(f"{name} needs the split arrangement (num_split_layers > 0)")

    def _encode_side(self, ids, segment, training, noise_positions=None, noise_std=0.0,
                     seed=None):
        x = self._embed(ids, segment, training)
        x = self._with_position_noise(x, noise_positions, noise_std, seed)
        return self._output(self._run_layers(
            x, ops.not_equal(ids, PAD_ID), self.transformer_layers[: self.num_split_layers],
            training))

    def encode_query_states(self, query_ids, training=None):
        """Lower-layer states `[B, Sq, d]` of `[CLS] q [SEP]` (once per request)."""
        self._check_split("encode_query_states")
        return self._encode_side(query_ids, 0, self._training(training))

    def encode_title_states(self, title_ids, training=None):
        """Lower-layer states `[B, St, d]` of `t [SEP]`; depend on the title
        only, so an export can precompute them per item."""
        self._check_split("encode_title_states")
        return self._encode_side(title_ids, 1, self._training(training))

    def combine_states(self, query_states, query_mask, title_states, title_mask, training=None):
        """r from both sides' lower-layer states and padding masks (the joint top layers)."""
        self._check_split("combine_states")
        x = ops.concatenate([query_states, title_states], axis=1)
        mask = ops.concatenate([ops.cast(query_mask, "bool"), ops.cast(title_mask, "bool")],
                               axis=1)
        return self._output(self._cls_output(
            x, mask, self.transformer_layers[self.num_split_layers:], self._training(training)))

    def encode_split(self, query_ids, title_ids, training=None, noise_positions=None,
                     noise_std=0.0, seed=None):
        """r of the split arrangement from query and title ids.

        `noise_positions` (bool `[B, St]`, in `title_ids`) and `noise_std`
        perturb the title's input embeddings as `encode_pair` does the joint
        ones: the same hard negative on the split encoder."""
        training = self._training(training)
        title_states = self._encode_side(title_ids, 1, training, noise_positions, noise_std, seed)
        return self.combine_states(self._encode_side(query_ids, 0, training),
                                   ops.not_equal(query_ids, PAD_ID), title_states,
                                   ops.not_equal(title_ids, PAD_ID), training=training)

    # --- split serving: a per-title cache ---------------------------------
    @property
    def _caches_keys_values(self):
        """Whether the top layer is the only joint one, so that a title's
        cache is that layer's keys and values (else its lower-layer states)."""
        self._check_split("the title cache")
        return self.num_layers - self.num_split_layers == 1

    @property
    def title_cache_dim(self):
        """Width of `encode_title_cache`'s output: 2d (the top layer's keys
        and values) when the top layer is the only joint one, else d."""
        return 2 * self.hidden_dim if self._caches_keys_values else self.hidden_dim

    def encode_title_cache(self, title_ids):
        """What a split export stores per title, `[B, St, title_cache_dim]`.

        With one joint layer (the default split), a title enters r only
        through that layer's attention keys and values at its positions, so
        the cache holds those (concatenated): serving then skips the title
        side's projections, the largest per-candidate cost. With more joint
        layers it holds the lower-layer states.
        """
        states = self.encode_title_states(title_ids, training=False)
        if not self._caches_keys_values:
            return states
        keys, values = self._top_keys_values(states)
        flat = ops.shape(states)[:2] + (self.hidden_dim,)
        return ops.concatenate([ops.reshape(keys, flat), ops.reshape(values, flat)], axis=-1)

    def call_with_title_cache(self, query_ids, title_cache, title_mask, request_index=None):
        """r per row from cached titles; equals the full call (inference).

        Args:
            query_ids: int `[R, Sq]`, each request's query ids, encoded once
                per request.
            title_cache: float `[N, St, title_cache_dim]`, `encode_title_cache`
                of each row's title.
            title_mask: bool `[N, St]`, the titles' non-padding positions.
            request_index: int `[N]` or None, the request (row of
                `query_ids`) of each title row; None pairs them one to one.

        Returns:
            r, float `[N, d]`.
        """
        query_states = self.encode_query_states(query_ids, training=False)
        query_mask = ops.not_equal(query_ids, PAD_ID)
        if request_index is None:
            request_index = ops.arange(ops.shape(query_ids)[0])
        rows = lambda x: ops.take(x, request_index, axis=0)  # noqa: E731
        if not self._caches_keys_values:
            return self.combine_states(rows(query_states), rows(query_mask), title_cache,
                                       title_mask, training=False)
        query_keys, query_values = self._top_keys_values(query_states)
        heads = ops.shape(query_keys)[2:]
        shape = ops.shape(title_cache)[:2] + heads
        title_keys = ops.reshape(title_cache[..., : self.hidden_dim], shape)
        title_values = ops.reshape(title_cache[..., self.hidden_dim:], shape)
        mask = ops.concatenate([rows(query_mask), ops.cast(title_mask, "bool")], axis=1)
        return self._output(self._top_cls(
            rows(query_states[:, :1]),
            ops.concatenate([rows(query_keys), title_keys], axis=1),
            ops.concatenate([rows(query_values), title_values], axis=1), mask, False))

    # --- Keras --------------------------------------------------------------
    def call(self, inputs, training=None, noise_positions=None, noise_std=0.0):
        # The noise arguments reach `encode_split` (positions in `title_ids`)
        # or `encode_pair` (in `token_ids`): the title-noise twins of either
        # arrangement go through this one dispatch.
        if self.num_split_layers:
            if not isinstance(inputs, dict):
                raise ValueError("the split encoder takes a dict with query_ids and title_ids")
            return self.encode_split(inputs["query_ids"], inputs["title_ids"], training=training,
                                     noise_positions=noise_positions, noise_std=noise_std)
        token_ids = inputs["token_ids"] if isinstance(inputs, dict) else inputs
        return self.encode_pair(token_ids, training=training, noise_positions=noise_positions,
                                noise_std=noise_std)

    def compute_output_shape(self, input_shape):
        if isinstance(input_shape, dict):
            input_shape = next(iter(input_shape.values()))
        return (input_shape[0], self.hidden_dim)

    def get_config(self):
        config = super().get_config()
        config.pop("trainable", None)
        config.update({
            "vocabulary_size": self.vocabulary_size,
            "sequence_length": self.sequence_length,
            "num_layers": self.num_layers,
            "hidden_dim": self.hidden_dim,
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "dropout": self.dropout,
            "num_split_layers": self.num_split_layers,
            "mode": self.mode,
            "layer_norm_epsilon": self.layer_norm_epsilon,
        })
        return config
