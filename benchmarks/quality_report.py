"""The quality benchmark's tables: every preset's numbers per seed as mean ±
std, the derived RelaImpr and V2 − v1 gaps, and the paired per-seed
differences (`benchmarks/quality.py --report`; `trec_session.py` and
`full_space_slices.py` print with the same cells and tables)."""

import functools

import numpy as np

PRESETS = ("dnn", "prectr_v1", "prectr_v2", "v2_no_cross", "v2_no_debias", "v2_frozen_encoder")
LOGGED_COLUMNS = ("auc", "gauc_user", "gauc_query", "ndcg_at_10", "mrr", "gauc_user/cold",
                  "gauc_user/low", "gauc_user/high")
FULL_COLUMNS = ("auc", "gauc_user", "gauc_query", "ndcg_at_10", "ndcg_at_10_relevance",
                "auc_unshown", "auc/cold", "auc/high", "gauc_user/cold", "gauc_user/high",
                "ndcg_at_10/cold", "ndcg_at_10/high")
DIAGNOSTIC_COLUMNS = ("relevance_accuracy", "level0_recall", "ndcg_at_10_expected_level",
                      "gate_positive", "gate_negative", "gate_zero", "tau_std",
                      "tau_std_within_request")
DIAGNOSTIC_SHORT = {"relevance_accuracy": "rel acc", "level0_recall": "level0 recall",
                    "ndcg_at_10_expected_level": "ndcg@10 E[level]", "gate_positive": "gate +",
                    "gate_negative": "gate -", "gate_zero": "gate 0",
                    "tau_std_within_request": "tau std/request"}


def _values(per_seed, preset_name, part, metric):
    return np.array([s["presets"][preset_name].get(part, {}).get(metric, np.nan)
                     for s in per_seed if preset_name in s["presets"]], float)


def _mean_std(values):
    values = np.asarray(values, float)
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return float("nan"), float("nan"), 0
    std = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
    return float(values.mean()), std, len(values)


