"""What XLA or bfloat16 would buy the encoder: one forward + backward step in
graph mode, with `jit_compile`, and under keras' `mixed_bfloat16` policy, at a
training batch's shape.

The default `RelevanceTextEncoder` (3 layers, d = 64, 4 heads, FFN 256) and
a relevance head take `[U, L]` token ids — U distinct pairs of a batch, L
tokens — and an Adam step applies the gradients of a cross-entropy. Shapes
default to what `benchmarks/batch_pairs.py` measured: U = 465 (0.908 of a
512-row batch) and L = 16 (the simulator's longest pair) and 32 (Home
Depot's). The three variants alternate, `--repeats` timed rounds of
`--steps` steps each after a warm-up (the compile), in one process.

Prints ms per step (mean ± std over the rounds) and the ratios to graph mode,
machine and versions; JSON to `--out`.

    python benchmarks/encoder_xla.py              # ~3 min on 2 cores
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from _common import machine_line  # noqa: E402

VARIANTS = ("graph", "xla", "bf16")


def _train_step(encoder, head, optimizer):
    """One training step of encoder + head (variables closed over, not passed:
    tf.function would trace passed variables as tensors)."""
    import tensorflow as tf  # noqa: PLC0415

    variables = encoder.trainable_variables + head.trainable_variables

    def step(ids, labels):
        with tf.GradientTape() as tape:
            logits = tf.cast(head(encoder(ids, training=True), training=True), "float32")
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        optimizer.apply(tape.gradient(loss, variables), variables)
        return loss

    return step


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=465)
    parser.add_argument("--lengths", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--vocabulary-size", type=int, default=4000)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=os.path.join("runs", "encoder_xla.json"))
    args = parser.parse_args(argv)

    import keras  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    from prectr_tf.layers.relevance_head import RelevanceHead  # noqa: PLC0415
    from prectr_tf.layers.text_encoder import RelevanceTextEncoder  # noqa: PLC0415

    rng = np.random.default_rng(0)
    report = {}
    for length in args.lengths:
        ids = rng.integers(3, args.vocabulary_size, (args.pairs, length)).astype("int32")
        ids[:, 0] = 1  # [CLS]
        cut = rng.integers(length // 2, length + 1, args.pairs)
        ids[np.arange(length)[None, :] >= cut[:, None]] = 0  # padding
        ids = tf.constant(ids)
        labels = tf.constant(rng.integers(0, 4, args.pairs))
        steps = {}
        for variant in VARIANTS:
            keras.utils.set_random_seed(0)
            # The policy applies to layers built under it; bf16 keeps float32
            # variables and the head's float32 softmax (keras' mixed precision).
            keras.mixed_precision.set_dtype_policy(
                "mixed_bfloat16" if variant == "bf16" else "float32")
            encoder = RelevanceTextEncoder(vocabulary_size=args.vocabulary_size,
                                           sequence_length=32, mode="finetune")
            head = RelevanceHead(num_levels=4)
            head(encoder(ids[:2]))
            optimizer = keras.optimizers.Adam(1e-3)
            optimizer.build(encoder.trainable_variables + head.trainable_variables)

            steps[variant] = tf.function(_train_step(encoder, head, optimizer),
                                         jit_compile=variant == "xla")
            steps[variant](ids, labels)  # trace / compile
        keras.mixed_precision.set_dtype_policy("float32")
        times = {variant: [] for variant in VARIANTS}
        for _ in range(args.repeats):
            for variant in VARIANTS:
                started = time.perf_counter()
                for _ in range(args.steps):
                    loss = steps[variant](ids, labels)
                float(loss)
                times[variant].append(1000 * (time.perf_counter() - started) / args.steps)
        report[length] = {f"{variant}_ms": times[variant] for variant in VARIANTS}

    print("\n# encoder + head forward/backward + Adam: graph vs XLA vs bfloat16")
    print(machine_line() + f"; tensorflow {tf.__version__}, "
          f"keras {keras.__version__}")
    print(f"U = {args.pairs} pairs, {args.repeats} rounds of {args.steps} steps per variant, "
          "alternating, one process")
    print("\n| L tokens | graph ms/step | XLA ms/step | bf16 ms/step | graph / XLA | graph / bf16 |"
          "\n|---|---|---|---|---|---|")
    for length, r in report.items():
        g, x, b = (np.array(r[f"{variant}_ms"]) for variant in VARIANTS)
        print(f"| {length} | {g.mean():.1f} ± {g.std():.1f} | {x.mean():.1f} ± {x.std():.1f} | "
              f"{b.mean():.1f} ± {b.std():.1f} | {g.mean() / x.mean():.2f}× | "
              f"{g.mean() / b.mean():.2f}× |")
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump({"argv": sys.argv, "report": report}, fh, indent=2)


if __name__ == "__main__":
    main()
