"""Training throughput: PRECTR v1, PRECTR-V2 and a DCN-v2 baseline, same data.

Simulates a log (default 30,000 impressions), builds it into a temporary
dataset and learns a WordPiece vocabulary over the log's queries and titles.
Then each model trains in its own fresh child process (spawn: its peak memory
is its own, and no model inherits another's traced graphs):

* `PRECTRModel` with `preset("prectr_v1")` / `preset("prectr_v2")` on the
  joint stage-2 objective (stages 0/1 are not timed; the encoder weights are
  left random, which costs the same), `prectr_v1_cached` (v1 on a
  `RelevanceCache`: r per distinct pair computed once before training, as
  `train_staged` does for a frozen encoder; the build is reported, not
  timed), `prectr_v2_noise_r` (V2 with the paper's `debias="noise_r"` twin
  instead of the default's title noise), and `DCNv2Baseline`; Adam;
* one `fit` over `make_dataset(..., repeat=True, drop_remainder=True)` at
  `--batch-size`, of `1 + --runs` epochs of `--steps` steps: epoch 0 is the
  warm-up (the first steps trace the graph), each later epoch one timed run,
  from `on_epoch_begin` to `on_epoch_end` (the input pipeline is included,
  `fit`'s set-up is not).

The runs are interleaved: a child waits at the start of each epoch until the
parent says go, and the parent lets one model run at a time, round-robin, so
the models never compete with each other for the cores, and load from other
processes on a shared machine spreads over all models instead of landing on
whichever ran last.

Prints impressions per second per model (mean ± std, min, max over the runs),
the ratios v2/v1, v2/dcn and v1/dcn (of the means), trainable parameters,
peak resident memory of each child (`VmHWM`), the load average before and
after (other processes share the cores), machine and versions. TensorFlow
uses its default thread pools (all cores).

    python benchmarks/train_throughput.py                  # ~4-5 min on 2 cores
    python benchmarks/train_throughput.py --steps 10 --runs 1 --impressions 10000
"""

import os

# Quiet TensorFlow's C++ start-up chatter; set before TF is imported here and
# in the spawned children (which re-import this module).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse  # noqa: E402
import multiprocessing as mp  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from _common import machine_line, peak_rss_mb  # noqa: E402

MODELS = ("prectr_v1", "prectr_v1_cached", "prectr_v2", "prectr_v2_noise_r", "dcn_v2")
RATIOS = (("prectr_v2", "prectr_v1"), ("prectr_v2", "dcn_v2"), ("prectr_v1", "dcn_v2"),
          ("prectr_v1_cached", "prectr_v1"), ("prectr_v1_cached", "dcn_v2"),
          ("prectr_v2", "prectr_v2_noise_r"))


def _make_model(name, data_dir, vocabulary):
    from prectr_tf.models.config import preset
    from prectr_tf.models.dcn import DCNv2Baseline
    from prectr_tf.models.prectr_model import PRECTRModel

    if name == "dcn_v2":
        return DCNv2Baseline.from_dataset(data_dir)
    if name == "prectr_v2_noise_r":  # the paper's twin r + ε, before the default's title noise
        return PRECTRModel.from_dataset(data_dir, preset("prectr_v2", debias="noise_r"),
                                        wordpiece_vocabulary=vocabulary)
    name = name.removesuffix("_cached")
    return PRECTRModel.from_dataset(data_dir, preset(name), wordpiece_vocabulary=vocabulary)


