"""The execution environment for AWX / Automation Platform (execution-environment.yml) and what it installs.

`ansible-builder create` writes the build context (Containerfile + _build/) without a container engine, so the test
runs the real command and reads what an image build would do. The other tests hold the EE's inputs to the project:
the pins are requirements.txt's, every Python package our plugins import is installed, and every collection the
roles and playbooks name is in collections/requirements.yml at the version PyPI's `ansible` (what CI runs) ships.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EE_FILE = ROOT / "execution-environment.yml"
COLLECTIONS_FILE = ROOT / "collections" / "requirements.yml"
REQUIREMENTS = ROOT / "requirements.txt"
TEST_AND_LAB_TOOLS = {"moto", "pytest", "molecule", "ansible-lint", "yamllint", "ruff", "paramiko"}
# A task key naming a module by FQCN (STYLE.md 1), and FQCNs of filters/lookups/tests inside Jinja expressions.
TASK_KEY_RE = re.compile(r"^\s+(?:- )?([a-z][a-z0-9_]*\.[a-z][a-z0-9_]*)\.[a-z][a-z0-9_]*:", re.MULTILINE)
# `"{{ ansible_playbook_python }}" -m <module>` in a command's argv list (roles/aws_audit runs awscli that way).
PYTHON_M_RE = re.compile(r"ansible_playbook_python \}\}\"?\s*\n\s*- -m\s*\n\s*- ([A-Za-z0-9_]+)")
JINJA_RE = re.compile(
    r"(?:\b(?:lookup|query|q|map|select|reject|selectattr|rejectattr)\(\s*['\"]|\|\s*|\bis\s+)"
    r"([a-z][a-z0-9_]*\.[a-z][a-z0-9_]*)\.[a-z][a-z0-9_]*\b"
)


def canonical(name: str) -> str:
    """PEP 503 name: `Jinja2` and `jinja2`, `foo_bar` and `foo-bar` are the same distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    """`name==version` lines of a pip requirements file (comments and extras dropped), by canonical name."""
    result = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?\s*==\s*([^\s;]+)", line)
        assert match, f"{path.name}: '{raw}' is not pinned as name==version"
        result[canonical(match[1])] = match[2]
    return result


@pytest.fixture(scope="module")
def definition() -> dict:
    return yaml.safe_load(EE_FILE.read_text())


@pytest.fixture(scope="module")
def ee_requirements(definition) -> Path:
    python = definition["dependencies"]["python"]
    assert isinstance(python, str), "dependencies.python should name a requirements file (requirements-ee.txt)"
    return EE_FILE.parent / python


@pytest.fixture(scope="module")
def declared_collections() -> dict[str, str]:
    data = yaml.safe_load(COLLECTIONS_FILE.read_text())
    return {entry["name"]: entry.get("version") for entry in data["collections"]}


@pytest.fixture(scope="module")
def context(tmp_path_factory) -> Path:
    """The build context `ansible-builder create` writes (no container engine is called)."""
    if importlib.util.find_spec("ansible_builder") is None:
        pytest.skip("ansible-builder is not installed in this environment (`make` installs it from requirements.txt)")
    out = tmp_path_factory.mktemp("ee") / "context"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ansible_builder",
            "create",
            "--output-filename",
            "Containerfile",
            "-f",
            str(EE_FILE),
            "-c",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"ansible-builder create failed:\n{result.stdout}\n{result.stderr}"
    return out


def test_definition_is_builder_v3_with_a_base_image(definition):
    assert definition["version"] == 3
    assert definition["images"]["base_image"]["name"]


def test_ansible_core_and_runner_pins_are_the_ones_ci_runs(definition):
    ci_core = pins(REQUIREMENTS)["ansible-core"]
    assert definition["dependencies"]["ansible_core"]["package_pip"] == f"ansible-core=={ci_core}"
    assert re.fullmatch(r"ansible-runner==\d+\.\d+\.\d+", definition["dependencies"]["ansible_runner"]["package_pip"])
    # The venv's ansible-runner (tests/integration/test_awx_runner_aws.py runs jobs with it) is the EE's.
    ci_runner = pins(REQUIREMENTS)["ansible-runner"]
    assert definition["dependencies"]["ansible_runner"]["package_pip"] == f"ansible-runner=={ci_runner}"


def test_containerfile_installs_the_pinned_core_our_python_requirements_and_collections(context, definition):
    containerfile = (context / "Containerfile").read_text()
    args = dict(re.findall(r'^ARG (\w+)="(.*)"$', containerfile, re.MULTILINE))
    assert args["EE_BASE_IMAGE"] == definition["images"]["base_image"]["name"]
    assert args["ANSIBLE_INSTALL_REFS"].split() == [
        definition["dependencies"]["ansible_core"]["package_pip"],
        definition["dependencies"]["ansible_runner"]["package_pip"],
    ]
    assert "$PYCMD -m pip install --no-cache-dir $ANSIBLE_INSTALL_REFS" in containerfile
    # Collections: installed from our requirements.yml, then copied into the final image.
    assert re.search(r"ansible-galaxy collection install .*-r requirements\.yml", containerfile)
    assert containerfile.count("COPY --from=galaxy /usr/share/ansible /usr/share/ansible") == 2
    # Python and system packages: our files go into introspection (merged with the collections' own), built into
    # wheels by `assemble`, installed in the final stage.
    assert "COPY _build/requirements.txt requirements.txt" in containerfile
    assert "COPY _build/bindep.txt bindep.txt" in containerfile
    introspect = r"introspect\.py introspect .*--user-pip=requirements\.txt .*--user-bindep=bindep\.txt"
    assert re.search(introspect, containerfile)
    assert "RUN /output/scripts/assemble" in containerfile
    final = containerfile.split("FROM base AS final", 1)[1]
    assert "RUN /output/scripts/install-from-bindep" in final
    assert "RUN /output/scripts/check_ansible $PYCMD" in final


