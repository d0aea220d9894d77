"""Every filter and test plugin of the collection is documented, so `ansible-doc -t filter hybrid.onboard.<name>`
renders it.

Filters and tests live several to a file, so ansible-core reads their documentation from a YAML file per name
beside the code (plugins/filter/<name>.yml, plugins/test/<name>.yml: DOCUMENTATION, EXAMPLES, RETURN). These tests
tie those files to what the plugins register: a new filter without its file fails here, and so does a file whose
function is gone, an option the function does not take, or a parameter the documentation leaves out.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from plugin_loader import load_plugin

ROOT = Path(__file__).resolve().parents[2]
KINDS = ("filter", "test")


def registered(kind: str) -> dict[str, object]:
    """{name: function} of every filter (FilterModule.filters()) or test (TestModule.tests()) the plugins register."""
    found: dict[str, object] = {}
    for path in sorted((ROOT / "plugins" / kind).glob("*.py")):
        if path.name.startswith("_"):
            continue
        module = load_plugin(kind, path.stem)
        functions = module.FilterModule().filters() if kind == "filter" else module.TestModule().tests()
        duplicated = found.keys() & functions.keys()
        assert not duplicated, f"{path.name} registers {sorted(duplicated)} again"
        found.update(functions)
    return found


def sidecars(kind: str) -> dict[str, Path]:
    return {path.stem: path for path in sorted((ROOT / "plugins" / kind).glob("*.yml"))}


REGISTERED = {kind: registered(kind) for kind in KINDS}
DOCUMENTED = [(kind, name) for kind in KINDS for name in sorted(REGISTERED[kind])]


@pytest.mark.parametrize("kind", KINDS)
def test_every_registered_name_has_its_documentation_file(kind):
    assert REGISTERED[kind], f"no {kind} plugins found: the scan is broken"
    missing = sorted(set(REGISTERED[kind]) - set(sidecars(kind)))
    assert not missing, f"{kind} plugins without plugins/{kind}/<name>.yml: {missing}"


@pytest.mark.parametrize("kind", KINDS)
def test_every_documentation_file_names_a_registered_function(kind):
    orphans = sorted(set(sidecars(kind)) - set(REGISTERED[kind]))
    assert not orphans, f"plugins/{kind}/<name>.yml for names no {kind} plugin registers: {orphans}"


@pytest.mark.parametrize(("kind", "name"), DOCUMENTED, ids=[f"{k}:{n}" for k, n in DOCUMENTED])
def test_documentation_is_complete_and_matches_the_function(kind, name):
    path = ROOT / "plugins" / kind / f"{name}.yml"
    data = yaml.safe_load(path.read_text())
    assert set(data) == {"DOCUMENTATION", "EXAMPLES", "RETURN"}, f"{path.name}: keys {sorted(data)}"
    doc = data["DOCUMENTATION"]
    assert doc["name"] == name
    for key in ("version_added", "short_description", "description", "author"):
        assert doc.get(key), f"{path.name}: no {key}"
    assert "hybrid-onboard maintainers (@hybrid-onboard)" in doc["author"]

    options = doc.get("options") or {}
    for option, spec in options.items():
        assert spec.get("description") and spec.get("type"), f"{path.name}: option {option} is incomplete"
    # The first parameter is the piped value (_input); the others are the options, by the parameter's own name.
    parameters = list(inspect.signature(REGISTERED[kind][name]).parameters.values())
    assert "_input" in options, f"{path.name}: the piped value (_input) is not documented"
    differ = f"{path.name}: options differ from the function's parameters"
    assert set(options) - {"_input"} == {p.name for p in parameters[1:]}, differ
    for parameter in parameters[1:]:
        spec = options[parameter.name]
        if parameter.default is inspect.Parameter.empty:
            assert spec.get("required") is True, f"{path.name}: {parameter.name} has no default, so it is required"
        else:
            assert not spec.get("required"), f"{path.name}: {parameter.name} has a default, so it is not required"
            if "default" in spec:
                assert spec["default"] == parameter.default, f"{path.name}: {parameter.name}'s default differs"
    if "positional" in doc:
        positional = [item.strip() for item in doc["positional"].split(",")]
        assert positional == ["_input"] + [p.name for p in parameters[1 : len(positional)]], path.name

    examples = yaml.safe_load(data["EXAMPLES"])
    assert examples, f"{path.name}: EXAMPLES is empty"
    fqcn = f"hybrid.onboard.{name}"
    assert fqcn in data["EXAMPLES"], f"{path.name}: no example uses {fqcn}"
    if kind == "filter":
        assert f"| {fqcn}" in data["EXAMPLES"], f"{path.name}: no example uses the filter as `| {fqcn}`"
    returned = data["RETURN"]["_value"]
    assert returned.get("description") and returned.get("type"), f"{path.name}: RETURN _value is incomplete"


def ansible_doc(kind: str, names: list[str], *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-doc"), "-t", kind, *extra, *(f"hybrid.onboard.{n}" for n in names)],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=120, check=False,
    )


@pytest.mark.parametrize("kind", KINDS)
def test_ansible_doc_renders_every_plugin_by_its_fqcn(kind):
    names = [name for k, name in DOCUMENTED if k == kind]
    # One run renders them all; ansible-doc fails (rc 1) when any of them has no documentation it can read.
    result = ansible_doc(kind, names, "--json")
    assert result.returncode == 0, result.stderr
    rendered = json.loads(result.stdout)
    assert sorted(rendered) == sorted(f"hybrid.onboard.{name}" for name in names)
    for name in names:
        doc = rendered[f"hybrid.onboard.{name}"]["doc"]
        assert doc["name"] == name and doc["description"], f"{name}: {doc}"
        assert doc["collection"] == "hybrid.onboard"

    text = ansible_doc(kind, names)
    assert text.returncode == 0, text.stderr
    for name in names:
        assert f"> {kind.upper()} hybrid.onboard.{name} " in text.stdout, f"{name} not rendered"
