"""Make project plugins import in tests exactly as they import under Ansible.

The project is the collection hybrid.onboard: its modules write
``from ansible_collections.hybrid.onboard.plugins.module_utils.hybrid_aws import …``, and amazon.aws comes from
the ``ansible_collections`` namespace installed by PyPI's ``ansible``. plugin_loader puts ``collections/`` (where
``ansible_collections/hybrid/onboard`` links back to the repository) on ``sys.path``, so both import here too.
"""

from __future__ import annotations

import sys
from pathlib import Path

import plugin_loader  # noqa: F401 - puts the collection on sys.path  # pylint: disable=unused-import
import pytest

ROOT = Path(__file__).resolve().parents[2]

# The lab's Python packages (emulator, vpcside, onprem, agents) import as top-level packages.
if str(ROOT / "tests" / "lab") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests" / "lab"))


@pytest.fixture
def plugin():
    """``plugin(kind, name)`` imports a plugin of the collection."""
    from plugin_loader import load_plugin

    return load_plugin
