"""Staged training (DESIGN §4): the documented recipe behind `prectr train`.

    stage 0  the relevance encoder + head, by one of (`encoder_init`):
             `"sft"` — trained here on the labelled (query, title) pairs of
             the train split (`prectr_tf.distill.student`: early stopping
             on a held-out split by query, never a fixed epoch count);
             `"distilled"` — a student distilled from a teacher by
             `prectr distill` (`distilled_encoder`: its folder).
             The same student folder is shared: `prectr_v1`,
             `v2_frozen_encoder` and `prectr_v2` all start from it, so a
             frozen encoder is never a random one.
    stage 1  RSL pre-train: only the model's relevance head (initialised
             from the student's head) trains, on the relevance loss, over the
             frozen encoder; the same for every preset whose head reads r
             only, so presets can share it (`relevance_stage_from`,
             `prectr_tf.models.relevance_stage`).
    stage 2  joint: everything the preset leaves trainable, on the full
             objective; a fine-tuned encoder at its own, smaller rate.

Whenever a stage's encoder is frozen (stage 1 always, stage 2 for
`prectr_v1` and `v2_frozen_encoder`) it trains on a `RelevanceCache`: r is
computed once per distinct pair, not once per impression and epoch.

Each stage checkpoints with `keras.callbacks.BackupAndRestore` under
`<out>/backup/<stage>` (a killed run resumes mid-stage) and marks itself done
with its weights in `<out>/<stage>.weights.h5` (a rerun skips it);
`TerminateOnNaN` stops a diverging run. The final model is `<out>/model.keras`.

Under a `tf.distribute` strategy (`strategy=`, `prectr_tf.models.distribute`)
the same stages run with the model built in the strategy's scope. With several
worker processes (`TF_CONFIG`), worker 0 (or the chief) writes `<out>` and
trains stage 0; the other workers wait for its student, read their share of
the train files (`make_dataset(shard_by="file")`) and keep their own
backups and weights under `<out>/workers/<task>-<index>` (Keras' `BackupAndRestore`
and `save` write one file per process); a killed cluster, restarted, resumes
from them.
"""

import contextlib
import dataclasses
import json
import os
import time

import keras
import numpy as np
import pandas as pd

from prectr_tf.data.build import read_dataset_info
from prectr_tf.data.pipeline import make_dataset, read_split_columns
from prectr_tf.distill.student import (WEIGHTS_FILE, StudentConfig, load_student,
                                       train_student)
from prectr_tf.layers.text_preprocessing import (learn_wordpiece_vocabulary, load_vocabulary,
                                                 save_vocabulary)
from prectr_tf.models.distribute import is_chief, num_workers, task_from_tf_config
from prectr_tf.models.prectr_model import PRECTRModel
from prectr_tf.models.relevance_cache import RelevanceCache
from prectr_tf.models.relevance_stage import (load_relevance_stage, relevance_stage_key,
                                              save_relevance_stage)

