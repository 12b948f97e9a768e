"""`RelevanceIncentive`: the three-expert relevance incentive τ(x) (DESIGN §4.7).

τ shifts every click logit b_k: positive where the pair's relevance r agrees
with what this user / this query's population prefers (r_pref), negative where
it clashes, zero where preference says nothing. A mixture of three experts —
{+softplus(MLP(u)), −softplus(MLP(u)), 0} — keeps the sign explicit; the gate
picks one per example. Gumbel-softmax while training explores the experts; a
plain softmax at inference keeps serving deterministic.
"""

import keras
from keras import ops

NUM_EXPERTS = 3  # order: positive, negative, zero


def _mlp(hidden_units, activation, out_units, name):
    layers = [keras.layers.Dense(u, activation=activation, name=f"{name}_hidden_{i}")
              for i, u in enumerate(hidden_units)]
    layers.append(keras.layers.Dense(out_units, name=f"{name}_out"))
    return layers


def _build_mlp(layers, width):
    for layer in layers:
        layer.build((None, width))
        width = layer.units


def _run_mlp(layers, x):
    for layer in layers:
        x = layer(x)
    return x


@keras.saving.register_keras_serializable(package="prectr_tf")
class RelevanceIncentive(keras.layers.Layer):
    """Mixture of {+, −, 0} experts over u = [r, r_pref, r − r_pref, r ⊙ r_pref].

    Args:
        hidden_units: hidden widths of the gate MLP and of each expert MLP.
        activation: activation of the hidden layers.
        temperature: Gumbel-softmax temperature while training (lower: closer
            to a hard one-expert choice). Inference uses softmax(logits) at
            temperature 1, the distribution the Gumbel samples come from.
        seed: seed of the Gumbel noise (`None`: unseeded).

    Call arguments:
        r: float `[B, d]`, the pair's relevance representation.
        r_pref: float `[B, d]`, the preferred relevance (same width as r);
            zeros when no preference is known.
        training: Python bool; True samples Gumbel noise.

    Returns:
        `(tau, gate)`: tau float `[B, 1]`, added to every click logit; gate
        float `[B, 3]`, the mixing weights over (positive, negative, zero)
        experts, each row summing to 1 (the Gumbel-softmax sample while
        training). The load-balance loss reads `gate`.

    Example:
    >>> incentive = RelevanceIncentive(seed=0)
    >>> tau, gate = incentive(ops.ones((2, 8)), ops.zeros((2, 8)))
    >>> tuple(tau.shape), tuple(gate.shape)
    ((2, 1), (2, 3))
    """

    def __init__(self, hidden_units=(32,), activation="relu", temperature=1.0, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.activation = keras.activations.get(activation)
        self.temperature = float(temperature)
        self.seed = seed
        self.gate_layers = _mlp(self.hidden_units, self.activation, NUM_EXPERTS, "gate")
        self.positive_layers = _mlp(self.hidden_units, self.activation, 1, "positive")
        self.negative_layers = _mlp(self.hidden_units, self.activation, 1, "negative")
        self.seed_generator = keras.random.SeedGenerator(seed, name="gumbel_seed")

    def build(self, r_shape, r_pref_shape=None):
        width = 4 * r_shape[-1]
        for layers in (self.gate_layers, self.positive_layers, self.negative_layers):
            _build_mlp(layers, width)
        self.built = True

    def gate_logits(self, r, r_pref):
        """Gate logits `[B, 3]` and the features u `[B, 4d]`."""
        r_pref = ops.cast(r_pref, r.dtype)
        u = ops.concatenate([r, r_pref, r - r_pref, r * r_pref], axis=-1)
        return _run_mlp(self.gate_layers, u), u

    def call(self, r, r_pref, training=None):
        logits, u = self.gate_logits(r, r_pref)
        if training:
            # Gumbel(0, 1) noise from U(0, 1); the lower bound keeps log finite.
            uniform = keras.random.uniform(ops.shape(logits), minval=1e-10, maxval=1.0,
                                           dtype=logits.dtype, seed=self.seed_generator)
            gumbel = -ops.log(-ops.log(uniform))
            gate = ops.softmax((logits + gumbel) / self.temperature, axis=-1)
        else:
            gate = ops.softmax(logits, axis=-1)
        positive = ops.softplus(_run_mlp(self.positive_layers, u))
        negative = -ops.softplus(_run_mlp(self.negative_layers, u))
        # The zero expert adds gate[:, 2] * 0: it only takes weight away.
        tau = gate[:, 0:1] * positive + gate[:, 1:2] * negative
        return tau, gate

    def compute_output_shape(self, r_shape, r_pref_shape=None):
        return (r_shape[0], 1), (r_shape[0], NUM_EXPERTS)

    def get_config(self):
        config = super().get_config()
        config.update({
            "hidden_units": list(self.hidden_units),
            "activation": keras.activations.serialize(self.activation),
            "temperature": self.temperature,
            "seed": self.seed,
        })
        return config
