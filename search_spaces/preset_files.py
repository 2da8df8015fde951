"""The study presets (``studies/*.yaml`` in a checkout; ``search_spaces/presets/`` is a link to that folder, and
the wheel ships its files there), so that ``smoothstudy run quick`` works from any directory."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

PRESETS = "presets"


def preset_names() -> list[str]:
    folder = resources.files("search_spaces") / PRESETS
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def study_file(arg: str | Path) -> Path:
    """``arg`` itself when it is a file, else the preset of that name (``quick`` or ``quick.yaml``); a name
    that is neither comes back unchanged (the study loader then says the file does not exist)."""
    path = Path(arg)
    if path.exists() or len(path.parts) > 1:
        return path
    preset = resources.files("search_spaces") / PRESETS / f"{path.name.removesuffix('.yaml')}.yaml"
    return Path(str(preset)) if preset.is_file() else path
