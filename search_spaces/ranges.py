"""How a study file names one method hyperparameter's search (``methods.<method>.<name>``), and the strict
pydantic base of every study-file section."""

from __future__ import annotations

import reprlib
import types
import typing
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator

from analysis.core.registry import HParam
from trainables.config import MAX_INT


def _admits_bool(annotation: Any) -> bool:
    if annotation in (bool, Any):
        return True
    if typing.get_origin(annotation) is Literal:
        return any(isinstance(a, bool) for a in typing.get_args(annotation))
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_admits_bool(a) for a in typing.get_args(annotation))
    return False


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_as_number(cls, v: Any, info: ValidationInfo) -> Any:
        """A YAML ``true`` is not the number 1 (pydantic would take it as one)."""
        if isinstance(v, bool) and not _admits_bool(cls.model_fields[info.field_name].annotation):
            raise ValueError(f"{v!r} is a boolean; allowed: {_kind(cls.model_fields[info.field_name].annotation)}")
        return v

    @field_validator("*")
    @classmethod
    def _bounded_int(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool) and abs(v) > MAX_INT:
            raise ValueError(f"{bounded(v)} is too large; allowed: an integer of at most {MAX_INT}")
        return v


class Range(Strict):
    """How one hyperparameter is searched: a range, a grid (``grid: paper`` = the paper's values) or fixed."""

    low: float | None = None
    high: float | None = None
    log: bool | None = None
    grid: list[Any] | Literal["paper"] | None = None
    value: Any = None

    @classmethod
    def of(cls, spec: Any, field_name: str) -> Range:
        """``spec`` as written in the study file (a mapping, or a fixed value), checked for what needs no
        declaration: known keys, a grid with values, a range with low below high and, on a log scale, above 0."""
        if not isinstance(spec, dict):
            spec = {"value": spec}
        try:
            r = cls.model_validate(spec)
        except ValidationError as err:
            bad = err.errors()[0]
            raise ValueError(f"{field_name}.{'.'.join(map(str, bad['loc']))}: {bad['msg']}; "
                             f"allowed keys: low, high, log, grid, value") from None
        if isinstance(r.grid, list) and not r.grid:
            raise ValueError(f"{field_name}.grid: an empty list; allowed: one value or more, or grid: paper")
        if r.log and r.low is not None and not r.low > 0:
            raise ValueError(f"{field_name}.low={r.low:g}: a log-scaled range starts above 0; allowed: low > 0")
        if r.low is not None and r.high is not None and r.low >= r.high:
            raise ValueError(f"{field_name}: low={r.low} must be below high={r.high}")
        return r


def parse_param_spec(h: HParam, spec: Any, owner: str) -> Range:
    """Normalise one method hyperparameter's study-file entry to a ``Range`` and check it against what the
    method declares (an α outside its declared range is refused here, before anything runs)."""
    field_name = f"methods.{owner}.{h.name}"
    r = Range.of(spec, field_name)
    if r.value is not None:
        h.check(r.value, owner)
    if r.grid == "paper" and not h.grid:
        raise ValueError(f"{field_name}.grid=paper: {owner} declares no paper grid for {h.name}; give the values")
    for g in r.grid if isinstance(r.grid, list) else ():
        h.check(g, owner)
    for bound in (r.low, r.high):
        if bound is not None:
            h.check(bound, owner)
    searched = r.value is None and r.grid is None
    low = h.low if r.low is None else r.low
    if searched and (h.log if r.log is None else r.log) and (low is None or not low > 0):
        raise ValueError(f"{field_name}: a log-scaled range from low={low}; allowed: low > 0 (give low: …)")
    return r


def _kind(annotation: Any) -> str:
    names = {int: "an integer", float: "a number", str: "text"}
    kinds = [names.get(a, getattr(a, "__name__", str(a))) for a in (typing.get_args(annotation) or (annotation,))
             if a is not type(None)]
    return " or ".join(kinds) + (" or null" if type(None) in typing.get_args(annotation) else "")


def bounded(value: Any) -> str:
    """A repr short enough for a one-line message, whatever the study file put there."""
    short = reprlib.Repr()
    short.maxstring = short.maxother = 80
    short.maxlevel, short.maxlist, short.maxdict = 2, 6, 6
    return short.repr(value)
