"""`PRECTRConfig` and the presets: one class, every component behind a switch.

| preset | encoder | personal pref. | cross-user | incentive | debias | consistency |
|---|---|---|---|---|---|---|
| `dnn` | none | – | – | – | – | – |
| `prectr_v1` | frozen | yes | – | yes | – | yes |
| `prectr_v2` | finetune | yes | yes | yes | yes | yes |
| `v2_no_cross` | finetune | yes | – | yes | yes | yes |
| `v2_no_debias` | finetune | yes | yes | yes | – | yes |
| `v2_frozen_encoder` | frozen | yes | yes | yes | yes | yes |

`prectr_v1`, `v2_frozen_encoder` and `prectr_v2` start from the same
pre-trained encoder (stage 0, DESIGN §4); they differ only in whether it is
fine-tuned. `dnn` is the plain baseline: the CTR tower alone, one click logit,
no text and no relevance head.
"""

import dataclasses

ENCODER_MODES = ("none", "frozen", "finetune")
# Exposure-bias corrections (`PRECTRConfig.debias`); "noise_r" is the paper's reading,
# "noise_title_embedding" the default (the 5-seed 200k run's pick; BENCHMARKS.md).
DEBIAS_VARIANTS = ("none", "noise_r", "noise_r_pairwise_only", "noise_title_embedding",
                   "unexposed")


@dataclasses.dataclass(frozen=True)
class EncoderConfig:
    """The compact relevance encoder (DESIGN §4.1; paper: 3 layers, ~2M params).

    The vocabulary size is the learned WordPiece vocabulary's
    (`TrainConfig.wordpiece_vocabulary_size`), not a field here.

    Args:
        max_length: tokens of `[CLS] query [SEP] title [SEP]` at most.
        query_length: tokens of `[CLS] query [SEP]` (the query is cut to
            `query_length - 2` word pieces in the joint view too).
        title_length: tokens of `title [SEP]` on the split encoder's title side.
        pad_to_longest: pad a batch's pairs to its longest, not `max_length`.
        num_layers: transformer layers.
        hidden_dim: model width d (r has this size).
        num_heads: attention heads.
        intermediate_dim: feed-forward width.
        dropout: dropout inside the encoder.
        num_split_layers: lower layers run over query and title separately
            (PreTTR-style, so title states can be precomputed for serving);
            0 is the plain joint cross-encoder.
    """

    max_length: int = 32
    query_length: int = 10
    title_length: int = 22
    pad_to_longest: bool = True
    num_layers: int = 3
    hidden_dim: int = 64
    num_heads: int = 4
    intermediate_dim: int = 256
    dropout: float = 0.1
    num_split_layers: int = 0

    def __post_init__(self):
        if not 0 <= self.num_split_layers < self.num_layers:
            raise ValueError(f"num_split_layers must be in [0, num_layers), got "
                             f"{self.num_split_layers}")

    def text_layers(self, vocabulary, mode="finetune"):
        """The one factory of the text side: `(PairTokenizer,
        RelevanceTextEncoder)` for a WordPiece `vocabulary` (list or path) in
        encoder `mode` (`"finetune"` or `"frozen"`)."""
        from prectr_tf.layers.text_encoder import RelevanceTextEncoder  # noqa: PLC0415
        from prectr_tf.layers.text_preprocessing import PairTokenizer  # noqa: PLC0415

        tokenizer = PairTokenizer(vocabulary, max_length=self.max_length,
                                  query_length=self.query_length,
                                  title_length=self.title_length,
                                  pad_to_longest=self.pad_to_longest, name="tokenizer")
        encoder = RelevanceTextEncoder(
            vocabulary_size=tokenizer.vocabulary_size, sequence_length=self.max_length,
            num_layers=self.num_layers, hidden_dim=self.hidden_dim, num_heads=self.num_heads,
            intermediate_dim=self.intermediate_dim, dropout=self.dropout,
            num_split_layers=self.num_split_layers, mode=mode, name="encoder")
        return tokenizer, encoder


