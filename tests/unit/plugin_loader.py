"""Load project plugins by path, as Ansible does (modules and filters are files, not a package)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"


def load_plugin(kind: str, name: str):
    """Import ``plugins/<kind>/<name>.py`` as Ansible would (by path, under a private name)."""
    path = PLUGINS / kind / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"hybrid_onboard_{kind}_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
