"""`SimulatorConfig`: every parameter of the search-log simulator, documented."""

import dataclasses
import math
import numbers
import typing

CATALOGUES = ("synthetic", "homedepot")


@dataclasses.dataclass(frozen=True)
class SimulatorConfig:
    """Parameters of the search-log simulator.

    The generative process, in order (each step draws from its own child of
    `numpy.random.SeedSequence(seed)`, so changing one step's parameters does
    not reshuffle the others):

    1. **Catalogue.** Items (id, title, category, dense features, a
       popularity score) and queries, and for every query a fixed
       **candidate set** of `num_candidates` items — the coarse-ranking
       candidates — with the **true relevance level** of each (query, item).
       `"synthetic"`: items are a brand, an attribute, a category noun and a
       size ("acme cordless drill 10 in."); queries combine a noun with
       optionally an attribute and/or a brand. The level grades the match:
       same category and every attribute/brand the query names → 3; same
       category with one (two) named attribute/brand missed → 2 (1); another
       category of the same department → 1; unrelated → 0 (for K != 4 this
       0..3 grade is rescaled to 0..K-1 and rounded). Candidates are drawn by a
       noisy retrieval stage, the top `num_candidates` of
       `candidate_sharpness · grade + Gumbel noise`.
       `"homedepot"`: real queries and titles of the Home Depot data; a
       query's candidates are its judged products with their human grade
       (mapped by `relevance_level_from_mean_rating`) plus random products
       judged only for other queries, **assumed irrelevant (level 0)**.
    2. **Users.** `num_users` users; a `cold_start_share` of them make exactly
       one request (they never have a history); the others make at least two,
       the remaining requests shared out with Zipf weights
       rank^-`activity_zipf_exponent`. Each user has a personal relevance
       tolerance t_u ~ N(0, `user_tolerance_std`²): how many levels below the
       query's usual threshold this user still clicks; a relevance
       sensitivity s_u ~ N(0, `user_sensitivity_std`²): how strictly this user
       trades relevance against interest and popularity; and an interest
       vector z_u ~ N(0, I) of `interest_dim` dimensions.
    3. **Traffic.** `num_requests` requests at distinct integer times in
       [0, `time_span_seconds`), each by one user (in random order) for one
       query drawn with Zipf weights rank^-`query_zipf_exponent` over a
       random ranking of the queries.
    4. **Click model** (position-based examination hypothesis). Each query has a
       population threshold θ_q = `relevance_threshold` + N(0,
       `query_tolerance_std`²) — the level at which its users click at the
       base rate — and a sensitivity s_q ~ N(0, `query_sensitivity_std`²), how
       strictly its population trades relevance against other attractions
       (a brand query is strict, a browsing query is not); these are what
       cross-user preference mining must recover. Each item has a latent
       vector v_i, the sum of its interest groups' vectors (synthetic: its
       category's and its brand's; Home Depot, which has neither: one per
       item), scaled so that affinity(u, i) = z_u · v_i has mean 0 and
       variance 1 (`Catalogue.item_interest_groups`). Attractiveness, the
       click probability if examined:
       a = sigmoid(logit(`click_base_rate`) + `relevance_slope`·exp(s_u +
       s_q)·(level − θ_q + t_u) + `interest_weight`·affinity(u, i) +
       `popularity_weight`·popularity_item). Within one request θ_q and t_u
       shift every candidate alike; s_u, s_q and the affinity change the
       order. With `interest_weight` = `user_sensitivity_std` =
       `query_sensitivity_std` = 0 the log is the one of the click model
       without them, bit for bit. Examination at 0-based
       position p: (1 + p)^-`position_bias_exponent`. P(click) = a ·
       examination.
    5. **Logging policy** (exposure bias). Each request shows `page_size` of
       its candidates: a Plackett–Luce sample without replacement with logits
       `policy_sharpness`·level (Gumbel top-k), in order of the perturbed
       score, so relevant items are shown more and higher up.
    6. **Labels.** Clicks are Bernoulli(P(click)). Each impression carries its
       true level as a human relevance label with probability
       `relevance_label_share`, else the label is missing.

    Args:
        seed: root seed; the same config gives the same log.
        catalogue: `"synthetic"` or `"homedepot"`.
        homedepot_dir: folder holding Home Depot's `train.csv.zip`; required
            when `catalogue="homedepot"`.
        num_items: synthetic catalogue size (ignored for Home Depot, whose
            catalogue is its 54,667 products).
        num_queries: number of distinct queries: synthetic ones drawn from the
            template space (at most 13,650), or a random subset of Home Depot's 11,793
            normalised search terms (`None`: all of them; Home Depot only).
        num_users: number of users.
        num_requests: number of requests; the log has `num_requests ·
            page_size` impressions.
        activity_zipf_exponent: Zipf exponent of the extra requests of
            non-cold users (0: uniform; larger: a few heavy users).
        query_zipf_exponent: Zipf exponent of query popularity.
        cold_start_share: share of users with exactly one request.
        num_candidates: candidate-set size per query (the full coarse-ranking
            space a ranker is scored on).
        page_size: impressions shown per request (positions 0..page_size-1).
        candidate_sharpness: synthetic retrieval's preference for matching
            items (0: candidates uniform over the catalogue).
        relevance_label_share: fraction of impressions with a relevance label.
        num_relevance_levels: K, the number of relevance levels.
        relevance_threshold: mean population threshold (in levels);
            `None` means (K − 1) / 2.
        query_tolerance_std: spread of the per-query thresholds θ_q.
        user_tolerance_std: spread of the per-user tolerances t_u.
        relevance_slope: logit change per relevance level (at s_u = s_q = 0).
        user_sensitivity_std: σ_u, spread of the per-user relevance
            sensitivities s_u (0: every user trades relevance alike).
        query_sensitivity_std: σ_q, spread of the per-query sensitivities s_q.
        interest_weight: logit change per standard deviation of the
            user–item affinity (0: users have no interests).
        interest_dim: dimensions of the interest vectors z_u and v_i.
        click_base_rate: attractiveness at level = θ_q, t_u = 0, popularity 0.
        popularity_weight: logit change per standard deviation of item
            popularity (a small, relevance-independent click driver).
        policy_sharpness: logging policy's preference for relevant items
            (0: a uniformly random page, no exposure bias).
        position_bias_exponent: η in examination (1 + p)^-η (0: no bias).
        time_span_seconds: length of the logged period.
        num_item_features: width of `item_features`: [standardised log
            popularity, standardised log price, then N(0, 1) features with no
            effect on clicks]; 0 drops the column.
        write_candidates: whether `SimulatedLog.write` also writes
            `candidates.parquet` (num_candidates rows per request).

    Example:
    >>> config = SimulatorConfig.from_dict({"seed": 1, "num_users": 100, "num_requests": 400})
    >>> config.num_impressions, config.threshold
    (4000, 1.5)
    """

    seed: int = 0
    catalogue: str = "synthetic"
    homedepot_dir: str | None = None
    num_items: int = 5000
    num_queries: int | None = 1000
    num_users: int = 5000
    num_requests: int = 25_000
    activity_zipf_exponent: float = 0.8
    query_zipf_exponent: float = 1.0
    cold_start_share: float = 0.3
    num_candidates: int = 100
    page_size: int = 10
    candidate_sharpness: float = 2.0
    relevance_label_share: float = 0.3
    num_relevance_levels: int = 4
    relevance_threshold: float | None = None
    query_tolerance_std: float = 0.5
    user_tolerance_std: float = 0.5
    relevance_slope: float = 1.5
    user_sensitivity_std: float = 0.5
    query_sensitivity_std: float = 0.5
    interest_weight: float = 1.0
    interest_dim: int = 8
    click_base_rate: float = 0.3
    popularity_weight: float = 0.2
    policy_sharpness: float = 1.0
    position_bias_exponent: float = 1.0
    time_span_seconds: int = 30 * 24 * 3600
    num_item_features: int = 4
    write_candidates: bool = False

    def __post_init__(self):
        for field in dataclasses.fields(self):
            # Plain Python types, so numpy scalars from callers still serialise to JSON.
            value = _coerce(field.name, getattr(self, field.name), field.type)
            object.__setattr__(self, field.name, value)
        self._check_ranges()

    def _check_ranges(self):
        def require(ok, name, rule):
            if not ok:
                raise ValueError(f"SimulatorConfig.{name} {rule}, got {getattr(self, name)!r}")

        require(self.seed >= 0, "seed", "must be >= 0")
        require(self.catalogue in CATALOGUES, "catalogue", f"must be one of {CATALOGUES}")
        require(self.catalogue != "homedepot" or self.homedepot_dir, "homedepot_dir",
                "is required when catalogue='homedepot'")
        require(self.num_queries is not None or self.catalogue == "homedepot", "num_queries",
                "may be None only for the homedepot catalogue")
        for name in ("num_items", "num_users", "num_requests", "num_candidates", "page_size",
                     "interest_dim"):
            require(getattr(self, name) >= 1, name, "must be >= 1")
        require(self.num_queries is None or self.num_queries >= 1, "num_queries", "must be >= 1")
        require(self.page_size <= self.num_candidates, "page_size",
                f"must be <= num_candidates ({self.num_candidates})")
        require(self.catalogue != "synthetic" or self.num_candidates <= self.num_items,
                "num_candidates", f"must be <= num_items ({self.num_items})")
        for name in ("cold_start_share", "relevance_label_share"):
            require(0.0 <= getattr(self, name) <= 1.0, name, "must be in [0, 1]")
        require(0.0 < self.click_base_rate < 1.0, "click_base_rate", "must be in (0, 1)")
        for name in ("activity_zipf_exponent", "query_zipf_exponent", "candidate_sharpness",
                     "query_tolerance_std", "user_tolerance_std", "relevance_slope",
                     "user_sensitivity_std", "query_sensitivity_std", "interest_weight",
                     "policy_sharpness", "position_bias_exponent"):
            require(0.0 <= getattr(self, name) < math.inf, name, "must be finite and >= 0")
        require(math.isfinite(self.popularity_weight), "popularity_weight", "must be finite")
        require(self.num_relevance_levels >= 2, "num_relevance_levels", "must be >= 2")
        require(self.relevance_threshold is None
                or 0.0 <= self.relevance_threshold <= self.num_relevance_levels - 1,
                "relevance_threshold", f"must be in [0, {self.num_relevance_levels - 1}] or None")
        require(self.num_item_features >= 0, "num_item_features", "must be >= 0")
        require(self.time_span_seconds >= self.num_requests, "time_span_seconds",
                f"must be >= num_requests ({self.num_requests}): request times are distinct")
        cold = self.num_cold_users
        active = self.num_users - cold
        need = cold + 2 * active
        require(self.num_requests >= need and (active > 0 or self.num_requests == cold),
                "num_requests",
                f"must be >= {need} (each of the {cold} cold-start users makes one request, "
                f"each of the {active} others at least two)" if active else
                f"must equal num_users ({cold}) when cold_start_share is 1")

    @property
    def num_cold_users(self):
        return int(round(self.cold_start_share * self.num_users))

    @property
    def num_impressions(self):
        return self.num_requests * self.page_size

    @property
    def threshold(self):
        """The mean population threshold actually used."""
        if self.relevance_threshold is None:
            return (self.num_relevance_levels - 1) / 2
        return float(self.relevance_threshold)

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        """Build from a mapping (e.g. parsed YAML), rejecting unknown keys."""
        from prectr_tf.config import dataclass_from_dict  # noqa: PLC0415 (no cycle at import)
        return dataclass_from_dict(cls, values, "SimulatorConfig")


def _coerce(name, value, annotation):
    """`value` as the plain Python type of `annotation`, or a ValueError."""
    args = typing.get_args(annotation) or (annotation,)
    if value is None:
        if type(None) not in args:
            raise ValueError(f"SimulatorConfig.{name} must not be None")
        return None
    base = next(a for a in args if a is not type(None))
    kind = {int: numbers.Integral, float: numbers.Real, str: str, bool: bool}[base]
    # bool is an Integral: reject True/False where a number is meant.
    if not isinstance(value, kind) or (base is not bool and isinstance(value, bool)):
        expected = " or ".join("None" if a is type(None) else a.__name__ for a in args)
        raise ValueError(f"SimulatorConfig.{name} must be {expected}, got {value!r} "
                         f"({type(value).__name__})")
    return base(value)
