"""How reports print numbers, intervals, p-values and hyperparameters: the one formatter of the terminal, the
report and MLflow's run names."""

from __future__ import annotations

import math
from typing import Any

from analysis.core.tables import FINAL_KIND
from analysis.stats import Interval

# A method's own hyperparameters are stored under this prefix (``loss_params.alpha``); shown without it.
LOSS_PARAMS = "loss_params."
HPARAM_DIGITS = 4  # significant digits of a hyperparameter: 0.1872, 1.5e-05


# The one vocabulary of a row's kind (tag/kind): the study's own retrained runs are "final runs"; "reruns" are the
# extra seeds a user asked for (smoothstudy rerun).
KIND_WORDS = {"trial": "search trials", FINAL_KIND: "final runs", "rerun": "reruns"}


def kind_words(kind: str) -> str:
    return KIND_WORDS.get(kind, f"{kind} runs")


def fmt_value(x: float) -> str:
    if x is None or not math.isfinite(x):
        return "—"
    return f"{x:.4g}" if x != 0 and (abs(x) >= 1000 or abs(x) < 0.001) else f"{x:.4f}"


def fmt_interval(iv: Interval) -> str:
    if iv.n == 0:
        return "—"
    if iv.n < 2:
        return fmt_value(iv.mean)
    fixed = iv.mean != 0 and 0.001 <= abs(iv.mean) < 1000
    # the half-width to the mean's own decimals, so a column reads alike ("0.0298 ± 0.0004")
    half = f"{iv.half_width:.4f}" if fixed and math.isfinite(iv.half_width) else fmt_value(iv.half_width)
    return f"{fmt_value(iv.mean)} ± {half}"


def fmt_p(p: float) -> str:
    if not math.isfinite(p):
        return "p=—"
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def fmt_hparam(value: Any) -> str:
    """One hyperparameter's value: a float to ``HPARAM_DIGITS`` significant digits, anything else as it is."""
    if hasattr(value, "item"):  # a NumPy scalar
        value = value.item()
    if isinstance(value, float):
        return f"{value:.{HPARAM_DIGITS}g}"
    return str(value)


def ordered_hparams(hparams: dict[str, Any]) -> list[tuple[str, Any]]:
    """``(name, value)`` pairs with the method's own hyperparameters first (``loss_params.`` dropped from
    their names), then every other searched setting, each group in name order."""
    own = sorted((k.removeprefix(LOSS_PARAMS), v) for k, v in hparams.items() if k.startswith(LOSS_PARAMS))
    rest = sorted((k, v) for k, v in hparams.items() if not k.startswith(LOSS_PARAMS))
    return own + rest


def hparams_text(hparams: dict[str, Any], sep: str = ", ") -> str:
    """``alpha=0.1872, lr=0.05``: a configuration as every view prints it; "—" for none."""
    return sep.join(f"{k}={fmt_hparam(v)}" for k, v in ordered_hparams(hparams)) or "—"


def fmt_count(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def duration_text(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "—"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min ({seconds:.0f} s)"
