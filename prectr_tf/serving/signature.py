"""The `rank` signature (DESIGN §6), derived from `DataSchema`.

One request = one user, one query, N candidates. A batch of R requests
(TF Serving's batching stacks requests on axis 0) sends:

| input | dtype | shape | meaning |
|---|---|---|---|
| every `DataSchema.request_features()` field | as the schema | `[R]` or `[R, L_u]` | user id, query text, activity, user history |
| every `DataSchema.candidate_features()` field | as the schema | `[R, N]` (`item_features` `[R, N, F]`) | candidates, padded to N |
| `num_candidates` | int64 | `[R]` | how many of the N are real |

Candidates the export knows may leave `item_title` and `item_category`
empty and `item_features` NaN: the export's catalogue fills them in.

| output | dtype | shape | meaning |
|---|---|---|---|
| `score` | float32 | `[R, N]` | fused P(click); 0 on padding |
| `relevance_probs` | float32 | `[R, N, K]` | the relevance head's distribution |
| `click_given_relevance` | float32 | `[R, N, K]` | σ(b_k + τ), P(click | level k) |
"""

import tensorflow as tf

NUM_CANDIDATES = "num_candidates"
OUTPUTS = ("score", "relevance_probs", "click_given_relevance")
_DTYPES = {"string": tf.string, "int64": tf.int64, "float32": tf.float32}


def request_signature(schema):
    """`{input name: tf.TensorSpec}` of the `rank` signature."""
    spec = {name: tf.TensorSpec([None, *shape], _DTYPES[dtype], name=name)
            for name, dtype, shape in schema.request_features()}
    spec.update({name: tf.TensorSpec([None, None, *shape], _DTYPES[dtype], name=name)
                 for name, dtype, shape in schema.candidate_features()})
    spec[NUM_CANDIDATES] = tf.TensorSpec([None], tf.int64, name=NUM_CANDIDATES)
    return spec
