"""Make project plugins import in tests exactly as they import under Ansible.

Under ``ansible-playbook`` the ``module_utils`` path of ansible.cfg is merged into the
``ansible.module_utils`` package, so our modules write ``from ansible.module_utils.hybrid_aws import …``;
amazon.aws comes from the ``ansible_collections`` namespace installed by PyPI's ``ansible``. Here we do
the same merge, and load modules/filters from their files by path, as Ansible does.
"""

from __future__ import annotations

import sys
from pathlib import Path

import ansible.module_utils
import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "plugins"

if str(PLUGINS / "module_utils") not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(str(PLUGINS / "module_utils"))
# The lab's Python packages (emulator, vpcside, onprem, agents) import as top-level packages.
if str(ROOT / "tests" / "lab") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests" / "lab"))


@pytest.fixture
def plugin():
    """``plugin(kind, name)`` loads a project plugin by path."""
    from plugin_loader import load_plugin

    return load_plugin
