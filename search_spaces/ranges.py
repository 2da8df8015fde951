"""How a study file names one method hyperparameter's search (``methods.<method>.<name>``), and the strict
pydantic base of every study-file section."""

from __future__ import annotations

import reprlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from analysis.core.registry import HParam
from trainables.config import MAX_INT


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

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


def parse_param_spec(h: HParam, spec: Any, owner: str) -> Range:
    """Normalise one method hyperparameter's study-file entry to a ``Range`` and check it against what the
    method declares (an α outside its declared range is refused here, before anything runs)."""
    field_name = f"methods.{owner}.{h.name}"
    if not isinstance(spec, dict):
        spec = {"value": spec}
    try:
        r = Range(**spec)
    except ValidationError as err:
        bad = err.errors()[0]
        raise ValueError(f"{field_name}.{'.'.join(map(str, bad['loc']))}: {bad['msg']}; "
                         f"allowed keys: low, high, log, grid, value") from None
    if r.value is not None:
        h.check(r.value, owner)
    if r.grid == "paper" and not h.grid:
        raise ValueError(f"{field_name}.grid=paper: {owner} declares no paper grid for {h.name}; give the values")
    for g in r.grid if isinstance(r.grid, list) else ():
        h.check(g, owner)
    for bound in (r.low, r.high):
        if bound is not None:
            h.check(bound, owner)
    if r.low is not None and r.high is not None and r.low >= r.high:
        raise ValueError(f"{field_name}: low={r.low} must be below high={r.high}")
    return r


def bounded(value: Any) -> str:
    """A repr short enough for a one-line message, whatever the study file put there."""
    short = reprlib.Repr()
    short.maxstring = short.maxother = 80
    short.maxlevel, short.maxlist, short.maxdict = 2, 6, 6
    return short.repr(value)
