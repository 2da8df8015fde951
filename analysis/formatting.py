"""How reports print numbers, intervals, p-values and hyperparameters."""

from __future__ import annotations

import math

from analysis.stats import Interval


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


def hparams_text(hparams: dict) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in hparams.items()) or "—"



def fmt_count(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def duration_text(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "—"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min ({seconds:.0f} s)"
