"""Staged training on a `ParameterServerStrategy` cluster (DESIGN §9).

Keras 3's `fit` has no parameter-server path (no `ClusterCoordinator`, no
`DatasetCreator`), so the coordinator here runs the same stages as
`train_staged` with its own loop: each step is the model's own `train_step`,
scheduled by a `tf.distribute.coordinator.ClusterCoordinator` on whichever
worker is free; the variables live on the parameter servers. Each id
embedding table is split into `PRECTRConfig.embedding_shards` variables
(default here: one per parameter server), which the strategy places on the
servers in turn, so no table needs to fit one server. TF's own
`variable_partitioner` would make each table a `ShardedVariable`, which the
Keras 3 optimizers cannot update ("ShardedVariable doesn't support being
used as a reference"), hence the split in the layer (`IdEmbedding`).

Tasks (`TF_CONFIG`): one `chief` (the coordinator: it trains stage 0, runs
the loop and writes `<out>`), `worker`s and `ps` servers, which only serve
(`run_server`). Every worker reads the whole train split, shuffled on its
own (parameter-server training visits each batch about once per epoch, not
exactly once); an epoch is the split's number of batches. After every epoch
the coordinator writes a checkpoint (model, optimizers, epoch) under
`<out>/backup/<stage>`; a restarted coordinator resumes from it, and a
worker that fails is replaced by the coordinator rescheduling its steps.
Stages do not stop early here (`stage_validation_fraction` must be 0), a
frozen encoder is not cached (`RelevanceCache`), and an epoch's log is its
steps' mean loss only: the streaming metrics, updated by every worker at
once, lose updates (Keras 3 variables `assign_add` by read-modify-write), so
the model is evaluated from `<out>/model.keras` after training.
"""

import dataclasses
import json
import math
import os
import shutil

import keras
import numpy as np
import tensorflow as tf

from prectr_tf.data.build import read_dataset_info
from prectr_tf.data.pipeline import make_dataset
from prectr_tf.models.training import STAGES, initial_model, set_stage


def run_server():
    """Serve as this process's `worker` or `ps` task of `TF_CONFIG`, until
    killed (the coordinator never tells servers to stop)."""
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    server = tf.distribute.Server(resolver.cluster_spec(), job_name=resolver.task_type,
                                  task_index=resolver.task_id,
                                  protocol=resolver.rpc_layer or "grpc", start=True)
    server.join()


def num_parameter_servers():
    """The `ps` tasks of the cluster in `TF_CONFIG`."""
    spec = tf.distribute.cluster_resolver.TFConfigClusterResolver().cluster_spec()
    return len(spec.as_dict().get("ps", []))


def train_parameter_server(data_dir, model_config, train_config, out_dir, strategy, verbose=1,
                           callbacks=()):
    """`train_staged` on a parameter-server cluster, run by its coordinator.

    Args:
        data_dir: a dataset built by `prectr build`.
        model_config: a `PRECTRConfig`; `embedding_shards` 1 becomes the
            number of parameter servers.
        train_config: a `TrainConfig` (`stage_validation_fraction` 0).
        out_dir: where the student, checkpoints, history and `model.keras` go.
        strategy: a `ParameterServerStrategy` (`make_strategy`).
        verbose: 1 prints one line per epoch.
        callbacks: Keras callbacks; their `on_epoch_end(epoch, logs)` is
            called after each epoch's checkpoint.

    Returns:
        `(model, history)` as `train_staged`; the model's variables are on
        the parameter servers (load `<out>/model.keras` to use it locally).
    """
    if train_config.stage_validation_fraction:
        raise ValueError("parameter-server training does not stop stages early: set "
                         "train.stage_validation_fraction to 0")
    if model_config.embedding_shards == 1:
        model_config = dataclasses.replace(
            model_config, embedding_shards=max(1, num_parameter_servers()))
    os.makedirs(out_dir, exist_ok=True)
    model, stages = initial_model(data_dir, model_config, train_config, out_dir,
                                  verbose=verbose, scope=strategy.scope)
    coordinator = tf.distribute.coordinator.ClusterCoordinator(strategy)
    examples = read_dataset_info(data_dir)["splits"]["train"]["num_examples"]
    steps = train_config.steps_per_epoch or math.ceil(examples / train_config.batch_size)

    def per_worker_dataset():
        return strategy.distribute_datasets_from_function(lambda _: make_dataset(
            data_dir, "train", batch_size=train_config.batch_size, repeat=True))

    iterator = iter(coordinator.create_per_worker_dataset(per_worker_dataset))
    history = {}
    for stage in stages:
        set_stage(model, stage)
        with strategy.scope():
            model.compile(optimizer=keras.optimizers.Adam(train_config.learning_rate))
            model.build_optimizers()
        path = os.path.join(out_dir, f"{stage}.weights.h5")
        if os.path.exists(path):
            model.load_weights(path)
            continue
        epochs = train_config.rsl_epochs if stage == STAGES[1] else train_config.joint_epochs

        @tf.function  # traced per stage: its trainable variables and weights differ
        def step(iterator):
            return strategy.run(lambda batch: model.train_step_loss(batch)[0],
                                args=(next(iterator),))

        history[stage] = _train_stage(model, coordinator, step, iterator, steps, epochs,
                                      os.path.join(out_dir, "backup", stage), verbose, callbacks,
                                      stage)
        model.save_weights(path)
        shutil.rmtree(os.path.join(out_dir, "backup", stage), ignore_errors=True)
    model.save(os.path.join(out_dir, "model.keras"))
    with open(os.path.join(out_dir, "history.json"), "w") as fh:
        json.dump(history, fh, indent=2)
    return model, history


def _train_stage(model, coordinator, step, iterator, steps, epochs, backup_dir, verbose,
                 callbacks, stage):
    """The epochs of one stage, resumed from its last checkpoint."""
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False)  # on the coordinator
    optimizers = {f"optimizer_{i}": opt for i, (opt, _) in
                  enumerate(model.optimizers_and_variables()) if opt is not None}
    checkpoint = tf.train.Checkpoint(model=model, epoch=epoch, **optimizers)
    manager = tf.train.CheckpointManager(checkpoint, backup_dir, max_to_keep=1)
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint)
    history = {"loss": []}
    for current in range(int(epoch.numpy()), epochs):
        losses = [coordinator.schedule(step, args=(iterator,)) for _ in range(steps)]
        coordinator.join()
        # Each step's own loss: the workers' concurrent updates of shared
        # metric variables are not reliable (`PRECTRModel.train_step_loss`).
        logs = {"loss": float(np.mean([value.fetch() for value in losses]))}
        history["loss"].append(logs["loss"])
        epoch.assign(current + 1)
        manager.save()
        if verbose:
            print(f"{stage} epoch {current + 1}/{epochs}: loss {logs['loss']:.4f}", flush=True)
        for callback in callbacks:
            callback.on_epoch_end(current, logs)
    return history
