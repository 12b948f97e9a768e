"""The quality benchmark's own logic (no training): variants, joining runs, the summary
(`quality_report`)."""

import argparse
import json
import os
import sys

import numpy as np
import pytest

from prectr_tf.evaluation.headroom import REFERENCE_SCORERS

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "benchmarks"))
import quality  # noqa: E402
import quality_report  # noqa: E402


def test_parse_variant_reads_yaml_scalars_and_rejects_bad_fields():
    assert quality.parse_variant("v2_x=prectr_v2:debias_noise_scale=1.5,use_cross_user=false") \
        == ("v2_x", "prectr_v2", {"debias_noise_scale": 1.5, "use_cross_user": False})
    for bad in ("no_equals", "v=prectr_v2", "v=nope:debias_weight=1",
                "prectr_v1=prectr_v2:debias_weight=1", "v=prectr_v2:not_a_field=1",
                "v=prectr_v2:num_relevance_levels=1"):
        with pytest.raises(argparse.ArgumentTypeError, match="--variant"):
            quality.parse_variant(bad)


def test_a_variant_is_its_preset_with_fields_changed_and_its_own_name():
    from prectr_tf.models.config import preset

    name, base, overrides = quality.parse_variant("v2_x=prectr_v2:debias_weight=0.1")
    config = quality.model_config(name, {name: (base, overrides)})
    assert config.name == "v2_x" and config.debias_weight == 0.1
    assert config.use_cross_user == preset("prectr_v2").use_cross_user
    assert quality.model_config("prectr_v1", {name: (base, overrides)}) == preset("prectr_v1")


def _seed(seed, auc):
    """A per-seed record: every preset's AUC is `auc[name]`, GAUC 0.6."""
    def metrics(a):
        return {"auc": a, "gauc_user": 0.6, "gauc_user/cold": a, "gauc_user/high": 0.6,
                "auc/cold": a, "auc/high": 0.6, "ndcg_at_10": a}

    return {"seed": seed, "variants": {"v2_x": ["prectr_v2", {"debias_weight": 0.0}]},
            "presets": {name: {"logged": metrics(a), "full_space": metrics(a),
                               "diagnostics": {"gate_zero": 0.5}} for name, a in auc.items()},
            "references": {ref: {"auc": 0.9} for ref in REFERENCE_SCORERS},
            "seconds": {"total": 10.0}}


def _write(path, seeds, **meta):
    meta = {"quick": False, "presets": ["dnn"], "variants": {}, "simulator": {},
            "eval_fraction": 0.2, "train": {}, "versions": {}, "machine": "m", **meta}
    path.write_text(json.dumps({"meta": meta, "per_seed": seeds}))
    return str(path)


def test_derived_differences_are_per_seed_and_include_variants():
    runs = [_seed(0, {"dnn": 0.6, "prectr_v1": 0.65, "prectr_v2": 0.7, "v2_x": 0.72}),
            _seed(1, {"dnn": 0.6, "prectr_v1": 0.66, "prectr_v2": 0.64, "v2_x": 0.60})]
    d = quality_report.derived(runs)
    np.testing.assert_allclose(d["diff/prectr_v2-prectr_v1/logged/auc"], [0.05, -0.02])
    np.testing.assert_allclose(d["diff/v2_x-prectr_v2/full_space/auc"], [0.02, -0.04])
    # RelaImpr = ((AUC - 0.5) / (AUC_dnn - 0.5) - 1) * 100
    np.testing.assert_allclose(d["relaimpr_vs_dnn/logged/auc/prectr_v1"], [50.0, 60.0])
    # cold gap - high gap: (0.7 - 0.65) - (0.6 - 0.6)
    np.testing.assert_allclose(d["v2_minus_v1/full_space/auc/cold_gap_minus_high_gap"][0], 0.05)
    text = quality_report.report({}, runs)
    assert "v2_x" in text and "0.6600 ± 0.0849" in text  # the variant's mean ± sample std
    markdown = quality_report.report({}, runs, markdown=True)
    assert "| v2_x | 0.6600 ± 0.0849 |" in markdown and "|---|" in markdown
    # Epochs per stage, per seed: "run (best)", "-" where a run has none.
    runs[1]["presets"]["v2_x"]["epochs"] = {"stage2_joint": {"run": 4, "best": 2}}
    assert "| v2_x | -; - | -; 4 (2) |" in quality_report.report({}, runs, markdown=True)


def test_a_debias_variant_is_also_compared_with_v2_without_debias():
    run = _seed(0, {"prectr_v2": 0.70, "v2_no_debias": 0.75, "v2_x": 0.72, "v2_t": 0.74})
    run["variants"]["v2_t"] = ["prectr_v2", {"debias": "noise_title_embedding"}]
    d = quality_report.derived([run])
    np.testing.assert_allclose(d["diff/v2_t-v2_no_debias/full_space/ndcg_at_10"], [-0.01])
    np.testing.assert_allclose(d["diff/v2_t-prectr_v2/logged/auc"], [0.04])
    # v2_x changes the debias weight, not the variant: compared with its preset only.
    assert "diff/v2_x-v2_no_debias/logged/auc" not in d


def test_report_joins_seeds_of_runs_with_the_same_settings(tmp_path):
    auc = {"dnn": 0.6, "prectr_v1": 0.65}
    a = _write(tmp_path / "a.json", [_seed(0, auc), _seed(1, auc)])
    b = _write(tmp_path / "b.json", [_seed(2, auc)])
    meta, per_seed = quality.merged([a, b])
    assert [s["seed"] for s in per_seed] == [0, 1, 2] and meta["seeds"] == [0, 1, 2]
    assert meta["seconds_total"] == 30.0
    other = _write(tmp_path / "c.json", [_seed(3, auc)], eval_fraction=0.1)
    with pytest.raises(SystemExit, match="eval_fraction"):
        quality.merged([a, other])


def test_an_interrupted_seed_is_resumed_from_its_presets_and_never_joined(tmp_path, capsys):
    done = _seed(0, {"dnn": 0.6, "prectr_v1": 0.65})
    partial = dict(_seed(1, {"dnn": 0.61}), partial=True)
    out = _write(tmp_path / "run.json", [done, partial], encoder_init="sft", judge_accuracy=None)
    meta = json.loads(open(out).read())["meta"]
    args = argparse.Namespace(resume=True, out=out)
    kept, seconds = quality._resumed(args, meta, [0, 1])
    # Both come back: seed 0 to be skipped, seed 1 to go on after dnn.
    assert [s["seed"] for s in kept] == [0, 1] and kept[1]["partial"]
    assert "seed 1 has dnn done" in capsys.readouterr().out and seconds == 20.0
    _, joined = quality.merged([out])
    assert [s["seed"] for s in joined] == [0]