def _cell(values, scale=1.0, digits=4):
    mean, std, n = _mean_std(np.asarray(values, float) * scale)
    if n == 0:
        return "-"
    if np.isnan(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _table(title, rows, columns, markdown=False):
    """rows: [(name, [cell, ...])]; aligned text, or a Markdown table."""
    if markdown:
        return "\n".join([f"**{title}**", "", "| preset | " + " | ".join(columns) + " |",
                          "|---" * (len(columns) + 1) + "|"]
                         + [f"| {name} | " + " | ".join(cells) + " |" for name, cells in rows])
    widths = [max(len(c), *(len(r[1][i]) for r in rows)) for i, c in enumerate(columns)]
    name_width = max(len("preset"), *(len(r[0]) for r in rows))
    lines = [title, f"{'preset':<{name_width}}  " + "  ".join(
        f"{c:>{w}}" for c, w in zip(columns, widths))]
    lines.append("-" * len(lines[-1]))
    for name, cells in rows:
        lines.append(f"{name:<{name_width}}  " + "  ".join(
            f"{c:>{w}}" for c, w in zip(cells, widths)))
    return "\n".join(lines)


def rela_impr(auc_value, base_auc):
    return ((auc_value - 0.5) / (base_auc - 0.5) - 1.0) * 100.0


def derived(per_seed):
    """Per-seed derived numbers: RelaImpr vs dnn, V2 − v1 gaps, paired diffs."""
    out = {}

    def per(fn):
        values = []
        for s in per_seed:
            try:
                values.append(fn(s))
            except KeyError:
                pass
        return values

    def m(s, name, part, metric):
        return s["presets"][name][part][metric]

    names = _names(per_seed)
    for name in names:
        if name == "dnn":
            continue
        for part, metric in (("logged", "auc"), ("logged", "gauc_user"), ("full_space", "auc"),
                             ("full_space", "gauc_user")):
            out[f"relaimpr_vs_dnn/{part}/{metric}/{name}"] = per(
                lambda s, n=name, p=part, q=metric: rela_impr(m(s, n, p, q),
                                                              m(s, "dnn", p, q)))
    for part, metric in (("logged", "gauc_user"), ("full_space", "gauc_user"),
                         ("full_space", "auc")):
        for bucket in ("cold", "low", "high"):
            out[f"v2_minus_v1/{part}/{metric}/{bucket}"] = per(
                lambda s, p=part, q=metric, b=bucket: m(s, "prectr_v2", p, f"{q}/{b}")
                - m(s, "prectr_v1", p, f"{q}/{b}"))
        out[f"v2_minus_v1/{part}/{metric}/cold_gap_minus_high_gap"] = per(
            lambda s, p=part, q=metric: (m(s, "prectr_v2", p, f"{q}/cold")
                                         - m(s, "prectr_v1", p, f"{q}/cold"))
            - (m(s, "prectr_v2", p, f"{q}/high") - m(s, "prectr_v1", p, f"{q}/high")))
    pairs = (("prectr_v2", "prectr_v1"), ("prectr_v1", "dnn"), ("prectr_v2", "dnn"),
             ("prectr_v2", "v2_no_debias"), ("prectr_v2", "v2_no_cross"),
             ("prectr_v2", "v2_frozen_encoder"),
             # V2's architecture without its debias term against v1: which
             # part of V2 − v1 the correction accounts for.
             ("v2_no_debias", "prectr_v1"))
    # A variant is compared with the preset it changes (recorded per seed).
    variants = per_seed[0].get("variants", {}) if per_seed else {}
    pairs += tuple((name, base) for name, (base, _) in variants.items())
    # A debias variant of V2 is also compared with V2 without debias: the
    # issue's question is whether a correction helps at all, not only
    # whether it beats the paper's `noise_r`.
    pairs += tuple((name, "v2_no_debias") for name, (base, changes) in variants.items()
                   if base == "prectr_v2" and "debias" in changes)
    for a, b in pairs:
        for part, metric in (("logged", "auc"), ("logged", "gauc_user"), ("logged", "ndcg_at_10"),
                             ("full_space", "auc"), ("full_space", "gauc_user"),
                             ("full_space", "ndcg_at_10")):
            out[f"diff/{a}-{b}/{part}/{metric}"] = per(
                lambda s, a=a, b=b, p=part, q=metric: m(s, a, p, q) - m(s, b, p, q))
    return out


def _epochs(record):
    """`run (best)` of one stage, `-` where the preset has no such stage."""
    return f"{record['run']} ({record['best']})" if record else "-"


def _names(per_seed):
    """Presets in table order, then variants in the order they were given."""
    seen = [n for s in per_seed for n in s["presets"]]
    return ([p for p in PRESETS if p in seen]
            + [n for n in dict.fromkeys(seen) if n not in PRESETS])


def report(meta, per_seed, markdown=False):
    presets = _names(per_seed)
    table = functools.partial(_table, markdown=markdown)
    lines = []
    short = {"gauc_user/cold": "gauc_u/cold", "gauc_user/low": "gauc_u/low",
             "gauc_user/high": "gauc_u/high", "ndcg_at_10_relevance": "ndcg@10 (level)",
             "ndcg_at_10": "ndcg@10", "ndcg_at_10/cold": "ndcg@10/cold",
             "ndcg_at_10/high": "ndcg@10/high"}
    cols = [short.get(c, c) for c in LOGGED_COLUMNS]
    rows = [(p, [_cell(_values(per_seed, p, "logged", c)) for c in LOGGED_COLUMNS])
            for p in presets]
    lines.append(table("(a) logged eval split (clicks as labels; NDCG@10/MRR per request "
                        "over the shown page)", rows, cols))
    cols = [short.get(c, c) for c in FULL_COLUMNS]
    rows = [(p, [_cell(_values(per_seed, p, "full_space", c)) for c in FULL_COLUMNS])
            for p in presets]
    # The scorers the runs have (results of older versions have fewer).
    for ref in dict.fromkeys(r for s in per_seed for r in s["references"]):
        rows.append((f"[{ref}]", [_cell([s["references"].get(ref, {}).get(c, np.nan)
                                         for s in per_seed]) for c in FULL_COLUMNS]))
    lines.append("")
    lines.append(table("(b) full candidate space of the eval requests (true click "
                        "probabilities; ndcg@10 gain = p, ndcg@10 (level) gain = 2^level-1)",
                        rows, cols))
    cols = list(DIAGNOSTIC_COLUMNS)
    rows = [(p, [_cell(_values(per_seed, p, "diagnostics", c), digits=3) for c in cols])
            for p in presets if p != "dnn"]
    lines.append("")
    lines.append(table("(c) components on the full space: relevance head (accuracy, level-0 "
                        "recall, ndcg@10 by expected level) and incentive (mean gate, tau std)",
                        rows, [DIAGNOSTIC_SHORT.get(c, c) for c in cols]))
    stage0 = [s["stage0"] for s in per_seed if "stage0" in s]
    if stage0:
        cols = ("relevance_accuracy", "level0_recall", "relevance_macro_f1",
                "ndcg_at_10_expected_level", "best_epoch", "epochs_run")
        lines.append("")
        lines.append(table(f"(d) the shared stage-0 student ({meta.get('encoder_init', 'sft')}) "
                           "on the full space, before any CTR training",
                           [("stage 0", [_cell([x[c] for x in stage0], digits=3) for c in cols])],
                           [DIAGNOSTIC_SHORT.get(c, c) for c in cols]))
    stages = ("stage1_rsl", "stage2_joint")
    rows = [(p, ["; ".join(_epochs(s["presets"].get(p, {}).get("epochs", {}).get(stage))
                           for s in per_seed) for stage in stages]) for p in presets]
    lines.append("")
    lines.append(table("Epochs each stage ran (best), per seed in order", rows, list(stages)))
    d = derived(per_seed)
    lines.append("")
    rows = []
    for p in presets:
        if p == "dnn":
            continue
        rows.append((p, [_cell(d[f"relaimpr_vs_dnn/{part}/{metric}/{p}"], digits=2)
                         for part, metric in (("logged", "auc"), ("logged", "gauc_user"),
                                              ("full_space", "auc"),
                                              ("full_space", "gauc_user"))]))
    lines.append(table("RelaImpr vs dnn, % (per seed, then mean ± std)", rows,
                        ["logged auc", "logged gauc_u", "full auc", "full gauc_u"]))
    lines.append("")
    rows = [(f"{part} {metric}", [_cell(d[f"v2_minus_v1/{part}/{metric}/{b}"]) for b in
                                  ("cold", "low", "high", "cold_gap_minus_high_gap")])
            for part, metric in (("logged", "gauc_user"), ("full_space", "gauc_user"),
                                 ("full_space", "auc"))]
    lines.append(table("PRECTR-V2 − v1 per activity slice (GAUC by user; AUC across requests)",
                        rows,
                        ["cold", "low", "high", "cold gap − high gap"]))
    lines.append("")
    rows = []
    for key, values in d.items():
        if not key.startswith("diff/"):
            continue
        _, pair, part, metric = key.split("/")
        wins = sum(v > 0 for v in values)
        rows.append((f"{pair} {part} {metric}", [_cell(values), f"{wins}/{len(values)}"]))
    lines.append(table("Paired differences per seed (mean ± std; seeds where > 0)", rows,
                        ["difference", "> 0"]))
    return "\n".join(lines)