@dataclasses.dataclass(frozen=True)
class PRECTRConfig:
    """Everything that defines a PRECTR model.

    Args:
        name: the preset or experiment name.
        encoder_mode: `"none"` (no text: the `dnn` baseline), `"frozen"`
            (PRECTR v1) or `"finetune"` (PRECTR-V2).
        encoder: `EncoderConfig`.
        num_relevance_levels: K.
        embedding_dim: id embedding width.
        hidden_units: MLP widths of the CTR tower.
        stop_gradient_relevance: the CTR tower sees r without sending it
            gradients (the relevance head and fusion still do).
        use_personal_preference: r_user from the user history (DESIGN §4.5).
        use_cross_user: `GlobalPreferenceAggregator` over the query context
            (DESIGN §4.6).
        use_incentive: the three-expert incentive τ(x) (DESIGN §4.7).
        debias: the exposure-bias correction (§4.8), one of `DEBIAS_VARIANTS`
            (default `"noise_title_embedding"`, the 5-seed run's pick):
            `"noise_r"` — the paper's reading: each anchor's twin r̃ = r + ε
            is scored through the same heads, must rank a margin below the
            anchor (`PairwiseDebiasLoss`) and is labelled level 0 for the
            relevance head; `"noise_r_pairwise_only"` — the same twin, its
            fake label used only to order the pair (no relevance
            cross-entropy on the twin, which made the noise act as label
            noise in the quality run); `"noise_title_embedding"` — the anchor's
            pair re-encoded with noise on the title's token embeddings (σ =
            `debias_noise_scale` · their RMS), its label reconstructed by the
            relevance head (argmax, no gradient), ordered below the anchor
            only where that label is below the anchor's (on the split encoder,
            noise on the title side's input embeddings);
            `"unexposed"` — no synthetic twin: each anchor's negative is a
            real candidate of its request that the policy did not show
            (`prectr_tf.data.unexposed`; a dataset built with
            `DataSchema(unexposed_negatives=True)`), scored with the anchor's
            user and query, labelled with the teacher's level and ranked below
            the anchor where that level is below the anchor's; `"none"`.
        use_consistency: the monotonicity penalty (§4.9).
        rsl_weight, consistency_weight, load_balance_weight, debias_weight:
            λ of each term of the objective. λ_bal = 0.1 and λ_debias = 0.1
            come from a one-seed sweep (seed 0, held out of the published
            5-seed table; BENCHMARKS.md): at λ_bal = 0.01 the incentive gate
            can collapse onto one expert, and λ_debias = 0.5 cost V2 0.08
            full-space NDCG@10 against 0.1.
        debias_margin: m of the pairwise hinge.
        debias_noise_scale: σ of the noise, relative to the RMS of r (or of
            the title's embeddings).
        debias_keep_fraction: hardest share of unresolved pairs kept.
        gumbel_temperature: of the incentive gate while training.
        encoder_learning_rate_multiplier: the fine-tuned encoder's learning
            rate relative to the rest (DESIGN: smaller).
        dedup_pairs: encode each distinct (query, title) of a batch once
            (exact at inference; the same item shown for the same query in
            several requests repeats pairs).
        query_id_buckets: hash buckets of the query-id embedding.
        embedding_shards: variables each id embedding table is split into
            (`IdEmbedding(num_shards=)`); under `ParameterServerStrategy`
            they are spread over the parameter servers (`prectr train
            --strategy parameter_server` sets it to their number when 1).
        relevance_head_units: MLP widths of the relevance head.
        relevance_id_features: the relevance head also reads the query, item
            and category embeddings and the item features (`CTRTower.context`
            "pair"), so that a dataset without text (TREC Session: empty
            titles, r constant within a request) still gets an item-dependent
            relevance. Their input weights start at zero: the head starts as
            the stage-0 student's. None (default): on exactly when no
            training example of the dataset has a title, as
            `PRECTRModel.from_dataset` reads it from `dataset.json`
            (`num_titled`; a dataset built before that field, or a model
            built without a dataset, reads None as off). TREC 2014 Session,
            5 seeds: AUC 0.658 with it, 0.630 without, `dnn` 0.616
            (BENCHMARKS.md).
        attention_hidden_units: score-MLP widths of the CTR tower's
            history attention.
        interaction_dim: width of the CTR tower's user–item factor term
            (`BaseCTRTower(interaction_dim=)`); 0 (default) leaves it out.
        event_relevance_dim, event_click_dim: embedding widths of an
            event's relevance level and click in the history / query
            context.
        preference_similarity_scale: sharpness of the personal preference's
            attention over the user's events.
        preference_hidden_units: MLP widths of the personal preference.
        cross_user_num_heads: attention heads of the cross-user aggregator.
        cross_user_gate_units: MLP widths of its personal/global gate.
        incentive_hidden_units: MLP widths of the incentive's gate and experts.
    """

    name: str = "prectr_v2"
    encoder_mode: str = "finetune"
    encoder: EncoderConfig = EncoderConfig()
    num_relevance_levels: int = 4
    embedding_dim: int = 16
    hidden_units: tuple[int, ...] = (128, 64)
    stop_gradient_relevance: bool = False
    use_personal_preference: bool = True
    use_cross_user: bool = True
    use_incentive: bool = True
    debias: str = "noise_title_embedding"
    use_consistency: bool = True
    rsl_weight: float = 1.0
    consistency_weight: float = 0.1
    load_balance_weight: float = 0.1
    debias_weight: float = 0.1
    debias_margin: float = 0.1
    debias_noise_scale: float = 0.5
    debias_keep_fraction: float = 0.5
    gumbel_temperature: float = 1.0
    encoder_learning_rate_multiplier: float = 0.1
    dedup_pairs: bool = True
    query_id_buckets: int = 100_003
    embedding_shards: int = 1
    relevance_head_units: tuple[int, ...] = (64,)
    relevance_id_features: bool | None = None
    attention_hidden_units: tuple[int, ...] = (32, 16)
    interaction_dim: int = 0
    event_relevance_dim: int = 8
    event_click_dim: int = 4
    preference_similarity_scale: float = 5.0
    preference_hidden_units: tuple[int, ...] = (16,)
    cross_user_num_heads: int = 4
    cross_user_gate_units: tuple[int, ...] = (16,)
    incentive_hidden_units: tuple[int, ...] = (32,)

    def __post_init__(self):
        if self.embedding_shards < 1:
            raise ValueError(f"embedding_shards must be >= 1, got {self.embedding_shards}")
        if self.encoder_mode not in ENCODER_MODES:
            raise ValueError(f"encoder_mode must be one of {ENCODER_MODES}, got "
                             f"{self.encoder_mode!r}")
        if self.debias not in DEBIAS_VARIANTS:
            raise ValueError(f"debias must be one of {DEBIAS_VARIANTS}, got {self.debias!r}")
        if self.encoder_mode == "none" and (self.use_personal_preference or self.use_cross_user
                                            or self.use_incentive or self.use_debias):
            raise ValueError("encoder_mode='none' (the dnn baseline) has no relevance "
                             "representation: personal/cross-user preference, incentive "
                             "and debias need one")
        if self.num_relevance_levels < 2:
            raise ValueError("num_relevance_levels must be >= 2")

    @property
    def uses_text(self):
        return self.encoder_mode != "none"

    @property
    def use_debias(self):
        """Whether training scores hard-negative twins (any variant but none)."""
        return self.debias != "none"


_V2 = PRECTRConfig()
_NO_EXTRAS = dict(use_personal_preference=False, use_cross_user=False, use_incentive=False,
                  debias="none", use_consistency=False)

PRESETS = {
    "dnn": dataclasses.replace(_V2, name="dnn", encoder_mode="none", **_NO_EXTRAS),
    "prectr_v1": dataclasses.replace(_V2, name="prectr_v1", encoder_mode="frozen",
                                     use_cross_user=False, debias="none"),
    "prectr_v2": _V2,
    "v2_no_cross": dataclasses.replace(_V2, name="v2_no_cross", use_cross_user=False),
    "v2_no_debias": dataclasses.replace(_V2, name="v2_no_debias", debias="none"),
    "v2_frozen_encoder": dataclasses.replace(_V2, name="v2_frozen_encoder",
                                             encoder_mode="frozen"),
}


def preset(name, **overrides):
    """A preset config, optionally with fields replaced.

    Example:
    >>> preset("prectr_v1").use_cross_user
    False
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    return dataclasses.replace(PRESETS[name], **overrides)