ENCODER_INITS = ("sft", "distilled")
STAGES = ("stage0_encoder_sft", "stage1_rsl", "stage2_joint")
# How long a non-chief worker waits for the chief's stage-0 student.
WORKER_WAIT_SECONDS = 24 * 3600.0


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How `train_staged` trains.

    Args:
        batch_size: examples per step.
        learning_rate: Adam learning rate (the fine-tuned encoder gets
            `encoder_learning_rate_multiplier` times it).
        encoder_init: `"sft"` (stage 0 trained here on the labelled pairs)
            or `"distilled"` (the student folder `distilled_encoder`).
        distilled_encoder: folder written by `prectr distill`; required for
            `encoder_init="distilled"`.
        encoder_sft_epochs: the most stage-0 SFT epochs; early stopping on a
            held-out split by query usually ends it sooner.
        encoder_patience: stage-0 epochs without a better validation loss
            before it stops.
        encoder_min_delta: the least decrease of stage 0's validation loss
            that counts as better (`StudentConfig.min_delta`).
        encoder_validation_fraction: share of the queries held out for it.
        encoder_min_steps_per_epoch: the least steps between two stage-0
            validations (`StudentConfig.min_steps_per_epoch`).
        rsl_epochs: the most stage-1 epochs.
        joint_epochs: the most stage-2 epochs.
        stage_validation_fraction: share of the train split's requests held
            out (`make_dataset(holdout_fraction=...)`) to stop stages 1 and 2
            early, on their validation loss, restoring the best epoch's
            weights; 0 trains exactly `rsl_epochs` / `joint_epochs` on all of
            the split.
        stage_patience: epochs of stages 1 and 2 without a better
            validation loss before the stage stops.
        stage_min_delta: the least decrease of their validation loss that
            counts as better. Not 0: a head that separates its labels keeps
            lowering its cross-entropy by ever smaller amounts (at 200k
            impressions stage 1 ran 30 of 30 epochs, each one "better", and
            ended at a validation loss of 7e-9 with accuracy 1.0); 1e-4 nats
            changes no prediction that ranking would see.
        steps_per_epoch: cap on steps per epoch of stages 1 and 2 (None:
            the whole split).
        cache_frozen_encoder: train frozen-encoder stages on a
            `RelevanceCache` (same predictions, far less compute).
        wordpiece_vocabulary_size: target size of the learned WordPiece
            vocabulary.
        seed: seeds Keras, the shuffles and the noise.
    """

    batch_size: int = 512
    learning_rate: float = 1e-3
    encoder_init: str = "sft"
    distilled_encoder: str | None = None
    encoder_sft_epochs: int = 30
    encoder_patience: int = 3
    encoder_min_delta: float = 1e-4
    encoder_validation_fraction: float = 0.1
    encoder_min_steps_per_epoch: int = 100
    rsl_epochs: int = 1
    joint_epochs: int = 2
    stage_validation_fraction: float = 0.0
    stage_patience: int = 2
    stage_min_delta: float = 1e-4
    steps_per_epoch: int | None = None
    cache_frozen_encoder: bool = True
    wordpiece_vocabulary_size: int = 4000
    seed: int = 0

    def __post_init__(self):
        if self.encoder_init not in ENCODER_INITS:
            raise ValueError(f"encoder_init must be one of {ENCODER_INITS}, got "
                             f"{self.encoder_init!r}")
        if not 0.0 <= self.stage_validation_fraction < 1.0:
            raise ValueError("stage_validation_fraction must be in [0, 1), got "
                             f"{self.stage_validation_fraction}")
        if self.encoder_init == "distilled" and not self.distilled_encoder:
            raise ValueError("encoder_init='distilled' needs distilled_encoder (the folder "
                             "written by `prectr distill`)")


def text_corpus(data_dir):
    """The distinct queries and titles of a dataset's train split."""
    columns = read_split_columns(data_dir, "train", ("query", "item_title"))
    texts = set(columns["query"].tolist()) | set(columns["item_title"].tolist())
    return sorted(t for t in texts if t)


def wordpiece_vocabulary(data_dir, out_dir, size):
    """Learn (or reuse `<out>/wordpiece.txt`) the encoder's vocabulary."""
    path = os.path.join(out_dir, "wordpiece.txt")
    if not os.path.exists(path):
        os.makedirs(out_dir, exist_ok=True)
        save_vocabulary(learn_wordpiece_vocabulary(text_corpus(data_dir),
                                                   vocabulary_size=size), path)
    return load_vocabulary(path)


def _dataset(data_dir, split, train_config, holdout=False, shard_by="data"):
    # The held-out slice is read every epoch: in file order, parsed once.
    return make_dataset(data_dir, split, batch_size=train_config.batch_size,
                        seed=train_config.seed,
                        holdout_fraction=train_config.stage_validation_fraction,
                        holdout=holdout, shard_by=shard_by,
                        shuffle=False if holdout else None, cache=holdout)


def _own_dir(out_dir):
    """Where this process writes: `out_dir` for the chief (or a single
    process), `<out>/workers/<index>` for the other workers."""
    if is_chief():
        return out_dir
    task_type, task_index = task_from_tf_config()
    return os.path.join(out_dir, "workers", f"{task_type}-{task_index}")


def _wait_for_student(student_dir, timeout_s, poll_s=2.0):
    """A non-chief worker waits for the chief's stage-0 student."""
    path = os.path.join(student_dir, WEIGHTS_FILE)
    deadline = time.monotonic() + timeout_s
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path}: the chief's stage-0 student did not appear within "
                               f"{timeout_s:.0f} s")
        time.sleep(poll_s)
    return student_dir


def _callbacks(out_dir, stage, extra=()):
    # BackupAndRestore first, so a later callback that stops the run still
    # finds the epoch backed up.
    return [keras.callbacks.BackupAndRestore(os.path.join(out_dir, "backup", stage)),
            keras.callbacks.TerminateOnNaN(), *extra]


