"""Registries as data: a frozen info record per entry and ``list_*`` helpers.

Every registry in the project (losses, datasets, models, confidence scores) is a ``Registry`` of frozen
records. A record declares its hyperparameters with ``HParam`` so that search spaces, validation and
documentation are all derived from one place.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar


@dataclass(frozen=True)
class HParam:
    """One declared hyperparameter: its paper default, the allowed range and how to search it.

    ``low``/``high`` bound the allowed values (inclusive) and the default search range; ``log`` asks for
    log-uniform sampling; ``grid`` lists the values the paper used (a study may search only these);
    ``choices`` makes the parameter categorical. ``search`` is False for settings that are fixed by default
    (they can still be set in a study file).
    """

    name: str
    default: Any
    low: float | None = None
    high: float | None = None
    log: bool = False
    grid: tuple[Any, ...] = ()
    choices: tuple[Any, ...] = ()
    kind: str = "float"  # "float" | "int" | "categorical" | "bool"
    search: bool = True
    help: str = ""
    # (other parameter, its values): this one only matters when the other has one of those values
    when: tuple[str, tuple[Any, ...]] | None = None

    def allowed(self) -> str:
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind == "bool":
            return "true or false"
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        return f"a {self.kind} in [{lo}, {hi}]"

    def check(self, value: Any, owner: str) -> Any:
        """Return ``value`` coerced to this parameter's kind or raise ``ValueError`` naming the field."""
        field_name = f"{owner}.{self.name}"
        if self.choices:
            if value not in self.choices:
                raise ValueError(f"{field_name}={value!r} is not allowed; allowed: {self.allowed()}")
            return value
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"{field_name}={value!r} is not allowed; allowed: {self.allowed()}")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{field_name}={value!r} is not a number; allowed: {self.allowed()}")
        if self.kind == "int":
            if float(value) != int(value):
                raise ValueError(f"{field_name}={value!r} is not an integer; allowed: {self.allowed()}")
            value = int(value)
        else:
            value = float(value)
        if math.isnan(value) or (self.low is not None and value < self.low) or (
            self.high is not None and value > self.high
        ):
            raise ValueError(f"{field_name}={value!r} is out of range; allowed: {self.allowed()}")
        return value


R = TypeVar("R")


@dataclass
class Registry(Generic[R]):
    """Name → frozen record. ``kind`` is used in error messages ("unknown loss 'x'; known: …")."""

    kind: str
    _entries: dict[str, R] = field(default_factory=dict)

    def register(self, record: R) -> R:
        name = record.name  # type: ignore[attr-defined]
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = record
        return record

    def get(self, name: str) -> R:
        try:
            return self._entries[name]
        except KeyError:
            raise ValueError(
                f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self._entries))}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[R]:
        return iter(self._entries[n] for n in self.names())


def used_hparams(declared: tuple[HParam, ...], values: dict[str, Any]) -> dict[str, Any]:
    """``values`` without the parameters that had no effect (a ``when`` condition that does not hold), e.g.
    MaxSup's hinge margin under its logit form; an undeclared name is kept."""
    by_name = {h.name: h for h in declared}

    def applies(name: str) -> bool:
        h = by_name.get(name)
        if h is None or h.when is None:
            return True
        other, allowed = h.when
        return values.get(other, by_name[other].default if other in by_name else None) in allowed

    return {k: v for k, v in values.items() if applies(k)}


def check_hparams(owner: str, declared: tuple[HParam, ...], given: dict[str, Any]) -> dict[str, Any]:
    """Validate ``given`` against ``declared``; fill defaults. Raises ``ValueError`` naming the field."""
    by_name = {h.name: h for h in declared}
    unknown = sorted(set(given) - set(by_name))
    if unknown:
        allowed = ", ".join(by_name) or "none"
        raise ValueError(f"{owner}.{unknown[0]} is not a hyperparameter of {owner}; allowed: {allowed}")
    return {h.name: h.check(given[h.name], owner) if h.name in given else h.default for h in declared}
