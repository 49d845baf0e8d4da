"""Load the files of ``examples/`` and ``docs/snippets/`` as modules, the way their users do.

They are not packages (nothing of them is installed), so a test loads each file by its path
under a name of its own, after setting the environment the file reads at import.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

__all__ = ["ROOT", "load_file"]

ROOT = Path(__file__).resolve().parents[2]


def load_file(relative: str, name: str) -> ModuleType:
    """Execute the file ``relative`` (to the repository root) as a fresh module called ``name``."""
    spec = importlib.util.spec_from_file_location(name, ROOT / relative)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {relative}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
