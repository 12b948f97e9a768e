"""Staged training (DESIGN §4): the documented recipe behind `prectr train`.

    stage 0  encoder SFT: the text encoder + a relevance head learn the K
             relevance levels from the labelled (query, title) pairs. Its
             weights are saved once and shared: `prectr_v1`,
             `v2_frozen_encoder` and `prectr_v2` all start from them, so a
             frozen encoder is never a random one.
    stage 1  RSL pre-train: only the model's relevance head trains, on the
             relevance loss, over the (frozen) stage-0 encoder.
    stage 2  joint: everything the preset leaves trainable, on the full
             objective.

Each stage checkpoints with `keras.callbacks.BackupAndRestore` under
`<out>/backup/<stage>` (a killed run resumes mid-stage) and marks itself done
with its weights in `<out>/<stage>.weights.h5` (a rerun skips it);
`TerminateOnNaN` stops a diverging run. The final model is `<out>/model.keras`.
"""

import dataclasses
import json
import os

import keras
import numpy as np

from prectr_tf.data.pipeline import make_dataset
from prectr_tf.layers.relevance_head import RelevanceHead
from prectr_tf.layers.text_encoder import RelevanceTextEncoder
from prectr_tf.layers.text_preprocessing import (PairTokenizer, learn_wordpiece_vocabulary,
                                                 load_vocabulary, save_vocabulary)
from prectr_tf.losses import MaskedRelevanceLoss
from prectr_tf.models.prectr_model import PRECTRModel

STAGES = ("stage0_encoder_sft", "stage1_rsl", "stage2_joint")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How `train_staged` trains.

    Args:
        batch_size: examples per step.
        learning_rate: Adam learning rate (the fine-tuned encoder gets
            `encoder_learning_rate_multiplier` times it).
        encoder_sft_epochs: stage 0 epochs over the relevance-labelled rows.
        rsl_epochs: stage 1 epochs.
        joint_epochs: stage 2 epochs.
        steps_per_epoch: cap on steps per epoch (None: the whole split).
        wordpiece_vocabulary_size: target size of the learned WordPiece
            vocabulary.
        seed: seeds Keras, the shuffles and the noise.
    """

    batch_size: int = 512
    learning_rate: float = 1e-3
    encoder_sft_epochs: int = 2
    rsl_epochs: int = 1
    joint_epochs: int = 2
    steps_per_epoch: int | None = None
    wordpiece_vocabulary_size: int = 4000
    seed: int = 0


def text_corpus(data_dir, batch_size=4096):
    """The distinct queries and titles of a dataset's train split."""
    texts = set()
    for features, _ in make_dataset(data_dir, "train", batch_size=batch_size, shuffle=False):
        texts.update(features["query"].numpy().tolist())
        texts.update(features["item_title"].numpy().tolist())
    return sorted(t.decode("utf-8") for t in texts if t)


def wordpiece_vocabulary(data_dir, out_dir, size):
    """Learn (or reuse `<out>/wordpiece.txt`) the encoder's vocabulary."""
    path = os.path.join(out_dir, "wordpiece.txt")
    if not os.path.exists(path):
        save_vocabulary(learn_wordpiece_vocabulary(text_corpus(data_dir),
                                                   vocabulary_size=size), path)
    return load_vocabulary(path)


def _dataset(data_dir, split, train_config, labelled_relevance_only=False, repeat=False):
    ds = make_dataset(data_dir, split, batch_size=train_config.batch_size,
                      seed=train_config.seed, repeat=repeat)
    if labelled_relevance_only:
        ds = ds.unbatch().filter(lambda f, y: y["relevance"] >= 0).batch(train_config.batch_size)
    return ds


def _callbacks(out_dir, stage, extra=()):
    # BackupAndRestore first, so a later callback that stops the run still
    # finds the epoch backed up.
    return [keras.callbacks.BackupAndRestore(os.path.join(out_dir, "backup", stage)),
            keras.callbacks.TerminateOnNaN(), *extra]


