"""`NoiseHardNegative`: noise-injected hard negatives for exposure-bias correction (DESIGN §4.8).

The log mostly shows highly relevant items (exposure bias), so the model rarely
sees a plausible-looking but irrelevant candidate. For each anchor impression
(clicked and relevance ≥ K − 2) we build x̃ by perturbing its relevance
representation, r̃ = r + ε with ε ~ N(0, (σ_rel · RMS(r))²) per row, and
reconstruct its relevance label to the lowest level (fake_rsl = 0). x̃ is scored
through the same heads; the pairwise debias loss then asks s(x) − s(x̃) ≥ m.
Training only: with `training=False` no random op is built, so the serving
graph holds none.
"""

import keras
from keras import ops

from prectr_tf.data.schema import MISSING_LABEL


def hard_negative_anchor_mask(click, relevance, num_levels=4, min_level=None):
    """Anchors for hard negatives: clicked and relevance ≥ `min_level`.

    Args:
        click: int `[B]` (or `[B, 1]`), 1 clicked, 0 not, -1 unknown.
        relevance: int `[B]` (or `[B, 1]`), level in [0, K), -1 unlabelled.
        num_levels: K.
        min_level: lowest anchor level; default K − 2 (the top two levels).

    Returns:
        bool `[B]`; unknown clicks and unlabelled relevance are never anchors.

    Example:
    >>> hard_negative_anchor_mask([1, 1, 0, 1], [3, 1, 3, -1]).numpy().tolist()
    [True, False, False, False]
    """
    min_level = num_levels - 2 if min_level is None else min_level
    click = ops.reshape(ops.convert_to_tensor(click), (-1,))
    relevance = ops.reshape(ops.convert_to_tensor(relevance), (-1,))
    return ops.logical_and(
        ops.equal(click, 1),
        ops.logical_and(ops.not_equal(relevance, MISSING_LABEL),
                        ops.greater_equal(relevance, max(min_level, 0))))


@keras.saving.register_keras_serializable(package="prectr_tf")
class NoiseHardNegative(keras.layers.Layer):
    """Gaussian-noise hard negative r̃ = r + ε of each anchor's representation.

    Args:
        relative_noise_std: σ_rel; the noise std of a row is σ_rel · RMS(r)
            of that row, so the perturbation is scale-free (r's scale drifts
            while the encoder is fine-tuned).
        fake_relevance: the reconstructed relevance label of x̃ (the lowest
            level, 0).
        seed: noise seed (`None`: unseeded).

    Call arguments:
        r: float `[B, d]`, the anchors' relevance representations.
        anchor_mask: bool `[B]` from `hard_negative_anchor_mask`, or `None`
            (every row is an anchor).
        training: Python bool. False builds no random op: r̃ = r and the
            mask is all zero, so a pairwise loss over it is 0.

    Returns:
        a dict: `"representation"` float `[B, d]` = r̃; `"relevance"` int32
        `[B]` = `fake_relevance`; `"mask"` float `[B]`, 1 for anchors whose
        x̃ enters the pairwise loss (0 everywhere when not training).

    Example:
    >>> layer = NoiseHardNegative(seed=0)
    >>> out = layer(ops.ones((3, 8)), ops.array([True, False, True]), training=True)
    >>> tuple(out["representation"].shape), out["mask"].numpy().tolist()
    ((3, 8), [1.0, 0.0, 1.0])
    """

    def __init__(self, relative_noise_std=0.5, fake_relevance=0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if relative_noise_std < 0:
            raise ValueError(f"relative_noise_std must be >= 0, got {relative_noise_std}")
        self.relative_noise_std = float(relative_noise_std)
        self.fake_relevance = int(fake_relevance)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="noise_seed")

    def call(self, r, anchor_mask=None, training=None):
        batch = ops.shape(r)[0]
        relevance = ops.full((batch,), self.fake_relevance, dtype="int32")
        if not training:
            # Inference: no noise, no pairs, and no random op in the graph.
            return {"representation": r, "relevance": relevance,
                    "mask": ops.zeros((batch,), dtype=r.dtype)}
        # The scale is a constant to the model: otherwise shrinking r would be
        # a way to shrink the noise and make the negatives easy.
        rms = ops.stop_gradient(ops.sqrt(ops.mean(ops.square(r), axis=-1, keepdims=True) + 1e-12))
        noise = keras.random.normal(ops.shape(r), dtype=r.dtype, seed=self.seed_generator)
        mask = (ops.ones((batch,), dtype=r.dtype) if anchor_mask is None
                else ops.cast(ops.reshape(anchor_mask, (-1,)), r.dtype))
        return {"representation": r + self.relative_noise_std * rms * noise,
                "relevance": relevance, "mask": mask}

    def compute_output_spec(self, r, anchor_mask=None, training=None):
        return {"representation": keras.KerasTensor(r.shape, dtype=r.dtype),
                "relevance": keras.KerasTensor((r.shape[0],), dtype="int32"),
                "mask": keras.KerasTensor((r.shape[0],), dtype=r.dtype)}

    def get_config(self):
        config = super().get_config()
        config.update({
            "relative_noise_std": self.relative_noise_std,
            "fake_relevance": self.fake_relevance,
            "seed": self.seed,
        })
        return config
