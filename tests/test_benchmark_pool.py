"""`benchmarks/_common.run_pool` and `quality.py --jobs`: seeds in processes
of their own, a few at a time, joined as `--report` joins them."""

import json
import os
import pathlib
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "benchmarks"))
import _common  # noqa: E402
import quality  # noqa: E402
from test_quality_benchmark import _seed, _write  # noqa: E402


def _sleeper(stamp, seconds, code=0):
    """A command that writes its start and end times to `stamp` and exits `code`."""
    return [sys.executable, "-c",
            "import sys, time; a = time.time(); print('hello'); time.sleep(%r); "
            "open(%r, 'w').write('%%r %%r' %% (a, time.time())); sys.exit(%d)"
            % (seconds, str(stamp), code)]


def test_the_pool_runs_at_most_jobs_at_once_in_order_and_returns_each_exit_code(tmp_path):
    stamps = [tmp_path / f"{i}.stamp" for i in range(5)]
    logs = [str(tmp_path / f"{i}.log") for i in range(5)]
    ended = []
    codes = _common.run_pool([_sleeper(s, 0.6, code=3 if i == 2 else 0)
                              for i, s in enumerate(stamps)], 2, logs,
                             on_exit=lambda i, code, _: ended.append((i, code)))
    assert codes == [0, 0, 3, 0, 0]
    assert sorted(ended) == [(0, 0), (1, 0), (2, 3), (3, 0), (4, 0)]
    spans = [tuple(map(float, s.read_text().split())) for s in stamps]
    # At no command's start are more than 2 running (itself included)...
    for start, _ in spans:
        assert sum(a <= start < b for a, b in spans) <= 2
    # ...but two did run together, and the k-th started only once k - 1 had
    # ended (k >= 2): they were started in the order given, one as one ended.
    assert any(a < spans[0][1] for a, _ in spans[1:])
    for k in range(2, 5):
        assert sum(b <= spans[k][0] for _, b in spans[:k]) >= k - 1
    assert all(open(log).read().strip() == "hello" for log in logs)


def test_without_options_drops_each_form_and_its_value():
    argv = ["--seeds", "5", "--jobs=2", "--resume", "--out", "a.json", "--work-dir", "w",
            "--variant", "x=prectr_v2:debias=none", "--outlier"]
    assert _common.without_options(argv, ("--seeds", "--jobs", "--out")) == [
        "--resume", "--work-dir", "w", "--variant", "x=prectr_v2:debias=none", "--outlier"]


def test_jobs_run_each_seed_alone_with_one_thread_and_join_their_files(tmp_path, monkeypatch,
                                                                       capsys):
    """The commands the pool gets, and the joined --out. The pool itself is
    tested above; here it writes what each seed's process would."""
    seen = {}

    def pool(commands, jobs, logs, on_exit):
        seen.update(commands=commands, jobs=jobs, logs=logs)
        for index, command in enumerate(commands):
            seed = int(command[command.index("--first-seed") + 1])
            out = command[command.index("--out") + 1]
            _write(pathlib.Path(out),
                   [_seed(seed, {"dnn": 0.6, "prectr_v1": 0.6 + seed / 100})])
            on_exit(index, 0, 1.0)
        return [0] * len(commands)

    monkeypatch.setattr(quality, "run_pool", pool)
    out = str(tmp_path / "q.json")
    assert quality.main(["--seeds", "3", "--first-seed", "4", "--jobs", "2", "--threads", "4",
                         "--requests", "900", "--out", out, "--resume"]) == 0
    assert seen["jobs"] == 2 and seen["logs"] == [str(tmp_path / f"q_s{s}.log")
                                                  for s in (4, 5, 6)]
    for seed, command in zip((4, 5, 6), seen["commands"]):
        assert command[1].endswith("quality.py")
        assert command[2:] == ["--requests", "900", "--resume", "--first-seed", str(seed),
                               "--seeds", "1", "--threads", "1",
                               "--out", str(tmp_path / f"q_s{seed}.json")]
    joined = json.loads(open(out).read())
    assert [s["seed"] for s in joined["per_seed"]] == [4, 5, 6]
    assert joined["meta"]["jobs"] == 2 and joined["meta"]["seconds_wall"] >= 0
    assert "seed 6 done" in capsys.readouterr().out


def test_jobs_stop_on_a_failed_seed_and_say_how_to_go_on(tmp_path, monkeypatch):
    monkeypatch.setattr(quality, "run_pool", lambda commands, *_: [0, 1])
    with pytest.raises(SystemExit, match=r"seeds \[1\] failed.*--resume"):
        quality.main(["--seeds", "2", "--jobs", "2", "--out", str(tmp_path / "q.json")])
