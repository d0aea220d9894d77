"""Every role is usable alone, from another repository: it reads only its own role-prefixed inputs.

- Called by FQCN with no variables at all, each role stops at its argument check (meta/argument_specs.yml), before
  any task of its own, naming every one of its required inputs - never on an undefined site-wide hybrid_* variable.
- No file of a role (defaults, vars, tasks, templates, handlers, meta) names a site-wide hybrid_* variable; the
  project's playbooks map those to the roles' inputs in playbooks/group_vars/all/roles.yml, which covers every
  required input of every role.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "tasks").is_dir())
ROLE_INPUTS_FILE = ROOT / "playbooks" / "group_vars" / "all" / "roles.yml"
# A site-wide variable: hybrid_<word>, not part of a longer name (`__aws_hybrid_identity_x`, the lookup
# `hybrid.onboard.hybrid_ssm_parameter`). Not site-wide: `hybrid_onboard` (the Galaxy namespace in meta/main.yml)
# and `hybrid_offboard` / `hybrid_offboard_*` (that role's name and its own inputs).
SITE_WIDE = re.compile(r"(?<![\w.])hybrid_(?!onboard\b|offboard\b|offboard_)\w+")
VALIDATION_TASK = "Validating arguments against arg spec 'main'"


def options(role: str) -> dict:
    specs = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())
    return specs["argument_specs"]["main"]["options"]


def required_inputs(role: str) -> set[str]:
    return {name for name, opt in options(role).items() if (opt or {}).get("required")}


def _rescued_include(role: str) -> dict:
    keep = (
        "{{ __standalone | combine({__role: {'task': ansible_failed_task.name, 'msg': ansible_failed_result.msg"
        " | default(''), 'errors': ansible_failed_result.argument_errors | default([])}}) }}"
    )
    return {
        "name": f"Call {role} with no variables",
        "vars": {"__role": role},
        "block": [
            {"name": f"Include {role}", "ansible.builtin.include_role": {"name": f"hybrid.onboard.{role}"}},
            {"name": f"Note that {role} got past its argument check",
             "ansible.builtin.set_fact": {"__standalone": "{{ __standalone | combine({__role: 'ran'}) }}"}},
        ],
        "rescue": [{"name": f"Keep how {role} stopped", "ansible.builtin.set_fact": {"__standalone": keep}}],
    }


@pytest.fixture(scope="module")
def standalone(tmp_path_factory) -> dict:
    """One ansible-playbook run: a block/rescue per role, each including the role with no variables."""
    # A role without a required input would get past its check and do its work here: refuse to run it at all.
    assert [role for role in ROLES if not required_inputs(role)] == []
    tmp = tmp_path_factory.mktemp("standalone")
    results = tmp / "results.json"
    tasks = [_rescued_include(role) for role in ROLES]
    tasks.append({"name": "Write how every role stopped", "ansible.builtin.copy": {
        "content": "{{ __standalone | to_nice_json }}", "dest": str(results), "mode": "0600"}, "check_mode": False})
    playbook = tmp / "standalone.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "Every role alone, without variables",
        "hosts": "localhost",
        "gather_facts": False,
        "become": False,
        "vars": {"__standalone": {}, "ansible_python_interpreter": "{{ ansible_playbook_python }}"},
        "tasks": tasks,
    }], sort_keys=False))
    # Check mode, and AWS pointed at a closed port: even a role that wrongly got past its check changes nothing.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ANSIBLE_"))}
    env.update(ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               AWS_ENDPOINT_URL="http://127.0.0.1:9", AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_DEFAULT_REGION="eu-west-1", AWS_MAX_ATTEMPTS="1")
    proc = subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                           "--check", str(playbook)],
                          cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=300, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    return {"results": json.loads(results.read_text()), "output": output}


@pytest.mark.parametrize("role", ROLES)
def test_a_role_called_without_variables_names_its_missing_inputs(standalone, role):
    result = standalone["results"][role]
    assert isinstance(result, dict), f"{role} got past its argument check without any variable"
    assert result["task"].startswith(VALIDATION_TASK), result
    missing = [e for e in result["errors"] if e.startswith("missing required arguments: ")]
    assert len(missing) == 1, result
    named = set(missing[0].removeprefix("missing required arguments: ").split(", "))
    assert named == required_inputs(role), result
    for name in required_inputs(role):
        assert name in result["msg"], result


def test_no_site_wide_variable_is_reported_undefined(standalone):
    assert re.findall(r"'hybrid_\w+' is undefined", standalone["output"]) == []
    assert SITE_WIDE.findall(standalone["output"]) == []


def test_no_role_file_names_a_site_wide_variable():
    offenders = []
    for path in sorted((ROOT / "roles").rglob("*")):
        relative = path.relative_to(ROOT / "roles")
        if not path.is_file() or "molecule" in relative.parts or path.name == "README.md":
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            offenders += [f"roles/{relative}:{number}: {m}" for m in SITE_WIDE.findall(line)]
    assert offenders == []


def test_the_playbooks_give_every_role_its_required_inputs():
    mapped = yaml.safe_load(ROLE_INPUTS_FILE.read_text())
    missing = sorted(name for role in ROLES for name in required_inputs(role) if name not in mapped)
    assert missing == []
    known = {name for role in ROLES for name in options(role)}
    assert sorted(set(mapped) - known) == [], "roles.yml sets variables no role has"
