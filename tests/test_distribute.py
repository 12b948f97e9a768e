"""Training and evaluation under `tf.distribute` (DESIGN §9): real strategies,
real processes. MirroredStrategy runs over two logical CPUs in a fresh
process (devices are configured before TensorFlow starts);
MultiWorkerMirroredStrategy runs two `prectr train` worker processes on
localhost that talk gRPC, each reading its own train file."""

import json
import os
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
import pytest
import yaml

from prectr_tf.models.distribute import local_cluster, make_strategy

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
TIMEOUT = 600
# The click/relevance part of the logs that must match (the debias and
# load-balance terms are batch statistics, per replica under a strategy).
METRICS = ("auc", "log_loss", "gauc_user", "gauc_query", "ndcg_at_10", "mrr")

MIRRORED = textwrap.dedent("""
    import contextlib, json, sys
    from prectr_tf.models.distribute import make_strategy
    strategy = make_strategy("mirrored", logical_cpus=2)
    import keras
    from prectr_tf.data.pipeline import make_dataset
    from prectr_tf.models.config import EncoderConfig, preset
    from prectr_tf.models.prectr_model import PRECTRModel
    data_dir, name, vocab = sys.argv[1], sys.argv[2], sys.argv[3].split("\\n")
    config = preset(name, encoder=EncoderConfig(num_layers=1, hidden_dim=16, num_heads=2,
                                                intermediate_dim=32))

    def model(strategy=None):
        keras.utils.set_random_seed(0)
        with strategy.scope() if strategy else contextlib.nullcontext():
            m = PRECTRModel.from_dataset(data_dir, config, wordpiece_vocabulary=vocab)
            m.build()
            m.compile(optimizer=keras.optimizers.Adam(3e-3))
        return m

    one, two = model(), model(strategy)
    two.set_weights(one.get_weights())
    out = {"replicas": strategy.num_replicas_in_sync}
    for key, m in (("one", one), ("two", two)):
        keras.utils.set_random_seed(1)
        out[key] = m.fit(make_dataset(data_dir, "train", batch_size=64, shuffle=False),
                         epochs=2, verbose=0).history["loss"]
    # The same weights evaluated by both: each replica scores half of a
    # global batch of 64, the single model batches of 32 (the same rows, so
    # the same per-batch padding of the text pairs).
    single = model()
    single.set_weights(two.get_weights())
    out["eval_two"] = two.evaluate(make_dataset(data_dir, "eval", batch_size=64, shuffle=False),
                                   return_dict=True, verbose=0)
    out["eval_one"] = single.evaluate(make_dataset(data_dir, "eval", batch_size=32,
                                                   shuffle=False), return_dict=True, verbose=0)
    print("RESULT " + json.dumps(out, default=float))
""")


def _result(done):
    assert done.returncode == 0, done.stderr[-3000:]
    line = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


@pytest.mark.parametrize("name", ["dnn", "prectr_v2"])
def test_mirrored_over_two_replicas_trains_and_evaluates_like_one_device(tiny_dataset, name):
    data_dir, vocab = tiny_dataset
    done = subprocess.run([sys.executable, "-c", MIRRORED, str(data_dir), name, "\n".join(vocab)],
                          capture_output=True, text=True, env=ENV, timeout=TIMEOUT)
    out = _result(done)
    assert out["replicas"] == 2
    # Every metric of one evaluation, grouped ones included, equals the single
    # device's: the rows of both replicas were gathered.
    for key in METRICS:
        assert out["eval_two"][key] == pytest.approx(out["eval_one"][key], abs=1e-6), key
    if name == "dnn":
        # No random op and no per-batch statistic: the same trajectory.
        np.testing.assert_allclose(out["two"], out["one"], rtol=1e-4)
    else:
        # The noise twins draw per replica, and the pair loss keeps the hardest
        # share of each replica's half batch: stated tolerance 5 %.
        np.testing.assert_allclose(out["two"], out["one"], rtol=0.05)
        assert out["two"][-1] < out["two"][0]


def test_make_strategy_refuses_an_unknown_name_and_a_missing_cluster(monkeypatch):
    with pytest.raises(ValueError, match="strategy must be one of"):
        make_strategy("horovod")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        make_strategy("multi_worker_mirrored")


@pytest.fixture(scope="module")
def sharded_dataset(tmp_path_factory):
    """A simulated log built by `prectr build` into 2 train files (one per
    worker), with the run config: `(folder, config path)`."""
    root = tmp_path_factory.mktemp("multiworker")
    config = {
        "simulator": dict(num_users=80, num_requests=400, num_items=300, num_queries=40,
                          num_candidates=30, page_size=5, num_item_features=2, seed=11),
        "build": dict(eval_fraction=0.25, num_shards=2, chunk_size=500),
        "schema": dict(history_length=5, context_length=5, num_item_features=2),
        "model": {"encoder": dict(num_layers=1, hidden_dim=16, num_heads=2,
                                  intermediate_dim=32)},
        "train": dict(batch_size=64, rsl_epochs=1, joint_epochs=3, encoder_sft_epochs=2,
                      encoder_min_steps_per_epoch=5, wordpiece_vocabulary_size=300, seed=0),
    }
    path = root / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    cli = [sys.executable, "-m", "prectr_tf.cli"]
    for args in (["simulate", "--config", str(path), "--out", str(root / "sim")],
                 ["build", "--config", str(path), str(root / "sim" / "log.parquet"),
                  "--out", str(root / "dataset"), "--quiet"]):
        subprocess.run(cli + args, check=True, capture_output=True, env=ENV, timeout=TIMEOUT)
    info = json.loads((root / "dataset" / "dataset.json").read_text())
    assert len(info["splits"]["train"]["files"]) == 2
    return root, path


