"""The relevance student: stage 0 of training, by SFT or by distillation (DESIGN §4, §5).

One code path trains the compact encoder (`RelevanceTextEncoder` + a
`RelevanceHead`) on (query, title) pairs:

- **SFT**: no teacher; softmax CE on the labelled pairs;
- **distillation**: every pair has teacher logits; T²·KL on every pair plus
  α·CE on the labelled ones (`prectr_tf.losses.DistillationLoss`).

Either way it trains to convergence: up to `max_epochs`, early stopping on
the loss of a held-out split **by query** (no query on both sides), ending on
the best epoch (`ResumableEarlyStopping`). `BackupAndRestore` makes a killed
run resume at its last finished epoch. The result is a folder:

    wordpiece.txt          the vocabulary the encoder reads
    student.weights.h5     encoder + head (written last: its presence means done)
    student.json           encoder config, K, how it was trained, its history

`load_student(folder)` reads it back; `train_staged(..., encoder_init=
"distilled", distilled_encoder=folder)` starts a PRECTR model from it.
"""

import dataclasses
import json
import math
import os
import weakref

import keras
import numpy as np
import tensorflow as tf

from prectr_tf.distill.early_stopping import ResumableEarlyStopping
from prectr_tf.distill.pairs import split_by_query
from prectr_tf.layers.relevance_head import RelevanceHead
from prectr_tf.layers.text_preprocessing import load_vocabulary, save_vocabulary
from prectr_tf.losses.distillation_loss import DistillationLoss, pack_distillation_targets

WEIGHTS_FILE, META_FILE, VOCABULARY_FILE = "student.weights.h5", "student.json", "wordpiece.txt"


@dataclasses.dataclass(frozen=True)
class StudentConfig:
    """How the relevance student trains.

    Args:
        temperature: T of the distillation softmaxes (default 2.0).
        alpha: weight of the CE on labelled pairs (default 1.0).
        batch_size: pairs per step (default 256).
        learning_rate: Adam learning rate (default 1e-3).
        max_epochs: the cap; early stopping usually ends sooner (default 30).
        patience: epochs without a better validation loss before stopping
            (default 3).
        min_delta: the least decrease of the validation loss that counts as
            better (default 1e-4): a student that already gets every pair
            right keeps lowering its loss by ever smaller amounts.
        validation_fraction: share of the distinct queries held out for
            early stopping (default 0.1).
        min_steps_per_epoch: an epoch — the interval between validations,
            which `patience` counts — is at least this many steps (the
            training pairs repeat); without it a few thousand labelled pairs
            make epochs of a handful of steps, and patience runs out in the
            plateau before the encoder starts to learn (default 100).
        seed: seeds the split, the shuffles and the initial weights.
    """

    temperature: float = 2.0
    alpha: float = 1.0
    batch_size: int = 256
    learning_rate: float = 1e-3
    max_epochs: int = 30
    patience: int = 3
    min_delta: float = 1e-4
    validation_fraction: float = 0.1
    min_steps_per_epoch: int = 100
    seed: int = 0


def build_student(vocabulary, encoder_config, num_levels, name="relevance_student"):
    """`keras.Model` {query, item_title} strings → K relevance logits, with
    `.tokenizer`, `.encoder` (fine-tuning) and `.head` attributes."""
    tokenizer, encoder = encoder_config.text_layers(vocabulary, mode="finetune")
    head = RelevanceHead(num_levels=num_levels)
    query = keras.Input((), dtype="string", name="query")
    title = keras.Input((), dtype="string", name="item_title")
    model = keras.Model({"query": query, "item_title": title},
                        head(encoder(tokenizer(query, title))), name=name)
    model.tokenizer, model.encoder, model.head = tokenizer, encoder, head
    return model


