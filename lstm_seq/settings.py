"""Value rules of the settings dataclasses, and the one way to build a dataclass from a plain dict.

Each settings dataclass of the library (``FeatureConfig``, ``ModelConfig``, ``AugmentConfig``, …) is the one
definition of its settings: the default and the rule of every field are written on the field::

    @dataclass(frozen=True)
    class ModelConfig:
        hidden_size: int = positive(128)     # a number > 0
        dropout: float = prob(0.1)           # in [0, 1]
        subsample: int = one_of(4, 1, 2, 4)  # one of the choices

        def __post_init__(self) -> None:
            check(self)

The rules live in the fields' ``metadata`` (keys ``low``, ``low_open``, ``high``, ``choices``), so the pipelines'
config check (``pipelines/_config.py``) reads the very same rules off the Hydra schema, which is built from these
dataclasses. :func:`from_dict` turns a plain dict (a config node, a checkpoint's hyper-parameters) into such a
dataclass; an unknown key is named in the error. Nothing here imports Hydra or OmegaConf.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")

# ------------------------------------------------------------------------------------------------ field kinds


def _field(default: Any, meta: dict[str, Any]) -> Any:
    if isinstance(default, list | dict | set):
        raise TypeError("a mutable default: use a tuple")
    if default is dataclasses.MISSING:  # a required setting (the dataclass is kw_only)
        return dataclasses.field(metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def positive(default: Any = dataclasses.MISSING) -> Any:
    """A number > 0 (``None`` allowed where the type is optional)."""
    return _field(default, {"low": 0, "low_open": True})


def at_least(low: float, default: Any = dataclasses.MISSING) -> Any:
    """A number ≥ ``low``."""
    return _field(default, {"low": low})


def in_range(low: float, high: float, default: Any = dataclasses.MISSING) -> Any:
    """A number in [``low``, ``high``]."""
    return _field(default, {"low": low, "high": high})


def prob(default: Any = dataclasses.MISSING) -> Any:
    """A probability or fraction in [0, 1]."""
    return in_range(0, 1, default)


def one_of(default: Any, *choices: Any) -> Any:
    """One of ``choices`` (``None`` is allowed only when it is one of them or the default)."""
    return _field(default, {"choices": choices})


def like(cls: type, name: str) -> Any:
    """A new field with the default and the rule of field ``name`` of dataclass ``cls`` (a setting that two
    dataclasses share, defined once)."""
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    if f.default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=f.default_factory, metadata=dict(f.metadata))
    return _field(f.default, dict(f.metadata))


# ----------------------------------------------------------------------------------------------------- checks


def value_problem(key: str, value: Any, meta: Mapping[str, Any]) -> str | None:
    """What is wrong with ``value`` under the rule ``meta`` (one line naming ``key``), or None."""
    if value is None:
        return None
    if "choices" in meta and value not in meta["choices"]:
        return f"{key}={value!r} is not one of: {', '.join(str(c) for c in meta['choices'])}"
    if "low" in meta and isinstance(value, int | float) and not isinstance(value, bool):
        low, high = meta["low"], meta.get("high")
        if not math.isfinite(value):
            return f"{key}={value} must be a finite number"
        if meta.get("low_open") and not value > low:
            return f"{key}={value} must be > {low}"
        if value < low or (high is not None and value > high):
            return (
                f"{key}={value} must be in [{low}, {high}]"
                if high is not None
                else f"{key}={value} must be ≥ {low}"
            )
    return None


def problems(obj: Any, prefix: str = "") -> list[str]:
    """Every rule ``obj`` (a settings dataclass instance) breaks, one line each, nested dataclasses included."""
    found: list[str] = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            found += problems(value, f"{prefix}{f.name}.")
            continue
        problem = value_problem(prefix + f.name, value, f.metadata)
        if problem:
            found.append(problem)
    return found


def check(obj: Any, prefix: str = "") -> None:
    """Raise :class:`ValueError` naming the first rule ``obj`` breaks (call it from ``__post_init__``)."""
    found = problems(obj, prefix)
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise ValueError(found[0] + more)


# ------------------------------------------------------------------------------------------------- conversion


def _dataclass_in(tp: Any) -> type | None:
    """The dataclass of an annotation such as ``SpecAugmentConfig | None``, else None."""
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return tp
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        found = [a for a in typing.get_args(tp) if isinstance(a, type) and dataclasses.is_dataclass(a)]
        return found[0] if len(found) == 1 else None
    return None


def _is_tuple(tp: Any) -> bool:
    args = typing.get_args(tp) if isinstance(tp, types.UnionType) else (tp,)
    return any(a is tuple or typing.get_origin(a) is tuple for a in args)


def from_dict(cls: type[T], values: Mapping[str, Any] | T | None, where: str = "") -> T:
    """``cls(**values)``, checked: a key that is not a field of ``cls`` raises :class:`ValueError` naming it
    (``where`` is the key path in messages, e.g. ``"features"``); nested dataclass fields are built from
    their dicts too and lists become tuples where the field is a tuple. An instance of ``cls`` is returned as
    it is, ``None`` gives the defaults."""
    if isinstance(values, cls):
        return values
    values = dict(values or {})
    names = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(names))
    if unknown:
        prefix = f"{where}." if where else ""
        raise ValueError(
            f"unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(prefix + k for k in unknown)} "
            f"(the fields of {cls.__name__}: {', '.join(names)})"
        )
    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        tp = hints.get(key)
        sub = _dataclass_in(tp)
        if sub is not None and isinstance(value, Mapping):
            values[key] = from_dict(sub, value, f"{where}.{key}" if where else key)
        elif isinstance(value, list) and _is_tuple(tp):
            values[key] = tuple(value)
    return cls(**values)


def field_names(cls: type) -> tuple[str, ...]:
    """The field names of dataclass ``cls``, in order."""
    return tuple(f.name for f in dataclasses.fields(cls))
