"""The data contract (DESIGN §3): the one declaration of every field.

Readers, the simulator, the log validator, the example builder, the `tf.data`
pipeline, the model's inputs and the serving signature all derive
their field lists from `DataSchema`; no other module spells the fields out.

Two layers:

* the **impression log** (`LOG_FIELDS`): one row per (user, query, item) shown,
  as readers and the simulator emit it and `prectr build` consumes it;
* the **example** (`DataSchema.example_features`): a log row plus what the
  builder derives from the past of the log — `query_id`, the user's history
  and the query's cross-user context, each a list of `EVENT_FIELDS`.

Missing labels (`click`, `relevance`) are `MISSING_LABEL` (-1) in examples and
null/empty in the log: the losses mask them, they never mean level 0.
"""

import dataclasses
import json

MISSING_LABEL = -1

STRING = "string"
INT64 = "int64"
FLOAT32 = "float32"


@dataclasses.dataclass(frozen=True)
class Field:
    """One field of the contract.

    Args:
        name: column / feature name.
        dtype: one of `"string"`, `"int64"`, `"float32"`.
        doc: what the field means.
        required: whether a log must have the column.
        nullable: whether a row may leave it empty (labels only).
        non_empty: whether an empty string is invalid (ids, query text).
        min_value: inclusive lower bound for numbers (None: unbounded).
        max_value: inclusive upper bound for numbers (None: unbounded).
        vector: True for the fixed-width `item_features` vector.
        serving: what a ranking request carries it as: `"request"` (once per
            request), `"candidate"` (once per candidate), or `None` (log
            bookkeeping the model never reads).
    """

    name: str
    dtype: str
    doc: str
    required: bool = True
    nullable: bool = False
    non_empty: bool = False
    min_value: int | None = None
    max_value: int | None = None
    vector: bool = False
    serving: str | None = None


# The impression log. `relevance`'s upper bound depends on K and is filled in
# by `DataSchema.log_fields`.
LOG_FIELDS = (
    Field("impression_id", STRING, "unique id of this impression", non_empty=True),
    Field("request_id", STRING,
          "one logged search request (one user, one query, one result page)",
          non_empty=True),
    Field("user_id", STRING, "user (may be unseen at serving: cold start)",
          non_empty=True, serving="request"),
    Field("query", STRING, "raw query text", non_empty=True, serving="request"),
    Field("item_id", STRING, "item shown", non_empty=True, serving="candidate"),
    Field("item_title", STRING, "item title text (may be empty when a dataset has none)",
          serving="candidate"),
    Field("item_category", STRING, "item category (may be empty)", serving="candidate"),
    Field("item_features", FLOAT32,
          "optional dense item features (price, popularity, ...), width num_item_features",
          required=False, vector=True, serving="candidate"),
    Field("position", INT64, "0-based rank at which the item was shown", min_value=0),
    Field("timestamp", INT64, "event time; orders the log, histories never look past it"),
    Field("click", INT64, "1 clicked, 0 shown and not clicked; empty: unknown",
          nullable=True, min_value=0, max_value=1),
    Field("relevance", INT64, "graded relevance level in [0, K); empty: unlabelled",
          nullable=True, min_value=0),
)

# What a past event carries into `user_history` / `query_context` (DESIGN §4.5:
# cheap ids and labels, never re-encoded text).
EVENT_FIELDS = (
    Field("query_id", INT64, "hash of the event's normalised query"),
    Field("item_id", STRING, "item of the event"),
    Field("item_category", STRING, "category of the event's item"),
    Field("relevance", INT64, "logged relevance level, -1 unlabelled", nullable=True),
    Field("click", INT64, "click flag, -1 unknown", nullable=True),
    Field("timestamp", INT64, "event time (strictly before the impression's)"),
)

# The `unexposed` debias variant's hard negative (DESIGN §4.8), present when
# `DataSchema.unexposed_negatives`: per impression one candidate of its
# request that the logging policy did not show, with the teacher's level
# (`prectr_tf.data.unexposed` attaches them). Training only: no serving field.
NEGATIVE_PREFIX = "negative_"
NEGATIVE_FIELDS = (
    Field("negative_item_id", STRING,
          "an unshown candidate of the same request; empty: this row has none"),
    Field("negative_item_title", STRING, "its title"),
    Field("negative_item_category", STRING, "its category"),
    Field("negative_item_features", FLOAT32, "its item_features", vector=True),
    Field("negative_relevance", INT64,
          "the teacher's level for (query, its title); empty: none", nullable=True,
          min_value=0),
)

HISTORY_LISTS = ("user_history", "query_context")
# What a ranking request sends per candidate (and a catalogue holds per item).
CANDIDATE_FIELDS = tuple(f.name for f in LOG_FIELDS if f.serving == "candidate")
LABELS = ("click", "relevance")