def _dataset(pairs, targets, batch_size, seed, shuffle):
    features = {"query": pairs["query"].to_numpy().astype(str),
                "item_title": pairs["title"].to_numpy().astype(str)}
    ds = tf.data.Dataset.from_tensor_slices((features, targets))
    if shuffle:
        ds = ds.shuffle(len(targets), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def train_student(pairs, vocabulary, encoder_config, num_levels, out_dir, config=StudentConfig(),
                  teacher_logits=None, teacher=None, verbose=1, callbacks=()):
    """Train (or load, when `out_dir` holds a finished one) the relevance student.

    Args:
        pairs: DataFrame with `query`, `title`, `label` (-1 unlabelled), e.g.
            `prectr_tf.distill.teacher_pairs`.
        vocabulary: WordPiece tokens (`learn_wordpiece_vocabulary`).
        encoder_config: `prectr_tf.models.config.EncoderConfig`.
        num_levels: K.
        out_dir: the student folder (module doc); a killed run resumes here.
        config: `StudentConfig`.
        teacher_logits: float `[N, K]` aligned with `pairs` for distillation;
            `None` for SFT, which keeps the labelled pairs only.
        teacher: a short description of the teacher, recorded in `student.json`.
        verbose: Keras progress output (0, 1 or 2).
        callbacks: extra Keras callbacks for the fit.

    Returns:
        `(model, meta)`: the student (`build_student`) on its best epoch's
        weights, and the `student.json` contents.
    """
    os.makedirs(out_dir, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    model = build_student(vocabulary, encoder_config, num_levels)
    weights_path = os.path.join(out_dir, WEIGHTS_FILE)
    if os.path.exists(weights_path):
        model.load_weights(weights_path)
        with open(os.path.join(out_dir, META_FILE)) as fh:
            return model, json.load(fh)
    distilling = teacher_logits is not None
    if distilling:
        teacher_logits = np.asarray(teacher_logits, np.float32)
        if teacher_logits.shape != (len(pairs), num_levels):
            raise ValueError(f"teacher_logits must be [{len(pairs)}, {num_levels}], got "
                             f"{teacher_logits.shape}")
    else:
        keep = pairs["label"].to_numpy() >= 0
        pairs = pairs[keep]
        teacher_logits = np.zeros((len(pairs), num_levels), np.float32)  # ignored: kd_weight 0
    if len(pairs) == 0:
        raise ValueError("no pairs to train the relevance student on"
                         + ("" if distilling else " (SFT needs relevance-labelled pairs)"))
    targets = pack_distillation_targets(pairs["label"].to_numpy(), teacher_logits)
    is_val = split_by_query(pairs["query"].to_numpy(), config.validation_fraction, config.seed)
    if not is_val.any():
        raise ValueError("early stopping needs at least two distinct queries")
    train_ds = _dataset(pairs[~is_val], targets[~is_val], config.batch_size, config.seed, True)
    steps_per_epoch = None
    if math.ceil((~is_val).sum() / config.batch_size) < config.min_steps_per_epoch:
        train_ds, steps_per_epoch = train_ds.repeat(), config.min_steps_per_epoch
    val_ds = _dataset(pairs[is_val], targets[is_val], 4 * config.batch_size, config.seed, False)
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate),
                  loss=DistillationLoss(config.temperature, config.alpha,
                                        kd_weight=1.0 if distilling else 0.0),
                  jit_compile=False)
    stopping = ResumableEarlyStopping(os.path.join(out_dir, "early_stopping"),
                                      patience=config.patience,
                                      min_delta=config.min_delta)
    fit = model.fit(train_ds, validation_data=val_ds, epochs=config.max_epochs, verbose=verbose,
                    shuffle=False, steps_per_epoch=steps_per_epoch,
                    callbacks=[keras.callbacks.BackupAndRestore(os.path.join(out_dir, "backup")),
                               keras.callbacks.TerminateOnNaN(), stopping, *callbacks])
    meta = {
        "method": "distillation" if distilling else "sft",
        "teacher": teacher,
        "num_levels": num_levels,
        "encoder": dataclasses.asdict(encoder_config),
        "num_parameters": {"encoder": int(model.encoder.count_params()),
                           "head": int(model.head.count_params())},
        "config": dataclasses.asdict(config),
        "num_pairs": {"train": int((~is_val).sum()), "validation": int(is_val.sum()),
                      "labelled": int((pairs["label"].to_numpy() >= 0).sum())},
        "best_epoch": int(stopping.best_epoch),
        "best_val_loss": float(stopping.best),
        "history": {k: [float(v) for v in vals] for k, vals in fit.history.items()},
    }
    if "source" in pairs:
        meta["num_pairs"]["by_source"] = {k: int(v) for k, v in
                                          pairs["source"].value_counts().items()}
    save_vocabulary(vocabulary, os.path.join(out_dir, VOCABULARY_FILE))
    with open(os.path.join(out_dir, META_FILE), "w") as fh:
        json.dump(meta, fh, indent=2)
    # Last, and atomically: its presence marks the folder done (other
    # workers of a multi-worker run wait for it).
    model.save_weights(weights_path + ".partial.weights.h5")
    os.replace(weights_path + ".partial.weights.h5", weights_path)
    return model, meta


