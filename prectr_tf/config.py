"""YAML/JSON run configs, validated against the config dataclasses.

A config file has one section per dataclass (see `SECTIONS`); every key must
be a field of that dataclass (unknown keys are errors, so a typo never runs
silently with a default), and every value must have the field's type. Errors
name the file and the dotted key, and list the valid keys.
"""

import dataclasses
import json
import os
import types
import typing

import yaml


class ConfigError(ValueError):
    """A config that does not match its dataclasses."""


def dataclass_from_dict(cls, data, where):
    """Build dataclass `cls` from a mapping, checking keys and types.

    Nested dataclass fields take nested mappings. `where` names the place for
    error messages (e.g. `"demo.yaml: build"`).

    Example:
    >>> from prectr_tf.data.schema import DataSchema
    >>> dataclass_from_dict(DataSchema, {"history_length": 5}, "cfg").history_length
    5
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of {cls.__name__} fields, "
                          f"got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in data.items():
        values[name] = _coerce(hints[name], value, f"{where}.{name}")
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where}: {err}") from err


def _coerce(hint, value, where):
    if dataclasses.is_dataclass(hint):
        return dataclass_from_dict(hint, value, where)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        hint = next(a for a in options if a is not type(None))
        origin = typing.get_origin(hint)
    if origin in (tuple, list) or hint in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item,) = typing.get_args(hint)[:1] or (typing.Any,)
        return tuple(_coerce(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool) and (type(value) is not hint):
        raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value


def load_mapping(path):
    """Read a YAML or JSON file into a dict, with a clear error."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh) if path.endswith(".json") else yaml.safe_load(fh)
    except FileNotFoundError as err:
        raise ConfigError(f"{path}: config file not found") from err
    except (yaml.YAMLError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path}: not valid YAML/JSON: {err}") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    return data


def load_config(path, sections):
    """Load a config file with the given `{section: dataclass}` sections.

    Returns:
        `{section: instance}`; a missing section gets the dataclass defaults.
    """
    data = load_mapping(path) if path is not None else {}
    where = os.fspath(path) if path is not None else "<defaults>"
    unknown = sorted(set(data) - set(sections))
    if unknown:
        raise ConfigError(f"{where}: unknown section(s) {unknown}; valid sections: "
                          f"{sorted(sections)}")
    return {name: dataclass_from_dict(cls, data.get(name), f"{where}: {name}")
            for name, cls in sections.items()}


def config_to_dict(instances):
    """The inverse of `load_config`, for writing what a run used."""
    return {name: dataclasses.asdict(obj) for name, obj in instances.items()}
