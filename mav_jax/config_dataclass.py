"""Build a frozen model-config dataclass from a ConfigDict or dict, refusing unknown keys."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def from_mapping(cls: type[T], values: Mapping[str, Any], *, what: str) -> T:
    """`cls(**values)` with list fields made tuples; unknown keys are an error (usually typos)."""
    values = dict(values)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"Unknown {what} config keys {unknown}; valid keys: {sorted(fields)}.")
    for key, value in values.items():
        if isinstance(value, list):
            values[key] = tuple(value)
    return cls(**values)