def labelled_pairs(data_dir, split="train"):
    """The distinct relevance-labelled (query, title) pairs of a split, with
    their label (the most frequent one, should a pair carry several)."""
    columns = read_split_columns(data_dir, split, ("query", "item_title", "relevance"))
    frame = pd.DataFrame({"query": columns["query"], "title": columns["item_title"],
                          "label": columns["relevance"].astype(np.int64)})
    frame = frame[frame["label"] >= 0]
    counts = frame.groupby(["query", "title", "label"], sort=False).size().reset_index(name="n")
    counts = counts.sort_values("n", ascending=False, kind="stable")
    return counts.drop_duplicates(["query", "title"])[["query", "title", "label"]].reset_index(
        drop=True)


def student_config(train_config):
    """The stage-0 SFT `StudentConfig` of a `TrainConfig`."""
    return StudentConfig(batch_size=train_config.batch_size,
                         learning_rate=train_config.learning_rate,
                         max_epochs=train_config.encoder_sft_epochs,
                         patience=train_config.encoder_patience,
                         min_delta=train_config.encoder_min_delta,
                         validation_fraction=train_config.encoder_validation_fraction,
                         min_steps_per_epoch=train_config.encoder_min_steps_per_epoch,
                         seed=train_config.seed)


def pretrain_encoder(data_dir, model_config, train_config, out_dir, vocabulary=None, verbose=1):
    """Stage 0 by SFT on the labelled pairs of the train split.

    Returns:
        the student folder, `<out>/stage0_encoder_sft` (reused when done).
    """
    student_dir = os.path.join(out_dir, STAGES[0])
    if vocabulary is None:
        vocabulary = wordpiece_vocabulary(data_dir, out_dir,
                                          train_config.wordpiece_vocabulary_size)
    train_student(labelled_pairs(data_dir), vocabulary, model_config.encoder,
                  model_config.num_relevance_levels, student_dir, student_config(train_config),
                  teacher=None, verbose=verbose)
    return student_dir


def set_stage(model, stage):
    """Stage 1 trains the relevance head alone on the relevance loss; stage 2
    restores the preset's trainability and the full objective. A model
    without text has stage 2 only and nothing to set."""
    if not model.config.uses_text:
        return
    rsl_only = stage == STAGES[1]
    for layer in model.layers:
        if layer is model.encoder:
            layer.mode = "frozen" if rsl_only else model.config.encoder_mode
        else:
            layer.trainable = (layer is model.relevance_head) or not rsl_only
    for task in model.tasks:
        task.weight = (1.0 if task.name == "relevance" else 0.0) if rsl_only else task.full_weight


def _student_dir(data_dir, model_config, train_config, out_dir, verbose):
    if train_config.encoder_init == "distilled":
        return train_config.distilled_encoder
    if not is_chief():
        return _wait_for_student(os.path.join(out_dir, STAGES[0]),
                                 WORKER_WAIT_SECONDS)
    return pretrain_encoder(data_dir, model_config, train_config, out_dir, verbose=verbose)


def _check_shardable(data_dir, workers):
    files = read_dataset_info(data_dir)["splits"]["train"]["files"]
    if len(files) < workers:
        raise ValueError(f"{data_dir}: the train split has {len(files)} file(s) for {workers} "
                         "workers; each worker reads whole files: rebuild with "
                         f"`prectr build --num-shards {workers}` or more")


def initial_model(data_dir, model_config, train_config, out_dir, student_dir=None, verbose=1,
                  scope=contextlib.nullcontext):
    """The preset's model built in `scope()`, its encoder and relevance head
    started from the stage-0 student (trained or waited for, as
    `train_staged` does), and the preset's stages: `(model, stages)`."""
    keras.utils.set_random_seed(train_config.seed)
    student, vocabulary = None, None
    if model_config.uses_text:
        student_dir = student_dir or _student_dir(data_dir, model_config, train_config, out_dir,
                                                  verbose)
        student, vocabulary, _ = load_student(student_dir, model_config.encoder)
    keras.utils.set_random_seed(train_config.seed)
    with scope():
        model = PRECTRModel.from_dataset(data_dir, model_config, wordpiece_vocabulary=vocabulary)
        model.build()
    if model_config.uses_text:
        model.encoder.set_weights(student.encoder.get_weights())
        model.relevance_head.load_head(student.head)
    return model, (STAGES[1:] if model_config.uses_text else STAGES[2:])


