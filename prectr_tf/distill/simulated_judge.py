"""`SimulatedJudge`: a stand-in for an LLM relevance teacher on the simulator (DESIGN §5).

**Simulated, not an LLM.** The simulator knows every candidate's true level
y. The judge turns it into teacher logits with a documented error model:

1. a judged level ĵ is drawn from row y of `confusion` (P(ĵ | y)); the draw
   is a function of the (query, title) text and `seed` alone (a hash), so the
   same pair always gets the same judgement, in any order or batch;
2. the logits are z_k = −|k − ĵ| / `temperature`: the judge is sure of ĵ
   and spreads the rest over the neighbouring levels; a higher temperature
   gives softer targets.

So the judge's argmax accuracy on level y is `confusion[y][y]`, and its
mistakes are the confusions of a real teacher, not random noise.

The default confusion (`HOMEDEPOT_MINILM_CONFUSION`) is the one the local
MiniLM teacher (`prectr_tf.distill.teachers.minilm`, SFT on Home Depot's
training queries) measured on Home Depot's held-out queries —
`benchmarks/distill_homedepot.py`, seed 1 (14,646 test pairs; the teacher was
fine-tuned for 1 epoch on 20,000 training pairs) — with its training prior
divided out: judged = argmax_k p_k / π_k, π the training split's level shares
(0.070, 0.093, 0.375, 0.462). The plain argmax of that teacher never says
level 0 or 1 (it carries Home Depot's 46 % of level 3), which says more about
Home Depot's label prior than about judging; a simulator whose candidate space
is 43 % level 0 must not inherit it. The plain-argmax matrix is
`HOMEDEPOT_MINILM_CONFUSION_ARGMAX`; BENCHMARKS.md has both. It is never the
identity: the default judge is exactly as wrong as that teacher (accuracy
0.48 on Home Depot; level 1 is never its answer).

Example:
>>> judge = SimulatedJudge()
>>> judge.logits(["drill"], ["acme drill"], [3]).shape
(1, 4)
"""

import dataclasses
import hashlib

import numpy as np

# Rows: true level 0..3; columns: the judged level. Measured by
# benchmarks/distill_homedepot.py (MiniLM teacher, held-out queries, seed 1,
# 14,646 pairs); rows sum to 1 (rounded to 3 decimals, the last column takes
# the rounding).
HOMEDEPOT_MINILM_CONFUSION = (
    (0.560, 0.000, 0.209, 0.231),
    (0.396, 0.000, 0.246, 0.358),
    (0.219, 0.000, 0.218, 0.563),
    (0.091, 0.000, 0.131, 0.778),
)
HOMEDEPOT_MINILM_CONFUSION_ARGMAX = (
    (0.000, 0.000, 0.710, 0.290),
    (0.000, 0.000, 0.552, 0.448),
    (0.000, 0.000, 0.348, 0.652),
    (0.000, 0.000, 0.164, 0.836),
)


@dataclasses.dataclass(frozen=True)
class SimulatedJudge:
    """A teacher that knows the true level and errs as `confusion` says.

    Args:
        confusion: K×K row-stochastic matrix, rows the true level, columns
            the judged level (default: the MiniLM teacher's on Home Depot).
        temperature: softness of the emitted logits (default 0.5: the judged
            level gets e² ≈ 7.4 times a neighbour's probability).
        seed: changes every pair's draw.
    """

    confusion: tuple = HOMEDEPOT_MINILM_CONFUSION
    temperature: float = 0.5
    seed: int = 0

    def __post_init__(self):
        matrix = np.asarray(self.confusion, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 2:
            raise ValueError(f"confusion must be a K×K matrix with K >= 2, got shape "
                             f"{matrix.shape}")
        if np.any(matrix < 0) or np.any(np.abs(matrix.sum(axis=1) - 1) > 1e-6):
            raise ValueError("every row of confusion must be a probability distribution; "
                             f"row sums {matrix.sum(axis=1).round(6).tolist()}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        object.__setattr__(self, "confusion", tuple(map(tuple, matrix.tolist())))

    @classmethod
    def with_accuracy(cls, accuracy, num_levels=4, **kwargs):
        """A judge right with probability `accuracy` on every level, its
        mistakes split evenly between the neighbouring levels (k ± 1).

        Example:
        >>> SimulatedJudge.with_accuracy(0.8, num_levels=3).confusion[0]
        (0.8, 0.2, 0.0)
        """
        if not 0.0 <= accuracy <= 1.0:
            raise ValueError(f"accuracy must be in [0, 1], got {accuracy}")
        matrix = np.zeros((num_levels, num_levels))
        for k in range(num_levels):
            neighbours = [j for j in (k - 1, k + 1) if 0 <= j < num_levels]
            matrix[k, k] = accuracy
            matrix[k, neighbours] = (1.0 - accuracy) / len(neighbours)
        return cls(confusion=tuple(map(tuple, matrix.round(12).tolist())), **kwargs)

    @property
    def num_levels(self):
        return len(self.confusion)

    def _uniforms(self, queries, titles):
        out = np.empty(len(queries), np.float64)
        salt = str(self.seed).encode()
        for i, (q, t) in enumerate(zip(queries, titles)):
            digest = hashlib.blake2b(f"{q}\x1f{t}".encode("utf-8"), digest_size=8,
                                     key=salt).digest()
            out[i] = int.from_bytes(digest, "little") / 2.0 ** 64
        return out

    def judged_levels(self, queries, titles, levels):
        """ĵ per pair (step 1 of the module doc), int64 [N]."""
        levels = np.asarray(levels, dtype=np.int64)
        k = self.num_levels
        bad = (levels < 0) | (levels >= k)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"true level {levels[i]} at index {i} is outside [0, {k})")
        cdf = np.cumsum(np.asarray(self.confusion), axis=1)[levels]
        u = self._uniforms(queries, titles)[:, None]
        return np.minimum((u >= cdf).sum(axis=1), k - 1).astype(np.int64)

    def logits(self, queries, titles, levels):
        """Teacher logits float32 [N, K] of pairs with true `levels`."""
        judged = self.judged_levels(queries, titles, levels)
        distance = np.abs(np.arange(self.num_levels)[None, :] - judged[:, None])
        return (-distance / self.temperature).astype(np.float32)