def pretrain_encoder(data_dir, model_config, vocabulary, train_config, out_dir, verbose=1):
    """Stage 0: SFT of the encoder on relevance labels; returns its weights
    (saved to `<out>/stage0_encoder_sft.weights.h5`)."""
    path = os.path.join(out_dir, f"{STAGES[0]}.weights.h5")
    # Seeded here, not only in train_staged: the demo and the quality
    # benchmark call this directly and share its encoder between presets.
    keras.utils.set_random_seed(train_config.seed)
    e, k = model_config.encoder, model_config.num_relevance_levels
    tokenizer = PairTokenizer(vocabulary, max_length=e.max_length)
    encoder = RelevanceTextEncoder(
        vocabulary_size=tokenizer.vocabulary_size, sequence_length=e.max_length,
        num_layers=e.num_layers, hidden_dim=e.hidden_dim, num_heads=e.num_heads,
        intermediate_dim=e.intermediate_dim, dropout=e.dropout,
        num_split_layers=e.num_split_layers, mode="finetune")
    head = RelevanceHead(num_levels=k)
    query = keras.Input((), dtype="string", name="query")
    title = keras.Input((), dtype="string", name="item_title")
    sft = keras.Model({"query": query, "item_title": title},
                      head(encoder(tokenizer(query, title))), name="encoder_sft")
    if os.path.exists(path):
        sft.load_weights(path)
        return encoder.get_weights()
    sft.compile(optimizer=keras.optimizers.Adam(train_config.learning_rate),
                loss=MaskedRelevanceLoss(), jit_compile=False)
    data = _dataset(data_dir, "train", train_config, labelled_relevance_only=True).map(
        lambda f, y: ({"query": f["query"], "item_title": f["item_title"]}, y["relevance"]))
    sft.fit(data, epochs=train_config.encoder_sft_epochs, verbose=verbose, shuffle=False,
            steps_per_epoch=train_config.steps_per_epoch, callbacks=_callbacks(out_dir, STAGES[0]))
    sft.save_weights(path)
    return encoder.get_weights()


def _set_stage(model, stage):
    """Stage 1 trains the relevance head alone on the relevance loss; stage 2
    restores the preset's trainability and the full objective."""
    rsl_only = stage == STAGES[1]
    for layer in model.layers:
        if layer is model.encoder:
            layer.mode = "frozen" if rsl_only else model.config.encoder_mode
        else:
            layer.trainable = (layer is model.relevance_head) or not rsl_only
    for task in model.tasks:
        task.weight = (1.0 if task.name == "relevance" else 0.0) if rsl_only else task.full_weight


def train_staged(data_dir, model_config, train_config, out_dir, encoder_weights=None,
                 vocabulary=None, verbose=1, callbacks=()):
    """Train a preset through the stages; returns `(model, history)`.

    Args:
        data_dir: a dataset built by `prectr build`.
        model_config: a `PRECTRConfig`.
        train_config: a `TrainConfig`.
        out_dir: where checkpoints, the vocabulary, the history and
            `model.keras` go.
        encoder_weights: stage-0 weights to start from (shared between
            presets); trained here when None and the preset has text.
        vocabulary: the WordPiece vocabulary (learned when None).
        verbose: Keras progress output (0, 1 or 2).
        callbacks: extra Keras callbacks for the stage-1 and stage-2 fits.
    """
    os.makedirs(out_dir, exist_ok=True)
    keras.utils.set_random_seed(train_config.seed)
    history = {}
    if model_config.uses_text:
        vocabulary = vocabulary or wordpiece_vocabulary(
            data_dir, out_dir, train_config.wordpiece_vocabulary_size)
        if encoder_weights is None:
            encoder_weights = pretrain_encoder(data_dir, model_config, vocabulary,
                                               train_config, out_dir, verbose)
    model = PRECTRModel.from_dataset(data_dir, model_config, wordpiece_vocabulary=vocabulary)
    model.build()
    stages = STAGES[1:] if model_config.uses_text else STAGES[2:]
    if model_config.uses_text:
        model.encoder.set_weights(encoder_weights)
    for stage in stages:
        # Set up and compile even a stage that is already done, so that a
        # rerun of a finished run returns a model ready to evaluate.
        if model_config.uses_text:
            _set_stage(model, stage)
        model.compile(optimizer=keras.optimizers.Adam(train_config.learning_rate))
        path = os.path.join(out_dir, f"{stage}.weights.h5")
        if os.path.exists(path):
            model.load_weights(path)
            continue
        epochs = train_config.rsl_epochs if stage == STAGES[1] else train_config.joint_epochs
        # shuffle=False: the tf.data pipeline shuffles; Keras would only warn.
        fit = model.fit(_dataset(data_dir, "train", train_config), epochs=epochs, shuffle=False,
                        steps_per_epoch=train_config.steps_per_epoch, verbose=verbose,
                        callbacks=_callbacks(out_dir, stage, callbacks))
        history[stage] = {k: [float(v) for v in vals] for k, vals in fit.history.items()}
        model.save_weights(path)
    model.save(os.path.join(out_dir, "model.keras"))
    with open(os.path.join(out_dir, "history.json"), "w") as fh:
        json.dump(history, fh, indent=2)
    return model, history


def evaluate(model, data_dir, split="eval", batch_size=1024):
    """`model.evaluate` over a split, every metric (grouped ones included)
    as plain floats."""
    results = model.evaluate(make_dataset(data_dir, split, batch_size=batch_size),
                             return_dict=True, verbose=0)
    return {k: float(np.asarray(v)) for k, v in results.items()}

