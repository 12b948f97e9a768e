"""Training under `tf.distribute` (DESIGN §9): the strategies `prectr train
--strategy` selects, and what our models need to run `fit` / `evaluate` under
them.

Strategies (`make_strategy`):

* `"default"` — one device (no distribution);
* `"mirrored"` — `MirroredStrategy` over the local devices (GPUs; on a
  CPU-only host, `logical_cpus` splits the CPU into that many devices);
* `"multi_worker_mirrored"` — `MultiWorkerMirroredStrategy`, one process per
  worker, the cluster read from `TF_CONFIG`; each worker reads its share of
  the dataset's files (`make_dataset(shard_by="file")`);
* `"parameter_server"` — `ParameterServerStrategy`: a `chief` coordinator,
  `worker`s and `ps` servers from `TF_CONFIG`, trained by
  `prectr_tf.models.parameter_server` (Keras 3's `fit` has no such path).

`local_cluster` writes the `TF_CONFIG`s of a cluster on one host.

Keras 3 builds a model under a strategy by averaging a batch across replicas
(`_maybe_symbolic_build`), which fails on string features; our models are
built from a dummy batch (`build()`), so `DistributedModel` only builds
their optimizers, inside the strategy's scope, before the first step; and it
hands Keras step logs it can reduce across workers (`reducible_logs`).
"""

import json
import os
import socket

import tensorflow as tf

from prectr_tf.engines import STRATEGIES


def make_strategy(name="default", logical_cpus=None):
    """The `tf.distribute.Strategy` called `name`.

    Args:
        name: str, one of `STRATEGIES` (default `"default"`).
        logical_cpus: int or None (default). For `"mirrored"` on a host
            without GPUs: split the CPU into this many logical devices, one
            replica each (must run before TensorFlow initialises its devices).

    Returns:
        the strategy. Create and compile models inside `strategy.scope()`.

    Example:
    >>> make_strategy("default").num_replicas_in_sync
    1
    """
    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = None
        if logical_cpus and not tf.config.list_physical_devices("GPU"):
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration()] * logical_cpus)
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    if not resolver.cluster_spec().jobs:
        raise ValueError(f"strategy {name!r} needs a cluster in the TF_CONFIG environment "
                         "variable (README: training on a cluster)")
    if name == "multi_worker_mirrored":
        return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
    return tf.distribute.experimental.ParameterServerStrategy(resolver)


def local_cluster(num_workers, num_ps=0, host="localhost"):
    """The `TF_CONFIG` of every task of a cluster on this host, on free
    ports: `num_workers` workers (worker 0, the chief, first); with
    `num_ps` > 0 a parameter-server cluster: a `chief` (the coordinator)
    first, then the workers, then the `ps` servers.

    Example:
    >>> [json.loads(c)["task"] for c in local_cluster(2)]
    [{'type': 'worker', 'index': 0}, {'type': 'worker', 'index': 1}]
    >>> [json.loads(c)["task"]["type"] for c in local_cluster(2, num_ps=1)]
    ['chief', 'worker', 'worker', 'ps']
    """
    counts = {"chief": 1 if num_ps else 0, "worker": num_workers, "ps": num_ps}
    sockets = [socket.socket() for _ in range(sum(counts.values()))]
    try:
        for sock in sockets:
            sock.bind((host, 0))
        addresses = iter(f"{host}:{sock.getsockname()[1]}" for sock in sockets)
        cluster = {job: [next(addresses) for _ in range(n)] for job, n in counts.items() if n}
    finally:
        for sock in sockets:
            sock.close()
    return [json.dumps({"cluster": cluster, "task": {"type": job, "index": i}})
            for job, addresses in cluster.items() for i in range(len(addresses))]


def task_from_tf_config():
    """`(task_type, task_index)` of this process in `TF_CONFIG`, or
    `(None, None)` without one."""
    task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
    return task.get("type"), task.get("index")


def is_chief():
    """Whether this process writes the run's files: the only process, or
    the chief (worker 0 of a cluster without a `chief` task)."""
    task_type, task_index = task_from_tf_config()
    return task_type in (None, "chief") or (task_type == "worker" and task_index == 0)


def num_workers(strategy):
    """Worker processes a strategy spans (1 for a single process)."""
    if strategy is None or strategy.num_replicas_in_sync == 1:
        return 1
    return strategy.num_replicas_in_sync // len(strategy.extended.worker_devices)


def reducible_logs(logs):
    """A step's logs, as Keras can reduce them across workers.

    Under `MultiWorkerMirroredStrategy` with several workers, Keras reduces
    each step's logs with a MEAN over axis 0, which fails on scalars
    (tensorflow/tensorflow#72388): they go out as `[1]` tensors (the MEAN
    makes scalars of them again). Those logs only feed the progress bar; an
    epoch's and `evaluate`'s values are read from the metrics, whose state is
    summed over every replica.
    """
    strategy = tf.distribute.get_strategy()
    if num_workers(strategy) == 1:
        return logs
    return {name: tf.reshape(value, [1]) for name, value in logs.items()}


class DistributedModel:
    """Mixin of a `keras.Model` (listed before it) built by `build()` from a
    dummy batch and trained with its own `train_step`: under a strategy,
    build the optimizers (`optimizers_and_variables`) in its scope instead of
    Keras' symbolic build, which averages a data batch across replicas and
    fails on string features."""

    def train_step(self, data):
        # A model that overrides train_step calls reducible_logs itself.
        return reducible_logs(super().train_step(data))

    def test_step(self, data):
        return reducible_logs(super().test_step(data))

    def optimizers_and_variables(self):
        """`[(optimizer, variables)]` the train step applies; override when
        a model has more than one optimizer."""
        return [(self.optimizer, self.trainable_variables)]

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self._distribute_strategy is None:
            return
        if not self.built:
            raise ValueError(f"{type(self).__name__}: call build() inside the strategy's "
                             "scope before fit/evaluate")
        with self.distribute_strategy.scope():
            self.build_optimizers()

    def build_optimizers(self):
        """Build every optimizer on its variables (call in the strategy's
        scope: their slots are created where the variables live)."""
        for optimizer, variables in self.optimizers_and_variables():
            if optimizer is not None and not optimizer.built and variables:
                optimizer.build(variables)