def test_build_context_holds_exactly_what_we_declared(context, definition, ee_requirements):
    build = context / "_build"
    assert (build / "requirements.txt").read_text() == ee_requirements.read_text()
    assert yaml.safe_load((build / "requirements.yml").read_text()) == yaml.safe_load(COLLECTIONS_FILE.read_text())
    system = definition["dependencies"]["system"]
    assert (build / "bindep.txt").read_text().splitlines() == system
    assert "openssh-clients [platform:rpm]" in system  # the ssh connection to the on-prem hosts


def test_ee_python_requirements_are_requirements_txt_pins_without_test_tools(ee_requirements):
    ee = pins(ee_requirements)
    ci = pins(REQUIREMENTS)
    differing = {name: (version, ci[name]) for name, version in ee.items() if name in ci and ci[name] != version}
    assert not differing, f"{ee_requirements.name} pins differ from requirements.txt (ee, ci): {differing}"
    assert not TEST_AND_LAB_TOOLS & ee.keys(), "test and lab tools do not belong in the execution environment"
    # Set in execution-environment.yml (ansible_core / ansible_runner), never twice.
    assert not {"ansible", "ansible-core", "ansible-runner"} & ee.keys()


def third_party_imports(path: Path) -> set[str]:
    """Top-level modules a plugin imports, without the standard library and Ansible's own namespaces."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"ansible", "ansible_collections", "__future__"}


def test_every_python_package_the_controller_code_uses_is_installed_in_the_ee(ee_requirements):
    """Imports of plugins/ (modules, module_utils, filters, inventory) and `python -m X` calls of the roles."""
    modules = set()
    for path in (ROOT / "plugins").rglob("*.py"):
        modules |= third_party_imports(path)
    for path in (ROOT / "roles").rglob("tasks/*.yml"):
        modules |= set(PYTHON_M_RE.findall(path.read_text()))
    assert {"botocore", "dns", "awscli"} <= modules, f"the scan found too little to be trusted: {sorted(modules)}"

    provided_by = importlib.metadata.packages_distributions()
    installed = set(pins(ee_requirements))
    core = importlib.metadata.requires("ansible-core") or []
    installed |= {canonical(re.split(r"[\s<>=!~;\[]", req, maxsplit=1)[0]) for req in core}
    missing = {
        module: provided_by.get(module)
        for module in modules
        if not {canonical(dist) for dist in provided_by.get(module, [module])} & installed
    }
    assert not missing, f"imported by the controller side, not installed in the EE (module: distributions): {missing}"


def used_collections() -> dict[str, set[str]]:
    used: dict[str, set[str]] = {}
    for top in ("roles", "playbooks"):
        for path in (ROOT / top).rglob("*.yml"):
            if "molecule" in path.parts:  # test scenarios, not what the EE runs
                continue
            text = path.read_text()
            for name in TASK_KEY_RE.findall(text) + JINJA_RE.findall(text):
                used.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return used


def test_every_collection_the_roles_and_playbooks_use_is_in_requirements_yml(declared_collections):
    used = used_collections()
    assert {"amazon.aws", "community.general"} <= used.keys(), f"the scan found too little: {sorted(used)}"
    assert "hybrid.onboard" in used, "the project calls its own roles, modules and plugins by FQCN"
    # ansible.builtin ships with ansible-core; hybrid.onboard is this repository.
    others = {name: sorted(files)[:3] for name, files in used.items()
              if name not in ("ansible.builtin", "hybrid.onboard")}
    missing = {name: files for name, files in others.items() if name not in declared_collections}
    assert not missing, f"collections used but not in collections/requirements.yml (name: first files): {missing}"
    # An installed copy of the collection pulls its dependencies from galaxy.yml.
    dependencies = yaml.safe_load((ROOT / "galaxy.yml").read_text())["dependencies"]
    undeclared = {name: files for name, files in others.items() if name not in dependencies}
    assert not undeclared, f"collections used but not in galaxy.yml's dependencies (name: first files): {undeclared}"


def test_requirements_yml_pins_the_collection_versions_ci_runs(declared_collections):
    """Galaxy users and the EE get what PyPI's `ansible` (requirements.txt) gave CI."""
    spec = importlib.util.find_spec("ansible_collections")
    roots = [Path(p) for p in (spec.submodule_search_locations if spec else [])]
    found = {}
    for name in declared_collections:
        namespace, collection = name.split(".")
        for root in roots:
            manifest = root / namespace / collection / "MANIFEST.json"
            if manifest.is_file():
                found[name] = json.loads(manifest.read_text())["collection_info"]["version"]
                break
    if not found:
        pytest.skip("no collections installed from PyPI's `ansible` here")
    differing = {
        name: (declared_collections[name], version)
        for name, version in found.items()
        if declared_collections[name] != version
    }
    assert not differing, f"requirements.yml versions differ from the installed ones (declared, installed): {differing}"
    assert found.keys() == declared_collections.keys(), "a collection of requirements.yml is not installed here"
