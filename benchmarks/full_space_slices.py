"""Where a component helps: a quality run's saved models on the full
candidate space, sliced by how often the request's query was seen in
training and by user activity (issue 10's diagnostic of V2 against v1).

The cross-user aggregator reads other users' events on the request's query;
the CTR tower also has a query-id embedding, which learns whatever is fixed
per query (its population's sensitivity and tolerance) from the query's own
training impressions. If the aggregator only repeats what the embedding
learns, V2 − v1 vanishes on frequent queries and can only show on rare ones.

    cd benchmarks
    python full_space_slices.py --results ../runs/quality200k_s3.json \\
        --work-dir ../runs/q200k/seed-3 --out ../runs/slices_s3.json

Rebuilds the seed's simulation from the results' settings (the simulator is
deterministic in its seed), loads `<work-dir>/models/<preset>/model.keras`
for every preset there, scores the eval requests' full candidate space and
prints NDCG@10, AUC and GAUC-user per query-frequency third (train
impressions of the query, cut at the eval requests' terciles) overall and
for cold users, with the paired differences of `--pairs`. Then why: each
model's within-request logit regressed on the click model's relevance,
interest and popularity terms (`click_terms.score_decomposition`), the
interest-blind references, and the interest probe — users' interests
estimated from the train split with every item's latent vector known, and
with items known only by category (`evaluation.interest_probe`) — by user
activity.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import json  # noqa: E402

import numpy as np  # noqa: E402

from _common import machine_line  # noqa: E402
from quality_report import _cell, _table  # noqa: E402

FREQUENCY = ("1 rare", "2 mid", "3 frequent")
METRICS = ("ndcg_at_10", "auc", "gauc_user")
PAIRS = ("prectr_v2-prectr_v1", "v2_no_debias-prectr_v1", "prectr_v2-v2_no_cross",
         "v2_no_debias-v2_no_cross")


def query_frequency(table, train_query_ids):
    """Each candidate's query-frequency third (`FREQUENCY`) and the cuts:
    train impressions of its query, cut at the terciles over eval requests."""
    ids, counts = np.unique(np.asarray(train_query_ids), return_counts=True)
    seen = dict(zip(ids.tolist(), counts.tolist()))
    per_row = np.array([seen.get(q, 0) for q in table["query_id"].tolist()])
    first = ~table["request_id"].duplicated().to_numpy()
    cuts = np.quantile(per_row[first], [1 / 3, 2 / 3])
    third = np.searchsorted(cuts, per_row, side="right")
    return np.asarray(FREQUENCY, dtype=object)[third], cuts.tolist()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", required=True, help="a quality.py --out JSON (one seed)")
    parser.add_argument("--work-dir", required=True, help="that seed's quality.py work dir")
    parser.add_argument("--pairs", nargs="+", default=list(PAIRS), help="A-B preset pairs")
    parser.add_argument("--out", help="write the per-slice metrics as JSON")
    args = parser.parse_args(argv)

    import keras  # noqa: PLC0415

    import prectr_tf.models.prectr_model  # noqa: F401, PLC0415  (registers the model)
    from prectr_tf.data.activity import ACTIVITY_BUCKETS  # noqa: PLC0415
    from prectr_tf.data.pipeline import read_split_columns  # noqa: PLC0415
    from prectr_tf.data.simulator import SimulatorConfig, simulate  # noqa: PLC0415
    from prectr_tf.data.simulator.stats import request_frame  # noqa: PLC0415
    from prectr_tf.evaluation.click_terms import (BLIND_SCORERS, click_terms,  # noqa: PLC0415
                                                  score_decomposition)
    from prectr_tf.evaluation.full_space import (full_space_examples,  # noqa: PLC0415
                                                 score_candidates)
    from prectr_tf.evaluation.interest_probe import (  # noqa: PLC0415
        category_item_vectors, estimate_interests, probe_scores)
    from prectr_tf.evaluation.soft_metrics import full_space_metrics  # noqa: PLC0415

    with open(args.results) as fh:
        results = json.load(fh)
    (seed_record,) = results["per_seed"]
    seed = seed_record["seed"]
    data_dir = os.path.join(args.work_dir, "dataset")
    sim = simulate(SimulatorConfig(seed=seed, **results["meta"]["simulator"]))
    space = full_space_examples(sim, data_dir, "eval")
    table = space.table
    table["query_frequency"], cuts = query_frequency(
        table, read_split_columns(data_dir, "train", ("query_id",))["query_id"])
    cold = (table["activity"] == "cold").to_numpy()
    print(f"# full space by query frequency, seed {seed}\n{machine_line()}")
    print(f"query-frequency cuts (train impressions of the query): {cuts}")

    terms = click_terms(sim, table)
    train_requests = sorted(set(request_frame(sim.log).index) - set(table["request_id"]))
    probe = probe_scores(sim, table, estimate_interests(sim, train_requests))
    by_category = category_item_vectors(sim)
    category_probe = probe_scores(sim, table, estimate_interests(sim, train_requests,
                                                                 by_category), by_category)
    models_dir = os.path.join(args.work_dir, "models")
    out = {"seed": seed, "cuts": cuts, "presets": {}, "decomposition": {},
           "blind_references": {name: {"all": full_space_metrics(table, terms[name].to_numpy(),
                                                                 by="query_frequency"),
                                       "cold": full_space_metrics(table[cold],
                                                                  terms[name].to_numpy()[cold],
                                                                  by="query_frequency")}
                                for name in BLIND_SCORERS},
           "by_activity": {"[interest probe]": full_space_metrics(table, probe),
                           "[interest probe, items known by category]":
                               full_space_metrics(table, category_probe),
                           **{f"[{name}]": full_space_metrics(table, terms[name].to_numpy())
                              for name in BLIND_SCORERS}}}
    for name in (n for n in seed_record["presets"]
                 if os.path.exists(os.path.join(models_dir, n, "model.keras"))):
        model = keras.models.load_model(os.path.join(models_dir, name, "model.keras"))
        scores = score_candidates(model, space.features)
        # Its overall figures are the unsliced ones the run recorded.
        sliced = full_space_metrics(table, scores, by="query_frequency")
        recorded = seed_record["presets"][name]["full_space"]["ndcg_at_10"]
        if abs(sliced["ndcg_at_10"] - recorded) > 1e-6:
            raise SystemExit(f"{name}: NDCG@10 {sliced['ndcg_at_10']:.6f} here, {recorded:.6f} "
                             f"in {args.results}: not the run's model or simulation")
        out["presets"][name] = {"all": sliced,
                                "cold": full_space_metrics(table[cold], scores[cold],
                                                           by="query_frequency")}
        out["by_activity"][name] = full_space_metrics(table, scores)
        out["decomposition"][name] = {"all": score_decomposition(table, terms, scores)}
        for bucket in ACTIVITY_BUCKETS:
            rows = (table["activity"] == bucket).to_numpy()
            out["decomposition"][name][bucket] = score_decomposition(table[rows], terms[rows],
                                                                     scores[rows])
        keras.backend.clear_session()
        print(f"  scored {name}", flush=True)

    names = list(out["presets"])
    if not names:
        raise SystemExit(f"{models_dir}: no model.keras of a preset of {args.results}")
    for part in ("all", "cold"):
        for metric in METRICS:
            rows = [(n, [_cell([out["presets"][n][part][f"{metric}/{b}"]]) for b in FREQUENCY])
                    for n in names]
            for pair in args.pairs:
                a, b = pair.split("-")
                if a in out["presets"] and b in out["presets"]:
                    rows.append((f"{a} − {b}", [_cell([out["presets"][a][part][f"{metric}/{q}"]
                                                       - out["presets"][b][part][f"{metric}/{q}"]])
                                                for q in FREQUENCY]))
            counts = [out["presets"][names[0]][part][f"num_requests/{q}"] for q in FREQUENCY]
            print()
            print(_table(f"{metric}, {part} requests by query frequency ({counts} requests)",
                         rows, list(FREQUENCY)))
    for part in ("all", "cold"):
        rows = [(name, [_cell([refs[part][f"ndcg_at_10/{q}"]]) for q in FREQUENCY])
                for name, refs in out["blind_references"].items()]
        print()
        print(_table(f"ndcg_at_10 of the interest-blind references, {part} requests by query "
                     "frequency", rows, list(FREQUENCY)))

    for part in ("all", *ACTIVITY_BUCKETS):
        rows = [(name, [_cell([d[part][k]]) for k in ("relevance", "interest", "popularity",
                                                       "r2")])
                for name, d in out["decomposition"].items()]
        print()
        print(_table(f"within-request logit on the click terms, {part} requests (weights "
                     "relative to relevance's; the true logit: 1, 1, 1)", rows,
                     ["relevance weight", "interest / relevance", "popularity / relevance",
                      "R²"]))
    rows = [(name, [_cell([m[f"ndcg_at_10{b}"]]) for b in ("", *(f"/{a}" for a in
                                                                   ACTIVITY_BUCKETS))])
            for name, m in sorted(out["by_activity"].items(), key=lambda kv: kv[0][0] == "[")]
    print()
    print(_table("ndcg_at_10 by user activity: the models, the interest-blind references and "
                 "the interest probe", rows, ["all", *ACTIVITY_BUCKETS]))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(out, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
