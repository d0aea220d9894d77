"""Load the collection's plugins by their import path, as Ansible's collection loader does."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# collections/ansible_collections/hybrid/onboard is a link back to the repository: with collections/ on sys.path the
# project imports as the collection hybrid.onboard, beside amazon.aws in site-packages (ansible_collections is a
# namespace package, so both places merge).
COLLECTIONS = ROOT / "collections"
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))
PACKAGE = "ansible_collections.hybrid.onboard.plugins"


def load_plugin(kind: str, name: str):
    """Import ``plugins/<kind>/<name>.py`` as ``ansible_collections.hybrid.onboard.plugins.<kind>.<name>``."""
    return importlib.import_module(f"{PACKAGE}.{kind}.{name}")
