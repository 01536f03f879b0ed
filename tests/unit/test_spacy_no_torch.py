"""The quality stage's spaCy tokenizer loads without torch (thinc would import it: seconds per worker),
and torch stays importable afterwards for stages that need it."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import sys
from gristmill.filters.english import EnglishTokenizer
tokenizer = EnglishTokenizer.shared()
print("torch" in sys.modules, tokenizer.words("Don't stop-believing, U.S.A. 3.5km"))
import importlib.util
print(importlib.util.find_spec("torch") is not None and sys.modules.get("torch", 1) is not None)
"""


def test_spacy_tokenizer_loads_without_importing_torch():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0].startswith("False ")
    assert "'U.S.A.'" in out[0] and "'3.5'" in out[0] and "'km'" in out[0]
    assert out[1] == "True"  # torch not left blocked
