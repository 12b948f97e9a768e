"""`ResumableEarlyStopping`: early stopping whose state survives a killed run.

Keras' `EarlyStopping` keeps its best value, patience counter and best
weights in memory, so a run resumed by `BackupAndRestore` forgets them, and it
restores the best weights only when it stops early, not when the epoch cap is
reached. This callback keeps all three on disk and always ends on the best
epoch's weights.
"""

import json
import os

import keras
import numpy as np


class ResumableEarlyStopping(keras.callbacks.Callback):
    """Stop when `monitor` has not improved for `patience` epochs; end on the
    best epoch's weights; resume from `directory` after a kill.

    Put it after `BackupAndRestore` in the callback list.

    Args:
        directory: where `state.json` and `best.weights.h5` live.
        monitor: a logged value to minimise (default `"val_loss"`).
        patience: epochs without improvement before stopping (default 3).
        min_delta: the smallest decrease that counts as an improvement.

    Attributes:
        best, best_epoch: the best value and its 0-based epoch.
        stopped_epoch: the epoch it stopped after, or None.

    Example:
    >>> x = np.random.default_rng(0).normal(size=(64, 2)).astype("float32")
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> stop = ResumableEarlyStopping(f"{tmp}/early_stopping", patience=2)
    >>> history = model.fit(x, x.sum(1), validation_split=0.25, epochs=5, callbacks=[stop],
    ...                     verbose=0)
    >>> stop.best_epoch == int(np.argmin(history.history["val_loss"]))  # and its weights
    True
    """

    def __init__(self, directory, monitor="val_loss", patience=3, min_delta=0.0):
        super().__init__()
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        self.directory = directory
        self.monitor = monitor
        self.patience = patience
        self.min_delta = min_delta
        self.best, self.best_epoch, self.wait, self.stopped_epoch = np.inf, -1, 0, None

    @property
    def _state_path(self):
        return os.path.join(self.directory, "state.json")

    @property
    def _weights_path(self):
        return os.path.join(self.directory, "best.weights.h5")

    def on_train_begin(self, logs=None):
        os.makedirs(self.directory, exist_ok=True)
        if os.path.exists(self._state_path):
            with open(self._state_path) as fh:
                state = json.load(fh)
            self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]
        if self.wait >= self.patience:  # killed after deciding to stop
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            raise KeyError(f"early stopping monitors {self.monitor!r}, which was not logged; "
                           f"logged: {sorted(logs or {})}")
        if value < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = float(value), epoch, 0
            self.model.save_weights(self._weights_path)
        else:
            self.wait += 1
        with open(self._state_path + ".tmp", "w") as fh:
            json.dump({"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}, fh)
        os.replace(self._state_path + ".tmp", self._state_path)
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if os.path.exists(self._weights_path):
            self.model.load_weights(self._weights_path)