def _fit_stage(model, stage, data_dir, train_config, out_dir, workers, cache, callbacks,
               verbose):
    """`model.fit` for one stage, early-stopped on the held-out requests when
    `stage_validation_fraction` says; `(history, cache)`: the stage's
    history and the `RelevanceCache` built for a frozen encoder (or `cache`,
    reused)."""
    epochs = train_config.rsl_epochs if stage == STAGES[1] else train_config.joint_epochs
    data = _dataset(data_dir, "train", train_config, shard_by="file" if workers > 1 else "data")
    validation, stopping = None, []
    if train_config.stage_validation_fraction:
        validation = _dataset(data_dir, "train", train_config, holdout=True)
        stopping = [keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=train_config.stage_patience,
            min_delta=train_config.stage_min_delta, restore_best_weights=True)]
    if (model.config.uses_text and model.encoder.mode == "frozen"
            and train_config.cache_frozen_encoder):
        cache = cache or RelevanceCache.from_dataset(model, data_dir)
        data = cache.attach(data)
        if validation is not None:
            validation = cache.attach(validation)
    # shuffle=False: the tf.data pipeline shuffles; Keras would only warn.
    fit = model.fit(data, epochs=epochs, shuffle=False, validation_data=validation,
                    steps_per_epoch=train_config.steps_per_epoch, verbose=verbose,
                    callbacks=_callbacks(out_dir, stage, [*stopping, *callbacks]))
    history = {k: [float(v) for v in vals] for k, vals in fit.history.items()}
    if stopping and fit.history.get("val_loss"):
        # The epoch whose weights were kept: the last that beat the best by
        # min_delta, not the argmin. 1-based; a list like every other entry.
        history["best_epoch"] = [int(stopping[0].best_epoch) + 1]
    return history, cache


def train_staged(data_dir, model_config, train_config, out_dir, student_dir=None, verbose=1,
                 callbacks=(), strategy=None, relevance_stage_from=None):
    """Train a preset through the stages; returns `(model, history)`.

    Args:
        data_dir: a dataset built by `prectr build`.
        model_config: a `PRECTRConfig`.
        train_config: a `TrainConfig`.
        out_dir: where checkpoints, the history and `model.keras` go.
        student_dir: a finished stage-0 student folder to start from (shared
            between presets); `None`: as `train_config.encoder_init` says.
        verbose: Keras progress output (0, 1 or 2).
        callbacks: extra Keras callbacks for the stage-1 and stage-2 fits.
        strategy: a `tf.distribute.Strategy` (`distribute.make_strategy`) to
            build and train the model under; `None`: the default one.
            `train_config.batch_size` is the global batch.
        relevance_stage_from: the `out_dir` of another preset's finished run
            from the same data, student and stage-1 settings, whose stage-1
            head this run takes instead of training its own
            (`prectr_tf.models.relevance_stage`); `None`: train stage 1.
    """
    os.makedirs(out_dir, exist_ok=True)
    own_dir = _own_dir(out_dir)
    os.makedirs(own_dir, exist_ok=True)
    workers = num_workers(strategy)
    if workers > 1:
        _check_shardable(data_dir, workers)
    def scope():  # a strategy's scope cannot be entered twice
        return strategy.scope() if strategy is not None else contextlib.nullcontext()
    if model_config.uses_text and student_dir is None:
        student_dir = _student_dir(data_dir, model_config, train_config, out_dir, verbose)
    model, stages = initial_model(data_dir, model_config, train_config, out_dir, student_dir,
                                  verbose, scope)
    key = relevance_stage_key(model, data_dir, student_dir, train_config)
    history, cache = {}, None
    for stage in stages:
        # Set up and compile even a stage that is already done, so that a
        # rerun of a finished run returns a model ready to evaluate.
        set_stage(model, stage)
        with scope():
            model.compile(optimizer=keras.optimizers.Adam(train_config.learning_rate))
        path = os.path.join(own_dir, f"{stage}.weights.h5")
        if os.path.exists(path):
            model.load_weights(path)
            continue
        if stage == STAGES[1] and relevance_stage_from is not None:
            history[stage] = load_relevance_stage(model, relevance_stage_from, key)
        else:
            history[stage], cache = _fit_stage(model, stage, data_dir, train_config, own_dir,
                                               workers, cache, callbacks, verbose)
        if stage == STAGES[1] and key is not None and is_chief():
            save_relevance_stage(model, own_dir, key, history[stage])
        model.save_weights(path)
    model.save(os.path.join(own_dir, "model.keras"))
    with open(os.path.join(own_dir, "history.json"), "w") as fh:
        json.dump(history, fh, indent=2)
    return model, history


def evaluate(model, data_dir, split="eval", batch_size=1024):
    """`model.evaluate` over a split, every metric (grouped ones included)
    as plain floats."""
    results = model.evaluate(make_dataset(data_dir, split, batch_size=batch_size),
                             return_dict=True, verbose=0)
    return {k: float(np.asarray(v)) for k, v in results.items()}