def _train_command(root, config):
    return [sys.executable, "-m", "prectr_tf.cli", "train", "--config", str(config),
            "--data", str(root / "dataset"), "--preset", "prectr_v2", "--quiet"]


@pytest.fixture(scope="module")
def single_process_history(sharded_dataset):
    """`prectr train --preset prectr_v2` of the run config in one process,
    the reference of both cluster tests: its history.json."""
    root, config = sharded_dataset
    single = subprocess.run(_train_command(root, config) + ["--out", str(root / "single")],
                            capture_output=True, text=True, env=ENV, timeout=TIMEOUT)
    assert single.returncode == 0, single.stderr[-3000:]
    return json.loads((root / "single" / "history.json").read_text())


def _workers(argv, num_workers=2):
    """Runs `argv` as each worker of a localhost cluster; their results.
    Output goes to files: a worker blocked on a full pipe would block the
    other one in a collective."""
    logs = [(tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+"))
            for _ in range(num_workers)]
    procs = [subprocess.Popen(argv, stdout=out, stderr=err, text=True,
                              env=dict(ENV, TF_CONFIG=config))
             for config, (out, err) in zip(local_cluster(num_workers), logs)]
    try:
        codes = [p.wait(TIMEOUT) for p in procs]
    finally:
        for p in procs:
            p.kill()
    done = []
    for code, (out, err) in zip(codes, logs):
        out.seek(0)
        err.seek(0)
        done.append(subprocess.CompletedProcess(argv, code, out.read(), err.read()))
    return done


def test_two_worker_prectr_v2_follows_the_single_process_run(sharded_dataset,
                                                            single_process_history):
    root, config = sharded_dataset
    done = _workers(_train_command(root, config)
                    + ["--out", str(root / "two"), "--strategy", "multi_worker_mirrored"])
    for worker in done:
        assert worker.returncode == 0, worker.stderr[-3000:]
    # Worker 0 writes the run; worker 1 keeps its own backups and weights.
    assert (root / "two" / "metrics.json").exists()
    assert (root / "two" / "stage0_encoder_sft" / "student.weights.h5").exists()
    assert not (root / "two" / "workers" / "worker-1" / "stage0_encoder_sft").exists()
    assert (root / "two" / "workers" / "worker-1" / "stage2_joint.weights.h5").exists()
    one = single_process_history
    two = json.loads((root / "two" / "history.json").read_text())
    other = json.loads((root / "two" / "workers" / "worker-1" / "history.json").read_text())
    for stage in ("stage1_rsl", "stage2_joint"):
        assert len(two[stage]["loss"]) == len(one[stage]["loss"])
        # Both workers report the same (all-reduced) epoch losses.
        np.testing.assert_allclose(other[stage]["loss"], two[stage]["loss"], rtol=1e-6)
        # Each worker reads its own file, so a global batch mixes the two
        # files differently than the single process's interleave; with the
        # per-replica noise twins: stated tolerance 5 %.
        np.testing.assert_allclose(two[stage]["loss"], one[stage]["loss"], rtol=0.05)
    assert two["stage2_joint"]["loss"][-1] < two["stage2_joint"]["loss"][0]


RESUMABLE = textwrap.dedent("""
    import json, sys
    import keras
    from prectr_tf.models.config import preset
    from prectr_tf.models.distribute import make_strategy
    from prectr_tf.models.training import TrainConfig, evaluate, train_staged
    data_dir, out, kill_epoch = sys.argv[1], sys.argv[2], int(sys.argv[3])

    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == kill_epoch:
                raise KeyboardInterrupt

    strategy = make_strategy("multi_worker_mirrored")
    config = preset("dnn", embedding_dim=8, hidden_units=(16,))
    model, history = train_staged(data_dir, config, TrainConfig(batch_size=64, joint_epochs=3),
                                  out, verbose=0, strategy=strategy,
                                  callbacks=[Kill()] if kill_epoch >= 0 else [])
    print("RESULT " + json.dumps({"history": history, "metrics": evaluate(model, data_dir)}))
""")


def test_a_killed_two_worker_run_resumes_and_evaluates_like_one_process(sharded_dataset):
    root, _ = sharded_dataset
    data_dir, out = root / "dataset", root / "resumed"
    run = [sys.executable, "-c", RESUMABLE, str(data_dir), str(out)]
    killed = _workers(run + ["0"])
    assert all(w.returncode != 0 for w in killed)
    assert all("KeyboardInterrupt" in w.stderr for w in killed)
    assert (out / "backup" / "stage2_joint").exists()
    assert (out / "workers" / "worker-1" / "backup" / "stage2_joint").exists()
    assert not (out / "stage2_joint.weights.h5").exists()
    resumed = [_result(w) for w in _workers(run + ["-1"])]
    # Epoch 0 was done before the kill: epochs 1 and 2 run now, on both.
    assert [len(r["history"]["stage2_joint"]["loss"]) for r in resumed] == [2, 2]
    # The distributed evaluation (rows gathered from both workers) equals a
    # single process's evaluation of the saved model on the same data.
    import keras  # noqa: PLC0415

    import prectr_tf.models.prectr_model  # noqa: F401, PLC0415 (registers the classes)
    from prectr_tf.models.training import evaluate  # noqa: PLC0415
    single = evaluate(keras.models.load_model(out / "model.keras"), data_dir)
    for result in resumed:
        for key in METRICS:
            assert result["metrics"][key] == pytest.approx(single[key], abs=1e-6), key


def test_bad_sharding_is_refused_with_the_fix_named(tiny_dataset):
    from prectr_tf.data.pipeline import make_dataset  # noqa: PLC0415
    from prectr_tf.models.training import _check_shardable  # noqa: PLC0415

    data_dir, _ = tiny_dataset
    with pytest.raises(ValueError, match=r"1 file\(s\) for 2 workers.*--num-shards 2"):
        _check_shardable(data_dir, 2)
    _check_shardable(data_dir, 1)
    with pytest.raises(ValueError, match="shard_by must be one of"):
        make_dataset(data_dir, "train", shard_by="rows")


PARAMETER_SERVER_CHIEF = textwrap.dedent("""
    import json, sys
    import keras
    from prectr_tf.config import load_config
    from prectr_tf.cli import _sections
    from prectr_tf.models.config import preset
    from prectr_tf.models.distribute import make_strategy
    from prectr_tf.models.parameter_server import train_parameter_server
    config_path, data_dir, out = sys.argv[1:4]
    kill_epoch = int(sys.argv[4])
    config = load_config(config_path, _sections())

    class Kill(keras.callbacks.Callback):
        # At the kill_epoch-th epoch end of the run (stage 1 has one epoch).
        ends = 0

        def on_epoch_end(self, epoch, logs=None):
            Kill.ends += 1
            if Kill.ends == kill_epoch:
                raise KeyboardInterrupt

    strategy = make_strategy("parameter_server")
    model, history = train_parameter_server(
        data_dir, preset("prectr_v2", encoder=config["model"].encoder), config["train"], out,
        strategy, verbose=0, callbacks=[Kill()] if kill_epoch >= 0 else [])
    devices = {v.path: v.value.device for v in model.user_embedding.weights}
    print("RESULT " + json.dumps({"history": history, "devices": devices}))
""")


def test_a_parameter_server_cluster_trains_prectr_v2_resumes_and_spreads_the_tables(
        sharded_dataset, single_process_history):
    root, config = sharded_dataset
    data_dir, out = root / "dataset", root / "ps"
    chief, *servers = local_cluster(2, num_ps=2)
    # Workers and parameter servers: `prectr train` serves until killed.
    serve = [sys.executable, "-m", "prectr_tf.cli", "train", "--config", str(config),
             "--data", str(data_dir), "--out", str(out), "--strategy", "parameter_server"]
    procs = [subprocess.Popen(serve, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env=dict(ENV, TF_CONFIG=task)) for task in servers]
    try:
        run = [sys.executable, "-c", PARAMETER_SERVER_CHIEF, str(config), str(data_dir),
               str(out)]
        env = dict(ENV, TF_CONFIG=chief)
        # Killed after stage 1 and stage 2's first epoch.
        killed = subprocess.run(run + ["2"], capture_output=True, text=True, env=env,
                                timeout=TIMEOUT)
        assert killed.returncode != 0 and "KeyboardInterrupt" in killed.stderr
        assert (out / "stage1_rsl.weights.h5").exists()
        assert (out / "backup" / "stage2_joint").exists()
        resumed = _result(subprocess.run(run + ["-1"], capture_output=True, text=True,
                                         env=env, timeout=TIMEOUT))
    finally:
        for p in procs:
            p.kill()
    # Stage 1 was done; stage 2 resumed after its checkpointed epoch 0.
    assert list(resumed["history"]) == ["stage2_joint"]
    assert len(resumed["history"]["stage2_joint"]["loss"]) == 2
    # Each id table is split in two, one part on each parameter server.
    assert sorted(d.split("/task:")[1][0] for d in resumed["devices"].values()) == ["0", "1"]
    assert all("/job:ps/" in d for d in resumed["devices"].values())
    # Asynchronous updates from two workers, each shuffling the whole split:
    # stated tolerance 10 % of the single process's epoch losses.
    one = single_process_history["stage2_joint"]["loss"]
    np.testing.assert_allclose(resumed["history"]["stage2_joint"]["loss"], one[1:], rtol=0.10)
    assert (out / "model.keras").exists()
