"""The bounded YAML reader of study files: what it refuses, and what it must keep accepting."""

from __future__ import annotations

import pytest

from search_spaces.yaml_file import MAX_DEPTH, read_study_yaml


def read(tmp_path, text: str):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return read_study_yaml(path)


def test_anchors_and_merge_keys_still_work(tmp_path):
    data = read(tmp_path, "base: &b {lr: 0.1, epochs: 3}\ntraining: {<<: *b, epochs: 2}\nother: *b\n")
    assert data["training"] == {"lr": 0.1, "epochs": 2} and data["other"] == {"lr": 0.1, "epochs": 3}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("training:\n  epochs: 0\n  lr: 0.1\n  epochs: 5\n",
         "line 4: not valid YAML (key 'epochs' given twice (first on line 2)"),
        ("a: 1\nb: {x: 1, x: 2}\n", "key 'x' given twice"),
        ("a: " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "\n", f"nested more than {MAX_DEPTH} levels deep"),
        ("a: !!python/object/apply:os.system [echo]\n", "not valid YAML"),
    ],
)
def test_refused_with_the_file_named(tmp_path, text, message):
    with pytest.raises(ValueError) as err:
        read(tmp_path, text)
    assert message in str(err.value) and str(tmp_path / "s.yaml") in str(err.value)


def test_nesting_up_to_the_limit_is_fine(tmp_path):
    depth = MAX_DEPTH - 1
    assert read(tmp_path, "a: " + "[" * depth + "]" * depth + "\n")["a"] is not None
