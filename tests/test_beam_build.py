"""The Beam log builder writes the single-machine builder's dataset, byte for
byte: shards, vocabularies, rejects and `dataset.json` (but for `runner` and
`seconds`), on a simulated log in two files with bad rows and a duplicate."""

import filecmp
import json
import os

import numpy as np
import pytest
import tensorflow as tf

beam_build = pytest.importorskip("prectr_tf.data.beam_build")

from prectr_tf.data.build import BuildConfig, build_dataset  # noqa: E402
from prectr_tf.data.schema import DataSchema  # noqa: E402
from prectr_tf.data.simulator import SimulatorConfig, simulate  # noqa: E402

SCHEMA = DataSchema(history_length=4, context_length=6, num_item_features=2)


@pytest.fixture(scope="module")
def log_files(tmp_path_factory):
    """Two time-ordered files; the second repeats an impression of the first
    and holds a row with an out-of-range relevance."""
    log = simulate(SimulatorConfig(num_users=60, num_requests=400, num_items=300,
                                   num_queries=40, num_candidates=20, page_size=5,
                                   num_item_features=2, seed=5)).log
    half = len(log) // 2
    first, second = log.iloc[:half].copy(), log.iloc[half:].copy()
    second = pytest.importorskip("pandas").concat([second, first.iloc[[-1]]])
    second.iloc[-1, second.columns.get_loc("timestamp")] = second["timestamp"].max()
    second.iloc[3, second.columns.get_loc("relevance")] = 9
    directory = tmp_path_factory.mktemp("logs")
    paths = [str(directory / "a.parquet"), str(directory / "b.parquet")]
    first.to_parquet(paths[0])
    second.to_parquet(paths[1])
    return paths


def _files(directory):
    return sorted(os.path.relpath(os.path.join(root, name), directory)
                  for root, _, names in os.walk(directory) for name in names)


def _without_run_fields(description):
    return {k: v for k, v in description.items() if k not in ("runner", "seconds")}


@pytest.mark.parametrize("num_workers,config", [
    (2, BuildConfig(num_shards=3, chunk_size=500, eval_fraction=0.2)),
    (1, BuildConfig(num_shards=2, eval_fraction=0.0)),
])
def test_beam_build_equals_the_single_machine_build(log_files, tmp_path, num_workers, config):
    local = build_dataset(log_files, tmp_path / "local", SCHEMA, config, progress=False)
    beam = beam_build.build_dataset_beam(log_files, tmp_path / "beam", SCHEMA, config,
                                         num_workers=num_workers)
    assert _without_run_fields(beam) == _without_run_fields(local)
    assert beam["runner"] == "DirectRunner" and local["runner"] is None
    # The fixture's bad rows were seen: one duplicate, one out-of-range level.
    assert beam["num_rejected"] == 2
    assert sum(info["num_examples"] for info in beam["splits"].values()) == \
        beam["num_impressions"]
    assert _files(tmp_path / "beam") == _files(tmp_path / "local")
    for name in _files(tmp_path / "local"):
        if name != "dataset.json":
            assert filecmp.cmp(tmp_path / "local" / name, tmp_path / "beam" / name,
                               shallow=False), name
    records = [r for f in beam["splits"]["train"]["files"]
               for r in tf.data.TFRecordDataset(str(tmp_path / "beam" / f))]
    assert len(records) == beam["splits"]["train"]["num_examples"] > 0
    with open(tmp_path / "beam" / "dataset.json") as fh:
        assert json.load(fh) == beam


def test_shards_split_like_numpy_array_split():
    """A rank lands in the shard `np.array_split` gives it, for every size."""
    config = BuildConfig(num_shards=4, chunk_size=3)
    for total in range(1, 30):
        expected = np.concatenate([np.full(len(part), shard) for shard, part in
                                   enumerate(np.array_split(np.arange(total),
                                                            min(4, -(-total // 3))))])
        layout = beam_build._shard_layout([(0, "train", total)])
        got = [beam_build._assemble(_joined(0, 0, rank=[("train", rank)], user=[{}],
                                            query=[{}]), layout, config)[0][1]
               for rank in range(total)]
        assert got == list(expected), total


def test_a_row_that_lost_a_part_at_the_join_stops_the_build():
    layout = beam_build._shard_layout([(1, "train", 10)])
    with pytest.raises(RuntimeError, match=r"row 7 of log file 1: .*\('query', 0\)"):
        beam_build._assemble(_joined(1, 7, rank=[("train", 7)], user=[{}], query=[]),
                             layout, BuildConfig())


def test_a_row_lost_whole_at_the_join_stops_the_build(tmp_path):
    """A row none of whose parts reached the join never meets the guard
    above; the count of examples against valid rows catches it, before
    anything is written."""
    import pickle  # noqa: PLC0415

    parts = tmp_path / "parts"
    parts.mkdir()
    # 10 valid rows, 9 assembled (8 train, 1 eval): one lost whole.
    for name, value in (("num_impressions", 10), ("splits", [
            ("train", [8, 2, 8, 8, 0, 7]), ("eval", [1, 0, 1, 1, 9, 9])])):
        (parts / f"{name}.pkl").write_bytes(pickle.dumps(value))
    with pytest.raises(RuntimeError, match="assembled 9 examples from 10 valid rows"):
        beam_build._describe(str(parts), str(tmp_path), DataSchema(), BuildConfig(),
                             "DirectRunner", 1.0)
    assert not (tmp_path / "rejects.csv").exists()


def _joined(index, row, **parts):
    """What the join hands `_assemble` for one row: each part as encoded."""
    return (index, row), [beam_build._part((index, row), name, part)[1]
                          for name, values in parts.items() for part in values]


def test_shard_layout_offsets_each_file_by_the_earlier_files_of_its_split():
    offsets, totals = beam_build._shard_layout(
        [(1, "train", 5), (0, "eval", 2), (0, "train", 3), (2, "train", 4), (1, "eval", 1)])
    assert offsets == {(0, "train"): 0, (1, "train"): 3, (2, "train"): 8,
                       (0, "eval"): 0, (1, "eval"): 2}
    assert totals == {"train": 12, "eval": 3}


def test_refuses_what_it_cannot_build(log_files, tmp_path):
    import dataclasses  # noqa: PLC0415
    with pytest.raises(ValueError, match="unexposed negatives"):
        beam_build.build_dataset_beam(log_files, tmp_path / "x",
                                      dataclasses.replace(SCHEMA, unexposed_negatives=True))
    with pytest.raises(ValueError, match="runner must be one of"):
        beam_build.build_dataset_beam(log_files, tmp_path / "x", SCHEMA, runner="Local")
    (tmp_path / "exists").mkdir()
    with pytest.raises(FileExistsError):
        beam_build.build_dataset_beam(log_files, tmp_path / "exists", SCHEMA)


def test_cli_runner_builds_what_the_cli_builds_without_it(log_files, tmp_path, capsys):
    from prectr_tf import cli  # noqa: PLC0415
    cli.main(["build", *log_files, "--out", str(tmp_path / "local"), "--quiet"])
    cli.main(["build", *log_files, "--out", str(tmp_path / "beam"), "--quiet",
              "--runner", "DirectRunner", "--num-workers", "1"])
    assert "with Beam's DirectRunner" in capsys.readouterr().out
    for name in _files(tmp_path / "local"):
        if name != "dataset.json":
            assert filecmp.cmp(tmp_path / "local" / name, tmp_path / "beam" / name,
                               shallow=False), name