def load_student(out_dir, encoder_config=None):
    """A finished student folder → `(model, vocabulary, meta)`.

    Args:
        out_dir: written by `train_student` (or `prectr distill`).
        encoder_config: if given, it must equal the one the student was
            trained with (the weights fit no other shape).
    """
    from prectr_tf.config import dataclass_from_dict  # noqa: PLC0415
    from prectr_tf.models.config import EncoderConfig  # noqa: PLC0415

    weights_path = os.path.join(out_dir, WEIGHTS_FILE)
    if not os.path.exists(weights_path):
        raise FileNotFoundError(f"{out_dir} holds no finished relevance student "
                                f"({WEIGHTS_FILE} missing): run `prectr distill` first")
    with open(os.path.join(out_dir, META_FILE)) as fh:
        meta = json.load(fh)
    trained = dataclass_from_dict(EncoderConfig, meta["encoder"],
                                  f"{os.path.join(out_dir, META_FILE)}: encoder")
    if encoder_config is not None and encoder_config != trained:
        raise ValueError(f"{out_dir}: the student's encoder is {trained}, the model wants "
                         f"{encoder_config}")
    vocabulary = load_vocabulary(os.path.join(out_dir, VOCABULARY_FILE))
    model = build_student(vocabulary, trained, meta["num_levels"])
    model.load_weights(weights_path)
    return model, vocabulary, meta


# One compiled (tokenize, score) pair per student: a `tf.function` built per
# call would retrace on every call, which cost half the inference speed.
_PREDICT_FUNCTIONS = weakref.WeakKeyDictionary()


def _predict_functions(model):
    if model not in _PREDICT_FUNCTIONS:
        tokenize = tf.function(lambda q, t: model.tokenizer(q, t))
        # tf.text ops do not compile; the encoder and head do (XLA: ~1.2x on CPU).
        score = tf.function(lambda tokens: tf.nn.softmax(
            model.head(model.encoder(tokens, training=False))), jit_compile=True)
        _PREDICT_FUNCTIONS[model] = tokenize, score
    return _PREDICT_FUNCTIONS[model]


def relevance_probabilities(model, queries, titles, batch_size=4096):
    """softmax of a student's logits over `[N]` pairs, float64 `[N, K]`.

    Args:
        model: a student (`build_student`, `train_student`, `load_student`).
        queries: `[N]` query strings.
        titles: `[N]` item titles.
        batch_size: int, pairs per call (default 4096). The last batch is
            padded (to a power of two when all pairs fit in one), so XLA
            compiles only a few shapes.
    """
    tokenize, score = _predict_functions(model)
    queries, titles = np.asarray(queries, dtype=object), np.asarray(titles, dtype=object)
    batch_size = min(batch_size, 1 << max(len(queries) - 1, 0).bit_length())
    parts = []
    for start in range(0, len(queries), batch_size):
        q, t = queries[start:start + batch_size], titles[start:start + batch_size]
        n = len(q)
        if n < batch_size:
            q, t = np.resize(q, batch_size), np.resize(t, batch_size)
        # tf.constant takes str and UTF-8 bytes alike (no .astype(str): it
        # would decode bytes as ASCII).
        probs = score(tokenize(tf.constant(q, tf.string), tf.constant(t, tf.string)))
        parts.append(probs.numpy()[:n])
    if not parts:
        return np.zeros((0, model.head.num_levels), np.float64)
    return np.concatenate(parts).astype(np.float64)
