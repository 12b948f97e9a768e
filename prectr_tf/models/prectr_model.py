"""`PRECTRModel`: PRECTR / PRECTR-V2 as one Keras 3 model (DESIGN §4).

    r        = encoder([CLS] query [SEP] title [SEP])            (§4.1)
    p        = softmax(RelevanceHead(r))                          (§4.2)
    b_k      = BaseCTRTower(ids, history attention, r)            (§4.3)
    r_user   = PersonalRelevancePreference(user_history)          (§4.5)
    r_pref   = g·r_user + (1−g)·GlobalPreferenceAggregator(r, query_context)  (§4.6)
    τ        = RelevanceIncentive(r, r_pref)                      (§4.7)
    P(click) = Σ_k σ(b_k + τ)·p_k                                 (§4.4)

While training with a `debias` variant, each hard-negative anchor (clicked and
relevant; `train_step` finds them from the labels) gets a hard negative scored
through the same heads (§4.8): a noisy twin r̃, or (`unexposed`) a real
unshown candidate of its request; at inference that branch does not exist.
`compute_loss` adds the tasks' weighted terms (`prectr_tf.models.tasks`).
The fine-tuned encoder gets its own optimizer with a smaller learning rate
(`encoder_learning_rate_multiplier`): with Adam, scaling gradients would not
scale the steps.

Example:
>>> from prectr_tf.data.pipeline import make_dataset
>>> from prectr_tf.models.config import EncoderConfig, preset
>>> model = PRECTRModel.from_dataset(data_dir, preset("prectr_v2", encoder=EncoderConfig(
...     num_layers=1, hidden_dim=16, num_heads=2, intermediate_dim=32)),
...     wordpiece_vocabulary=vocab)
>>> model.compile(optimizer=keras.optimizers.Adam(1e-3))
>>> history = model.fit(make_dataset(data_dir, "train").take(3), epochs=1, verbose=0)
>>> sorted(model.predict(features, verbose=0))[:4]
['click_given_relevance', 'click_logits', 'gate_probs', 'log_p_click']
"""

import dataclasses
import os

import keras
import tensorflow as tf
from keras import ops

from prectr_tf.config import dataclass_from_dict
from prectr_tf.data.build import VOCAB_FIELDS, read_dataset_info
from prectr_tf.data.schema import CANDIDATE_FIELDS, NEGATIVE_PREFIX, DataSchema
from prectr_tf.layers.click_fusion import ConditionalClickFusion
from prectr_tf.layers.ctr_tower import BaseCTRTower
from prectr_tf.layers.event_encoder import EventEncoder
from prectr_tf.layers.global_preference import GlobalPreferenceAggregator
from prectr_tf.layers.hard_negative import NoiseHardNegative
from prectr_tf.layers.id_embedding import IdEmbedding, load_vocabulary
from prectr_tf.layers.incentive import RelevanceIncentive
from prectr_tf.layers.personal_preference import PersonalRelevancePreference
from prectr_tf.layers.relevance_head import RelevanceHead
from prectr_tf.losses.masked_loss import track_loss, unscale_for_distribution
from prectr_tf.models.config import PRECTRConfig
from prectr_tf.models.distribute import DistributedModel, reducible_logs
from prectr_tf.models.dummy import dummy_batch
from prectr_tf.models.evaluation_rows import GroupedEvaluation
from prectr_tf.models.relevance_cache import FEATURE as CACHED_R
from prectr_tf.models.tasks import debias_anchor_mask, make_tasks

# The default hash buckets of query ids (DCN-v2 shares them).
QUERY_ID_BUCKETS = PRECTRConfig.query_id_buckets