def _train(name, data_dir, vocab_path, batch_size, steps, runs, seed, conn):
    """Child: one `fit` of 1 + runs epochs, each started by the parent's
    "go"; sends `(seconds, loss)` per epoch, then the model's totals."""
    import keras  # noqa: PLC0415 (child process)

    from prectr_tf.data.pipeline import make_dataset
    from prectr_tf.layers.id_embedding import load_vocabulary

    class Turn(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            conn.recv()  # wait for this model's turn
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            conn.send((time.perf_counter() - self.started, float(logs["loss"])))

    keras.utils.set_random_seed(seed)
    model = _make_model(name, data_dir, load_vocabulary(vocab_path))
    model.build()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    data = make_dataset(data_dir, "train", batch_size=batch_size, repeat=True,
                        drop_remainder=True, seed=seed)
    cache_seconds = None
    if name.endswith("_cached"):
        # Built once per dataset, before training (not timed as training).
        from prectr_tf.models.relevance_cache import RelevanceCache  # noqa: PLC0415
        started = time.perf_counter()
        cache = RelevanceCache.from_dataset(model, data_dir)
        cache_seconds = (time.perf_counter() - started, len(cache))
        data = cache.attach(data)
    # shuffle=False: the dataset shuffles itself (fit would only warn). One
    # fit, so the same iterator (and shuffle buffer) carries across runs.
    model.fit(data, epochs=1 + runs, steps_per_epoch=steps, verbose=0, shuffle=False,
              callbacks=[Turn()])
    conn.send({"trainable_params": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
               "peak_rss_mb": peak_rss_mb(), "cache_seconds": cache_seconds})


def _receive(conn, proc):
    # Poll, so a child that dies (out of memory, an exception) fails the
    # benchmark instead of hanging it.
    while not conn.poll(1.0):
        if not proc.is_alive():
            break
    try:
        return conn.recv()
    except (EOFError, ConnectionError):
        proc.join(5)
        raise RuntimeError(f"benchmark child {proc.name} died (exit code {proc.exitcode}); "
                           "its traceback is above") from None


def _interleaved(names, child_args, runs):
    """Start one child per model (`_train(name, *child_args, conn)`); run its
    1 + runs epochs round-robin with the others (rotating the
    order each round); return `{name: {seconds, losses, warmup_seconds,
    trainable_params, peak_rss_mb}}`."""
    context = mp.get_context("spawn")
    children = {}
    for name in names:
        parent_end, child_end = context.Pipe()
        proc = context.Process(target=_train, args=(name, *child_args, child_end),
                               name=name)
        proc.start()
        child_end.close()  # the child's end lives in the child: EOF if it dies
        children[name] = (parent_end, proc)
    results = {name: {"seconds": [], "losses": []} for name in names}
    try:
        for round_ in range(1 + runs):
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                conn, proc = children[name]
                conn.send("go")
                seconds, loss = _receive(conn, proc)
                if round_ == 0:
                    results[name]["warmup_seconds"] = seconds
                else:
                    results[name]["seconds"].append(seconds)
                    results[name]["losses"].append(loss)
        for name, (conn, proc) in children.items():
            results[name].update(_receive(conn, proc))
            proc.join()
    finally:
        for _, proc in children.values():
            if proc.is_alive():
                proc.terminate()
    return results


def _simulate_and_build(args, tmp):
    """The log, built into `<tmp>/dataset`; the WordPiece vocabulary in
    `<tmp>/wordpiece.txt`."""
    from prectr_tf.data.build import build_dataset
    from prectr_tf.data.schema import DataSchema
    from prectr_tf.data.simulator import SimulatorConfig, simulate
    from prectr_tf.layers.text_preprocessing import learn_wordpiece_vocabulary, save_vocabulary

    page = 10
    config = SimulatorConfig(seed=args.seed, num_users=max(args.impressions // 50, 10),
                             num_requests=args.impressions // page, page_size=page)
    sim = simulate(config)
    schema = DataSchema(num_relevance_levels=config.num_relevance_levels,
                        num_item_features=config.num_item_features)
    data_dir = os.path.join(tmp, "dataset")
    build_dataset(sim.log, data_dir, schema, progress=False)
    texts = sorted(set(sim.log["query"]) | set(sim.log["item_title"]))
    vocab_path = os.path.join(tmp, "wordpiece.txt")
    vocabulary = learn_wordpiece_vocabulary(texts, vocabulary_size=args.wordpiece_size)
    save_vocabulary(vocabulary, vocab_path)
    return config, schema, len(sim.log), data_dir, vocab_path, len(vocabulary)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--impressions", type=int, default=30_000)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=30,
                        help="steps per run (and of the warm-up epoch)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--wordpiece-size", type=int, default=4000)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    load_before = os.getloadavg()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        config, schema, n, data_dir, vocab_path, vocab_size = _simulate_and_build(args, tmp)
        prepare_seconds = time.perf_counter() - started
        results = _interleaved(list(args.models), (data_dir, vocab_path, args.batch_size,
                                                   args.steps, args.runs, args.seed), args.runs)
    load_after = os.getloadavg()

    import keras  # noqa: PLC0415
    import keras_hub  # noqa: PLC0415
    import keras_rs  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    per_run = args.batch_size * args.steps
    print("# training throughput")
    print(machine_line())
    print(f"versions: tensorflow {tf.__version__}, keras {keras.__version__}, keras-hub "
          f"{keras_hub.__version__}, keras-rs {keras_rs.__version__}, numpy {np.__version__}")
    print(f"data: {n:,} simulated impressions (seed {args.seed}, {config.num_users:,} users, "
          f"{config.num_items:,} items, {config.num_queries:,} queries, "
          f"F={schema.num_item_features}, L_u={schema.history_length}, "
          f"L_g={schema.context_length}); WordPiece vocabulary {vocab_size:,} tokens; "
          f"simulate + build + vocabulary {prepare_seconds:.1f}s")
    print(f"timing: batch {args.batch_size}, 1 warm-up epoch then {args.runs} timed runs of "
          f"{args.steps} steps ({per_run:,} impressions per run); each model in a fresh "
          f"spawned process, runs interleaved round-robin")
    print(f"load average (1, 5, 15 min): before {', '.join(f'{x:.2f}' for x in load_before)}; "
          f"after {', '.join(f'{x:.2f}' for x in load_after)}")
    print()
    print("| model | impressions/s (mean ± std) | min | max | warm-up epoch s "
          "| trainable params | peak RSS MB | loss first → last run |")
    print("|---|---|---|---|---|---|---|---|")
    means = {}
    for name, result in results.items():
        rates = per_run / np.asarray(result["seconds"])
        means[name] = rates.mean()
        print(f"| {name} | {rates.mean():,.0f} ± {rates.std():,.0f} | {rates.min():,.0f} "
              f"| {rates.max():,.0f} | {result['warmup_seconds']:.1f} "
              f"| {result['trainable_params']:,} | {result['peak_rss_mb']:,.0f} "
              f"| {result['losses'][0]:.4f} → {result['losses'][-1]:.4f} |")
    print()
    ratios = [f"{a}/{b} = {means[a] / means[b]:.3f}" for a, b in RATIOS
              if a in means and b in means]
    if ratios:
        print("throughput ratios (of the means): " + "; ".join(ratios))
    for name, result in results.items():
        print(f"{name} seconds per run: {', '.join(f'{s:.2f}' for s in result['seconds'])}")
        if result.get("cache_seconds"):
            seconds, pairs = result["cache_seconds"]
            print(f"{name}: RelevanceCache of {pairs:,} distinct pairs built in {seconds:.1f}s "
                  "(once per dataset, before training)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
