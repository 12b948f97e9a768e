"""The README documents every simulator parameter with its real default, and
its two commands are what .ci/run and the Makefile do."""

import dataclasses
import pathlib
import re

from prectr_tf.data.simulator import SimulatorConfig

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _readme_rows():
    rows = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        match = re.match(r"\| `(\w+)` \| ([^|]+) \|", line)
        if match:
            rows[match.group(1)] = match.group(2).strip()
    return rows


def _as_readme(value):
    if value is None:
        return {"null", "—"}
    if isinstance(value, bool):
        return {str(value).lower()}
    return {str(value)}


def test_every_simulator_parameter_is_documented_with_its_default():
    rows = _readme_rows()
    for field in dataclasses.fields(SimulatorConfig):
        assert field.name in rows, f"README lacks simulator parameter {field.name}"
        assert rows[field.name] in _as_readme(field.default), (
            f"README default of {field.name} is {rows[field.name]}, code has {field.default}")


def test_two_commands_and_ci_agree():
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert "prectr demo" in makefile and "pytest" in makefile
