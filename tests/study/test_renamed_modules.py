"""A study started by an earlier release resumes: its pickled Ray state names modules that were renamed."""

from __future__ import annotations

import importlib
import importlib.util
import json
import subprocess
import sys

from study.renamed_modules import RENAMED_MODULES
from tests.conftest import ROOT

# (old module, class) pairs found in the tuner.pkl and searcher state of a study started before the renames
PICKLED = [("search_spaces.schema", "StudySpec"), ("study.layout", "StudyDir"), ("trainables.registry", "HParam")]

# In a fresh interpreter (no old path aliased yet): each class's pickle, by module path and name as an older
# tuner.pkl holds it (the GLOBAL opcode), loaded before and after the aliases.
LOAD = """
import json, pickle, sys
from study.renamed_modules import alias_renamed_modules

def load(old, name):
    try:
        cls = pickle.loads(f"c{old}\\n{name}\\n.".encode())
    except ModuleNotFoundError:
        return None
    return f"{cls.__module__}.{cls.__name__}"

pairs = json.loads(sys.argv[1])
before = [load(*p) for p in pairs]
alias_renamed_modules()
print(json.dumps([before, [load(*p) for p in pairs]]))
"""


def test_every_new_path_imports_and_no_old_path_does():
    for old, new in RENAMED_MODULES.items():
        importlib.import_module(new)
        assert importlib.util.find_spec(old) is None, f"{old} exists again; drop it from RENAMED_MODULES"


def test_a_pickle_naming_an_old_module_loads_the_class_where_it_is_now():
    out = subprocess.run([sys.executable, "-c", LOAD, json.dumps(PICKLED)], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=True).stdout
    before, after = json.loads(out)
    assert before == [None] * len(PICKLED)  # without the aliases an old study's state does not load
    assert after == [f"{RENAMED_MODULES[old]}.{name}" for old, name in PICKLED]