@dataclasses.dataclass(frozen=True)
class DataSchema:
    """Dimensions of the contract; the field lists derive from them.

    Args:
        num_relevance_levels: K, the number of relevance levels (paper: 4).
        history_length: L_u, events kept in `user_history`.
        context_length: L_g, events kept in `query_context`.
        num_item_features: width of `item_features` (0: the column is absent).
        unexposed_negatives: bool (default False): the log also carries
            `NEGATIVE_FIELDS`, each impression's unshown hard negative.

    Example:
    >>> schema = DataSchema(history_length=5)
    >>> schema.list_feature_name("user_history", "item_id")
    'user_history_item_id'
    >>> DataSchema.from_json(schema.to_json()) == schema
    True
    """

    num_relevance_levels: int = 4
    history_length: int = 20
    context_length: int = 20
    num_item_features: int = 0
    unexposed_negatives: bool = False

    def __post_init__(self):
        for name in ("num_relevance_levels", "history_length", "context_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"DataSchema.{name} must be >= 1, got {getattr(self, name)}")
        if self.num_item_features < 0:
            raise ValueError(
                f"DataSchema.num_item_features must be >= 0, got {self.num_item_features}")

    # --- the log --------------------------------------------------------
    def log_fields(self):
        """The log's fields, with `relevance` bounded by K and `item_features`
        dropped when `num_item_features == 0`."""
        fields = []
        for f in LOG_FIELDS + (NEGATIVE_FIELDS if self.unexposed_negatives else ()):
            if f.name.endswith("relevance"):
                f = dataclasses.replace(f, max_value=self.num_relevance_levels - 1)
            if f.vector and self.num_item_features == 0:
                continue
            fields.append(f)
        return tuple(fields)

    def log_columns(self):
        return tuple(f.name for f in self.log_fields())

    def vector_features(self):
        """Names of the fixed-width vector fields (`item_features`, ...)."""
        return tuple(f.name for f in self.log_fields() if f.vector)

    def required_log_columns(self):
        return tuple(f.name for f in self.log_fields() if f.required)

    # --- the example ----------------------------------------------------
    def list_length(self, list_name):
        return {"user_history": self.history_length,
                "query_context": self.context_length}[list_name]

    @staticmethod
    def list_feature_name(list_name, field_name):
        return f"{list_name}_{field_name}"

    @staticmethod
    def list_length_name(list_name):
        return f"{list_name}_length"

    def example_features(self):
        """Every feature of a built example, in order, as
        `(name, dtype, shape)`; shape `()` scalar, `(n,)` fixed vector,
        `(L,)` padded list (variable-length on disk, with its `_length`)."""
        out = []
        for f in self.log_fields():
            if f.name in LABELS:
                continue
            shape = (self.num_item_features,) if f.vector else ()
            out.append((f.name, f.dtype, shape))
        out.append(("query_id", INT64, ()))
        # The user's impressions before this one (uncapped): the activity
        # signal for the preference gate and the cold/low/high slices.
        out.append(("user_event_count", INT64, ()))
        for list_name in HISTORY_LISTS:
            length = self.list_length(list_name)
            for f in EVENT_FIELDS:
                out.append((self.list_feature_name(list_name, f.name), f.dtype, (length,)))
            out.append((self.list_length_name(list_name), INT64, ()))
        return tuple(out)

    def request_features(self):
        """What a ranking request sends once (DESIGN §6), as
        `(name, dtype, shape)`: the user, the query text, the user's
        activity and history. `query_id` and the query context are derived
        by the server (the context from the export's table)."""
        out = [(f.name, f.dtype, ()) for f in self.log_fields() if f.serving == "request"]
        out.append(("user_event_count", INT64, ()))
        out += [(name, dtype, shape) for name, dtype, shape in self.example_features()
                if name.startswith("user_history_")]
        return tuple(out)

    def candidate_features(self):
        """What a ranking request sends per candidate, as `(name, dtype,
        shape)` with the per-candidate shape (`item_features`: `(F,)`)."""
        return tuple((f.name, f.dtype, (self.num_item_features,) if f.vector else ())
                     for f in self.log_fields() if f.serving == "candidate")

    def label_names(self):
        return LABELS

    def padding_value(self, dtype):
        """Pad value of a list of `dtype`: "" for ids, -1 for labels/ints."""
        return {STRING: "", INT64: MISSING_LABEL, FLOAT32: 0.0}[dtype]

    # --- persistence ----------------------------------------------------
    def to_json(self):
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text):
        values = json.loads(text)
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown DataSchema keys: {sorted(unknown)}")
        return cls(**values)
