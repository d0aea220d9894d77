"""Every module we ship documents itself completely (STYLE.md 14): DOCUMENTATION, EXAMPLES and RETURN
parse as YAML, every option and return value is described, `ansible-doc` renders the module by its FQCN, and
the EXAMPLES use the module by its FQCN (hybrid.onboard.<name>). (Each module's own tests check its returned keys
against RETURN.)"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted(p for p in (ROOT / "plugins" / "modules").glob("*.py") if not p.name.startswith("_"))


def doc_strings(path: Path) -> dict[str, str]:
    tree = ast.parse(path.read_text())
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name in ("DOCUMENTATION", "EXAMPLES", "RETURN") and isinstance(node.value, ast.Constant):
                found[name] = node.value.value
    return found


def test_there_are_modules_to_check():
    if not MODULES:
        pytest.skip("no modules in plugins/modules yet")


@pytest.mark.parametrize("path", MODULES, ids=[p.stem for p in MODULES])
def test_module_documentation_is_complete(path):
    docs = doc_strings(path)
    assert set(docs) == {"DOCUMENTATION", "EXAMPLES", "RETURN"}, f"{path.name}: missing {docs.keys()}"
    documentation = yaml.safe_load(docs["DOCUMENTATION"])
    assert documentation["module"] == path.stem
    assert documentation.get("short_description") and documentation.get("description")
    for name, option in (documentation.get("options") or {}).items():
        assert option.get("description"), f"{path.name}: option {name} has no description"
    examples = yaml.safe_load(docs["EXAMPLES"])
    assert examples, f"{path.name}: EXAMPLES is empty"
    fqcn = f"hybrid.onboard.{path.stem}"
    assert any(fqcn in task for task in examples), f"{path.name}: no example uses the module by its FQCN {fqcn}"
    returned = yaml.safe_load(docs["RETURN"]) or {}
    for key, spec in returned.items():
        assert spec.get("description") and spec.get("returned"), f"{path.name}: RETURN {key} is incomplete"


@pytest.mark.parametrize("path", MODULES, ids=[p.stem for p in MODULES])
def test_ansible_doc_renders(path):
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-doc"), f"hybrid.onboard.{path.stem}"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert path.stem in result.stdout and "OPTIONS" in result.stdout
