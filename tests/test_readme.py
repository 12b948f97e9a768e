"""The README documents every simulator parameter with its real default, and
its two commands are what .ci/run and the Makefile do."""

import dataclasses
import pathlib
import re

from prectr_tf.data.simulator import SimulatorConfig

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _section(title):
    text = (ROOT / "README.md").read_text()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def _readme_rows(title="The search-log simulator"):
    rows = {}
    for line in _section(title).splitlines():
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


def _shape(tensor, schema):
    dims = []
    for i, d in enumerate(tensor.shape):
        dims.append("R" if i == 0 else "N" if d is None else
                    "L_u" if d == schema.history_length else "F")
    return "[" + ", ".join(dims) + "]"


def test_the_signature_table_is_the_exported_signature():
    from prectr_tf.data.schema import DataSchema
    from prectr_tf.serving.signature import OUTPUTS, request_signature

    rows = {}
    for line in _section("Serving").splitlines():
        match = re.match(r"\| `(\w+)` \| (\w+) \| `([^`]+)` \|", line)
        if match:
            rows[match.group(1)] = (match.group(2), match.group(3))
    schema = DataSchema(num_item_features=4)
    spec = request_signature(schema)
    for name, tensor in spec.items():
        assert rows.get(name) == (tensor.dtype.name, _shape(tensor, schema)), name
    assert set(rows) - set(spec) == set(OUTPUTS)


def test_two_commands_and_ci_agree():
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert "prectr demo" in makefile and "pytest" in makefile
