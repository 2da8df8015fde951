"""Reading a study file's YAML with bounds: a size cap, UTF-8 text, no duplicate keys, and no aliases that
expand into more values than a study file could mean (a few hundred bytes of nested aliases expand into
billions of values once anything walks or prints them). Every refusal is one line naming the file."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import yaml

MAX_STUDY_FILE_BYTES = 1_000_000
MAX_VALUES = 100_000  # after aliases are expanded; a real study file has a few hundred
MAX_DEPTH = 50  # nested mappings and lists; LibYAML's composer recurses in C (deep nesting crashes it)
_MERGE_TAG = "tag:yaml.org,2002:merge"
_FAST = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StudyLoader(_FAST):  # data only: no Python object tags
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):  # every key of a study file is a name
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {_short(key)} is not text; allowed: a name (quote it: '{_short(key)}')",
                    key_node.start_mark)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base class refuses it with its own message
                continue
            seen[key] = key_node.start_mark.line + 1
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {_short(key)} given twice (first on line {first}); the last would silently win",
                    key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value) if isinstance(value, (str, int, float, bool)) or value is None else type(value).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _depth(text: str) -> int:
    """How deeply the document nests, from the parser's events (iterative, no recursion); stops past MAX_DEPTH."""
    depth = deepest = 0
    for event in yaml.parse(text, Loader=_FAST):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:
                break
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return deepest


def _too_deep(path: Path) -> ValueError:
    return ValueError(f"study file {path}: nested more than {MAX_DEPTH} levels deep; a study file has a few")


def _count_values(data: Any, budget: int) -> int:
    """Values in ``data`` with aliases expanded, counting stops once past ``budget``."""
    count, stack = 0, [data]
    while stack and count <= budget:
        item = stack.pop()
        count += 1
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


def read_study_yaml(path: Path) -> Any:
    """The parsed document; ``ValueError`` with one line naming ``path`` when it cannot be a study file."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):  # a FIFO or a device would block or never end
            raise ValueError(f"study file {path}: not a regular file; allowed: a YAML file")
        with path.open("rb") as f:
            raw = f.read(MAX_STUDY_FILE_BYTES + 1)  # the file may grow after the stat
        if len(raw) > MAX_STUDY_FILE_BYTES:
            raise ValueError(f"study file {path}: more than {MAX_STUDY_FILE_BYTES} bytes; allowed: at most "
                             f"{MAX_STUDY_FILE_BYTES} bytes")
    except OSError as err:
        raise ValueError(f"study file {path}: cannot read it ({err.strerror or err})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"study file {path}: not UTF-8 text (byte {err.start}); a study file is YAML") from None
    try:
        if _depth(text) > MAX_DEPTH:
            raise _too_deep(path)
        data = yaml.load(text, Loader=_StudyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        if "maximum nesting depth" in problem:  # LibYAML >= 0.2.6 (PyYAML 6.0.4) stops at 1000 levels first
            raise _too_deep(path) from None
        raise ValueError(f"study file {path}{where}: not valid YAML ({problem})") from None
    if _count_values(data, MAX_VALUES) > MAX_VALUES:
        raise ValueError(f"study file {path}: more than {MAX_VALUES} values (an alias *name counts as many as it "
                         "repeats); a study file has a few hundred")
    return data
