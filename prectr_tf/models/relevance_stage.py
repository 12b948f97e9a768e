"""Stage 1 shared between presets, as stage 0 is.

Stage 1 (RSL) trains the relevance head alone, on the relevance loss, over
the frozen stage-0 encoder. When the head reads r only (not
`relevance_id_features`, whose id embeddings are the preset's own), nothing
else of the preset reaches it: every preset trained from the same student,
data and `TrainConfig` ends stage 1 with the same head. A run that compares
presets (`benchmarks/quality.py`: eight text presets per seed, stage 1 up
to 30 epochs each) can train it once and hand it on.

A finished stage 1 leaves `<out>/stage1_rsl.head.npz` (the head's weights)
and `<out>/stage1_rsl.head.json` (what it was trained from, and its
history). `train_staged(..., relevance_stage_from=<that out>)` loads the
head instead of training it, after checking that it was trained from the
same data, student, head and stage-1 settings.

What sharing does not reproduce: the random-number state that stage 1 would
have advanced in the preset's other layers (dropout, Gumbel noise) although
they do not train, so stage 2 draws other masks than after a stage 1 of its
own.

Example:
>>> train_staged(data_dir, preset("prectr_v1"), train_config, "runs/v1",  # doctest: +SKIP
...              student_dir=s)
>>> train_staged(data_dir, preset("prectr_v2"), train_config, "runs/v2",  # doctest: +SKIP
...              student_dir=s,
...              relevance_stage_from="runs/v1")
"""

import json
import os

import numpy as np

FILE = "stage1_rsl.head"
# The TrainConfig fields that stage 1's result depends on.
_STAGE1_FIELDS = ("batch_size", "learning_rate", "rsl_epochs", "stage_validation_fraction",
                  "stage_patience", "stage_min_delta", "steps_per_epoch",
                  "cache_frozen_encoder", "seed")


def relevance_stage_key(model, data_dir, student_dir, train_config):
    """What a stage-1 head is determined by, as a JSON-able dict; `None`
    when the model's head is not shareable (no text, or id features)."""
    if not model.config.uses_text or model.config.relevance_id_features:
        return None
    return {"data_dir": os.path.abspath(data_dir),
            "student_dir": os.path.abspath(student_dir),
            "relevance_head": model.relevance_head.get_config(),
            **{name: getattr(train_config, name) for name in _STAGE1_FIELDS}}


def save_relevance_stage(model, out_dir, key, history):
    """Write the head after stage 1 with its key and stage-1 history;
    atomic (a reader never sees half a file)."""
    weights = model.relevance_head.get_weights()
    path = os.path.join(out_dir, FILE)
    with open(path + ".tmp.npz", "wb") as fh:
        np.savez(fh, *weights)
    os.replace(path + ".tmp.npz", path + ".npz")
    with open(path + ".json.tmp", "w") as fh:
        json.dump({"key": key, "history": history}, fh, indent=2)
    os.replace(path + ".json.tmp", path + ".json")


def load_relevance_stage(model, source_dir, key):
    """Set `model`'s head from the stage 1 finished in `source_dir`; returns
    that stage's history. Raises when `source_dir` has none or it was
    trained from something else than `key` says."""
    if key is None:
        raise ValueError(
            "relevance_stage_from: this preset's stage 1 is its own (no text, or "
            "relevance_id_features: the head reads the preset's id embeddings); train it")
    path = os.path.join(source_dir, FILE)
    if not (os.path.exists(path + ".json") and os.path.exists(path + ".npz")):
        raise FileNotFoundError(f"{path}.json: no finished stage 1 in {source_dir} to share; "
                                "train the source preset's stage 1 first")
    with open(path + ".json") as fh:
        saved = json.load(fh)
    # Through JSON both ways, so that tuples and lists compare alike.
    key = json.loads(json.dumps(key))
    differing = sorted(name for name in key if saved["key"].get(name) != key[name])
    if differing:
        raise ValueError(f"{path}.json: its stage 1 was trained with other "
                         f"{', '.join(differing)} than this run's "
                         f"({', '.join(f'{n}={key[n]!r}' for n in differing)}); "
                         "it cannot be shared")
    with np.load(path + ".npz") as weights:
        model.relevance_head.set_weights([weights[f"arr_{i}"] for i in range(len(weights.files))])
    return saved["history"]
