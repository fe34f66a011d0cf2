"""Typed configuration: frozen dataclasses as the schema, YAML as experiments.

`from_dict` builds a dataclass from plain data and rejects unknown keys and
wrong types with a message that names the field and lists what is valid.
`merge` applies nested overrides; `parse_overrides` turns CLI strings like
`ppo.num_envs=64` into the nested dict `merge` expects.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from mjxbot.errors import ConfigError

T = TypeVar("T")


def check_range(
    where: str, value: tuple[float, float], lower: float | None = None, upper: float | None = None
) -> None:
    """Raises `ConfigError` unless `value` is `(min, max)` with `lower <= min <= max <= upper`."""
    lo, hi = value
    if lo > hi:
        raise ConfigError(f"{where}: min {lo} is greater than max {hi}")
    if lower is not None and lo < lower:
        raise ConfigError(f"{where}: min {lo} is below the allowed minimum {lower}")
    if upper is not None and hi > upper:
        raise ConfigError(f"{where}: max {hi} is above the allowed maximum {upper}")


def check_value(where: str, value: float, lower: float, upper: float | None = None) -> None:
    if value < lower or (upper is not None and value > upper):
        bound = f"[{lower}, {upper}]" if upper is not None else f">= {lower}"
        raise ConfigError(f"{where}: {value} must be {bound}")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Checks `value` against the annotation `tp`, converting YAML lists to tuples."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return from_dict(tp, value, where)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(str, args))}")
        return value
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, option, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0])
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{where}: expected {len(args)} items, got {len(value)}")
        return tuple(
            _coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True))
        )
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        key_tp, val_tp = args
        return {
            _coerce(k, key_tp, where): _coerce(v, val_tp, f"{where}.{k}") for k, v in value.items()
        }
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if not math.isfinite(value):  # NaN would slip through every range check
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp in (bool, str):
        if not isinstance(value, tp):
            raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
        return value
    raise TypeError(f"unsupported config annotation {tp!r} at {where}")


def from_dict(cls: type[T], data: dict[str, Any], where: str = "") -> T:
    """Builds dataclass `cls` from `data`, validating keys and types.

    Args:
      cls: a (frozen) dataclass type whose fields carry type annotations.
      data: plain data, e.g. from `yaml.safe_load`; missing keys keep defaults.
      where: dotted prefix used in error messages.

    Returns:
      An instance of `cls`.

    Raises:
      ConfigError: on an unknown key (the message lists the valid keys) or a
        value of the wrong type.
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - fields, key=str)  # YAML keys may be numbers
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(
            f"unknown key {prefix}{unknown[0]!s}; valid keys{' of ' + where if where else ''}: "
            f"{', '.join(sorted(fields))}"
        )
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(value, hints[name], f"{where}.{name}" if where else name)
    return cls(**kwargs)  # each config validates itself in `__post_init__`


def to_dict(config: Any) -> dict[str, Any]:
    """Plain-data view of a config dataclass (tuples become lists for YAML)."""

    def plain(x: Any) -> Any:
        if dataclasses.is_dataclass(x):
            return {f.name: plain(getattr(x, f.name)) for f in dataclasses.fields(x)}
        if isinstance(x, dict):
            return {k: plain(v) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [plain(v) for v in x]
        return x

    return plain(config)


def _deep_update(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key in out:
            out[key] = _deep_update(out[key], value)
        else:
            out[key] = value
    return out


def merge(config: T, overrides: dict[str, Any]) -> T:
    """Returns `config` with nested `overrides` applied and re-validated.

    Mappings inside the config (like reward scales) are updated key by key, so
    an override of one term keeps the others.
    """
    return from_dict(type(config), _deep_update(to_dict(config), overrides))


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Parses `["a.b=1", "c=[x, y]"]` into `{"a": {"b": 1}, "c": ["x", "y"]}`.

    Values are parsed as YAML scalars or flow collections.
    """
    result: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} is not of the form key=value")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as e:
            raise ConfigError(f"override {item!r}: value is not valid YAML ({e.problem})") from e
        node = result
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r} conflicts with an earlier one")
        node[leaf] = value
    return result


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Reads a YAML mapping with `safe_load`; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({getattr(e, 'problem', e)})") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a text file") from e
    if data is None:
        raise ConfigError(f"{path}: the file is empty")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data