@keras.saving.register_keras_serializable(package="prectr_tf")
class PRECTRModel(DistributedModel, GroupedEvaluation, keras.Model):
    """PRECTR / PRECTR-V2, every component behind a `PRECTRConfig` switch.

    Args:
        config: a `PRECTRConfig` (or its dict).
        schema: the `DataSchema` of the inputs (or its dict).
        vocabularies: `{"user_id", "item_id", "item_category": [tokens]}`,
            most frequent first (`prectr build` writes them).
        wordpiece_vocabulary: tokens of the text encoder (`None` for `dnn`).

    Call arguments:
        features: the dict of `prectr_tf.data.pipeline.make_dataset`; with
            a frozen encoder, or at inference, an optional
            `relevance_representation` `[B, d]` (`RelevanceCache.attach`,
            the split serving path) replaces tokenizer and encoder.
        training: Python bool.
        hard_negative_anchors: bool `[B]`, the rows whose noisy twin is
            scored in training (`tasks.debias_anchor_mask`); `None`: every
            row. Other rows' twin outputs are 0 (the debias task masks them).

    Returns:
        dict: `score` [B] = P(click), `log_p_click`, `log_p_no_click` [B],
        `relevance_logits`, `relevance_probs` [B, K], `click_logits` b [B, K]
        (`click_given_relevance` = σ(b + τ)), `tau` [B], `gate_probs` [B, 3];
        with debias in training also `negative_log_p_click` and
        `negative_relevance_logits`.
    """

    def __init__(self, config, schema, vocabularies, wordpiece_vocabulary=None, **kwargs):
        super().__init__(**kwargs)
        self.config = (config if isinstance(config, PRECTRConfig)
                       else dataclass_from_dict(PRECTRConfig, config, "PRECTRModel config"))
        self.schema = schema if isinstance(schema, DataSchema) else DataSchema(**schema)
        self.vocabularies = {k: list(v) for k, v in vocabularies.items()}
        self.wordpiece_vocabulary = (None if wordpiece_vocabulary is None
                                     else list(wordpiece_vocabulary))
        c, k = self.config, self.config.num_relevance_levels
        dim = c.embedding_dim
        shards = c.embedding_shards
        self.user_embedding = IdEmbedding(dim, vocabulary=self.vocabularies["user_id"],
                                          num_shards=shards, name="user_embedding")
        self.item_embedding = IdEmbedding(dim, vocabulary=self.vocabularies["item_id"],
                                          num_shards=shards, name="item_embedding")
        self.category_embedding = IdEmbedding(dim, vocabulary=self.vocabularies["item_category"],
                                              num_shards=shards, name="category_embedding")
        self.query_embedding = IdEmbedding(dim, num_buckets=c.query_id_buckets, id_dtype="int64",
                                           num_shards=shards, name="query_embedding")
        # The dnn baseline has one click logit and no relevance: P = σ(b).
        self.ctr_tower = BaseCTRTower(
            k if c.uses_text else 1, self.user_embedding, self.item_embedding,
            self.category_embedding, self.query_embedding, hidden_units=c.hidden_units,
            stop_gradient_relevance=c.stop_gradient_relevance,
            attention_hidden_units=c.attention_hidden_units, interaction_dim=c.interaction_dim,
            use_item_features=self.schema.num_item_features > 0, name="ctr_tower")
        if c.uses_text:
            self.tokenizer, self.encoder = c.encoder.text_layers(self.wordpiece_vocabulary,
                                                                 mode=c.encoder_mode)
            self.relevance_head = RelevanceHead(num_levels=k, hidden_units=c.relevance_head_units,
                                                name="relevance_head")
        if c.use_personal_preference or c.use_cross_user:
            self.event_encoder = EventEncoder(k, self.item_embedding, self.category_embedding,
                                              self.query_embedding,
                                              relevance_dim=c.event_relevance_dim,
                                              click_dim=c.event_click_dim, name="event_encoder")
        if c.use_personal_preference:
            self.personal_preference = PersonalRelevancePreference(
                c.encoder.hidden_dim, similarity_scale=c.preference_similarity_scale,
                hidden_units=c.preference_hidden_units, name="personal_preference")
        if c.use_cross_user:
            self.global_preference = GlobalPreferenceAggregator(
                num_heads=c.cross_user_num_heads, output_dim=c.encoder.hidden_dim,
                gate_hidden_units=c.cross_user_gate_units, name="global_preference")
        if c.use_incentive:
            self.incentive = RelevanceIncentive(hidden_units=c.incentive_hidden_units,
                                                temperature=c.gumbel_temperature,
                                                name="incentive")
        if c.debias in ("noise_r", "noise_r_pairwise_only"):
            self.hard_negative = NoiseHardNegative(relative_noise_std=c.debias_noise_scale,
                                                   name="hard_negative")
        if c.debias == "unexposed" and not self.schema.unexposed_negatives:
            raise ValueError("debias='unexposed' needs a dataset built with unexposed "
                             "negatives (DataSchema.unexposed_negatives; `prectr build "
                             "--candidates ... --items ...`)")
        self.fusion = ConditionalClickFusion(name="fusion")
        self.tasks = make_tasks(self.config)
        self.total_loss_tracker = keras.metrics.Mean(name="loss")
        self.encoder_optimizer = None

    @classmethod
    def from_dataset(cls, data_dir, config, wordpiece_vocabulary=None, **kwargs):
        """A model whose inputs and vocabularies are those of a built dataset."""
        info = read_dataset_info(data_dir)
        vocabularies = {name: load_vocabulary(os.path.join(data_dir, "vocab", f"{name}.txt"))
                        for name in VOCAB_FIELDS if name != "query"}
        if config.relevance_id_features is None:
            # No title anywhere: r cannot tell one item from another, so the
            # relevance head needs the ids (the saved config records the choice).
            titled = info["splits"]["train"].get("num_titled")
            config = dataclasses.replace(config, relevance_id_features=titled == 0)
        return cls(config, DataSchema(**info["schema"]), vocabularies, wordpiece_vocabulary,
                   **kwargs)

    # --- forward --------------------------------------------------------
    def call(self, features, training=False, hard_negative_anchors=None):
        c = self.config
        if not c.uses_text:
            b = self.ctr_tower(features, None, training=training)
            log_p_click = ops.log_sigmoid(b[:, 0])
            return {"score": ops.exp(log_p_click), "log_p_click": log_p_click,
                    "log_p_no_click": ops.log_sigmoid(-b[:, 0]), "click_logits": b}
        out, context, r, preference = self._text_forward(features, training)
        if c.use_debias and training:
            if c.debias == "unexposed":
                negative = self._over_rows(hard_negative_anchors, self._unexposed, features)
            else:
                negative = self._over_rows(hard_negative_anchors, self._twins, context, r,
                                           preference, (features["query"], features["item_title"]))
            out.update(negative)
        return out

    def _text_forward(self, features, training):
        """The outputs of the text model, with the parts a twin reuses:
        `(outputs, tower context, r, preference)`."""
        if CACHED_R in features and (self.encoder.mode == "frozen" or not training):
            # A given r (RelevanceCache, or the split serving path) replaces
            # tokenizer and encoder wherever the encoder is not being trained.
            r = ops.convert_to_tensor(features[CACHED_R])
        else:
            r = self._encode_pairs(features["query"], features["item_title"], training)
        preference = self._preference(features, r, training)
        # The tower's r-independent part (embeddings, history attention) is
        # computed once; the noisy twins reuse it.
        context = self.ctr_tower.context(features, training=training)
        return self._heads(context, r, preference, training), context, r, preference

    @staticmethod
    def _over_rows(anchors, fn, *inputs):
        """`fn(*inputs)` over the anchor rows only (~1 in 10 rows are
        anchors), its outputs scattered back to `[B, ...]`, 0 on the other
        rows; every row when `anchors` is None."""
        if anchors is None:
            return fn(*inputs)
        index = tf.where(tf.reshape(anchors, [-1]))
        # tf.gather, not gather_nd: gather_nd refuses zero-width inputs
        # (`item_features` of a dataset without features, e.g. TREC).
        out = fn(*tf.nest.map_structure(lambda x: tf.gather(x, index[:, 0]), inputs))
        batch = tf.shape(anchors, out_type=index.dtype)[:1]
        return {name: tf.scatter_nd(index, value, tf.concat([batch, tf.shape(
                    value, out_type=index.dtype)[1:]], 0)) for name, value in out.items()}

    def _twins(self, context, r, preference, pairs):
        """The noisy twins' click and relevance outputs: r + ε (`noise_r*`),
        or the anchor's (query, title) re-encoded with noise on the title's
        token embeddings (`noise_title_embedding`)."""
        if self.config.debias == "noise_title_embedding":
            query, title = (tf.reshape(p, [-1]) for p in pairs)
            tokens = self.tokenizer(query, title)
            split = bool(self.encoder.num_split_layers)
            positions = self.tokenizer.title_positions(
                tokens["title_ids" if split else "token_ids"], split=split)
            noisy = self.encoder(tokens, training=True, noise_positions=positions,
                                 noise_std=self.config.debias_noise_scale)
        else:
            noisy = self.hard_negative(r, training=True)["representation"]
        negative = self._heads(context, noisy, preference, training=True)
        return {"negative_log_p_click": negative["log_p_click"],
                "negative_relevance_logits": negative["relevance_logits"]}

    def _unexposed(self, features):
        """The unexposed negatives' outputs: each row's `negative_*` item in
        place of its own, with the same user, query and history."""
        negative = {name: value for name, value in features.items() if name != CACHED_R}
        for name in CANDIDATE_FIELDS:
            if NEGATIVE_PREFIX + name in features:
                negative[name] = features[NEGATIVE_PREFIX + name]
        out = self._text_forward(negative, training=True)[0]
        return {"negative_log_p_click": out["log_p_click"],
                "negative_relevance_logits": out["relevance_logits"]}

    def _encode_pairs(self, query, title, training):
        """r `[B, d]`; with `dedup_pairs`, each distinct (query, title) of the
        batch is encoded once and its r gathered back to every row (in
        training, repeated pairs then share one dropout mask)."""
        if not self.config.dedup_pairs:
            return self.encoder(self.tokenizer(query, title), training=training)
        query, title = tf.reshape(query, [-1]), tf.reshape(title, [-1])
        pairs, index = tf.unique(tf.strings.join([query, title], separator="\x1f"))
        first = tf.math.unsorted_segment_min(tf.range(tf.size(index)), index, tf.size(pairs))
        r = self.encoder(self.tokenizer(tf.gather(query, first), tf.gather(title, first)),
                         training=training)
        return tf.gather(r, index)

    def _preference(self, features, r, training):
        c = self.config
        r_user = ops.zeros_like(r)
        if c.use_personal_preference:
            r_user = self.personal_preference(
                self.event_encoder(features, list_name="user_history"))
        if not c.use_cross_user:
            return r_user
        context = self.event_encoder(features, list_name="query_context")
        return self.global_preference(
            r, context, user_preference=r_user, history_length=features["user_history_length"],
            user_event_count=features["user_event_count"], training=training)["preference"]

    def _heads(self, context, r, preference, training):
        relevance_logits = self.relevance_head(
            r, context["pair"] if self.config.relevance_id_features else None, training=training)
        b = self.ctr_tower.logits_from_context(context, r, training=training)
        if self.config.use_incentive:
            tau, gate_probs = self.incentive(r, preference, training=training)
            if training:  # the load-balance term wants the gate without Gumbel noise
                gate_probs = ops.softmax(self.incentive.gate_logits(r, preference)[0])
        else:
            tau = ops.zeros_like(b[:, :1])
            gate_probs = ops.ones_like(b[:, :3]) / 3.0
        fused = self.fusion(b, tau, relevance_logits)
        return {"score": fused["p_click"][:, 0], "log_p_click": fused["log_p_click"][:, 0],
                "log_p_no_click": fused["log_p_no_click"][:, 0],
                "relevance_logits": relevance_logits,
                "relevance_probs": ops.softmax(relevance_logits),
                "click_logits": b, "click_given_relevance": ops.sigmoid(b + tau),
                "tau": tau[:, 0], "gate_probs": gate_probs}

    # --- objective and metrics -----------------------------------------
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        total = ops.zeros(())
        for task in self.tasks:
            total = total + task.weighted_loss(y, y_pred, x, sample_weight, training)
        track_loss(self.total_loss_tracker, total, ops.shape(y_pred["score"])[0])
        return total

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        for task in self.tasks:
            task.update_metrics(y, y_pred, x, sample_weight)
        results = {}
        for metric in self.metrics:
            value = metric.result()
            results.update(value if isinstance(value, dict) else {metric.name: value})
        return results

    @property
    def metrics(self):
        return [self.total_loss_tracker] + [m for task in self.tasks for m in task.metrics]

    def compile(self, optimizer="adam", encoder_optimizer=None, **kwargs):
        """Keras `compile`, plus the encoder's own optimizer when fine-tuning
        (default: the same Adam class at `encoder_learning_rate_multiplier`
        times the learning rate). The tokenizer and the id lookups work on
        strings, which XLA cannot compile, so `jit_compile` defaults to
        False."""
        kwargs.setdefault("jit_compile", False)
        super().compile(optimizer=optimizer, **kwargs)
        if self.config.encoder_mode == "finetune":
            if encoder_optimizer is None:
                encoder_optimizer = self.optimizer.__class__.from_config(
                    dict(self.optimizer.get_config(), learning_rate=float(
                        ops.convert_to_numpy(self.optimizer.learning_rate))
                        * self.config.encoder_learning_rate_multiplier))
            self.encoder_optimizer = keras.optimizers.get(encoder_optimizer)

    def get_compile_config(self):
        # Optimizer state is not kept in the .keras file; a loaded model is
        # compiled with defaults, enough to evaluate and to fine-tune further.
        # (Keras skips an empty compile config.)
        return {"jit_compile": False}

    def compile_from_config(self, config):
        self.compile(**config)

    def optimizers_and_variables(self):
        """`[(optimizer, variables)]`: the fine-tuned encoder's variables go to
        `encoder_optimizer`, every other trainable variable to `optimizer`."""
        encoder_vars = (self.encoder.trainable_variables
                        if self.encoder_optimizer is not None else [])
        encoder_ids = {id(v) for v in encoder_vars}
        other_vars = [v for v in self.trainable_variables if id(v) not in encoder_ids]
        return [(self.optimizer, other_vars), (self.encoder_optimizer, encoder_vars)]

    def train_step(self, data):
        return reducible_logs(self.train_step_loss(data)[1])

    def train_step_loss(self, data):
        """One training step; `(loss, logs)`: the batch's objective (as a
        single process computes it) with `train_step`'s logs. A loop whose
        workers update shared metrics concurrently reads the loss from here:
        Keras 3 variables `assign_add` by read-modify-write, so concurrent
        metric updates on parameter servers can be lost."""
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        anchors = None
        if self.config.use_debias:
            anchors = debias_anchor_mask(y, x, self.config.num_relevance_levels,
                                         teacher_negatives=self.config.debias == "unexposed")
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True, hard_negative_anchors=anchors)
            loss = self.compute_loss(x, y, y_pred, sample_weight, training=True)
        parts = [(opt, variables) for opt, variables in self.optimizers_and_variables()
                 if variables]
        grads = tape.gradient(loss, [v for _, variables in parts for v in variables])
        start = 0
        for optimizer, variables in parts:
            optimizer.apply(grads[start:start + len(variables)], variables)
            start += len(variables)
        return (unscale_for_distribution(loss),
                self.compute_metrics(x, y, y_pred, sample_weight))

    # --- serialisation --------------------------------------------------
    def get_config(self):
        return {**super().get_config(), "config": dataclasses.asdict(self.config),
                "schema": dataclasses.asdict(self.schema), "vocabularies": self.vocabularies,
                "wordpiece_vocabulary": self.wordpiece_vocabulary}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def build(self, input_shape=None):
        # Inputs are a dict of strings and ints whose shapes alone cannot
        # build the lookups: build every sublayer by running a dummy batch.
        batch = dummy_batch(self.schema)
        self.call(batch, training=False)
        if self.config.uses_text:
            r = self.encoder(self.tokenizer(batch["query"], batch["item_title"]))
            # `call` uses the tower through `context`: mark it built via __call__.
            self.ctr_tower(batch, r)
            if hasattr(self, "hard_negative"):
                self.hard_negative(r, training=False)
        self.built = True

    def build_from_config(self, config):
        self.build()

    def get_build_config(self):
        return {"schema": dataclasses.asdict(self.schema)}
