"""The repository as the installed collection hybrid.onboard, used from a directory outside the repository.

Built with `ansible-galaxy collection build`, installed with `--offline` (as a closed network must: the dependencies
come from PyPI's `ansible`, already installed), and from git (`git+file://`). Every run here starts in a temporary
directory with no ansible.cfg and no ANSIBLE_CONFIG, so nothing of the repository's in-place setup (its
collections/ link, its ansible.cfg) can help: what passes here passes for a user of the installed collection.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import boto3
import pytest
import yaml
from labtools import ROOT, C, parse_recap

BIN = ROOT / ".venv" / "bin"
MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py"))
VERSION = yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]
NAME = f"col{uuid.uuid4().hex[:6]}"


def outside_env(collections: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a user outside the repository: only the installed collection on the collection path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "AWS_"))}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_INJECT_FACT_VARS="false", PATH=f"{BIN}:{env.get('PATH', '')}")
    env.update(extra or {})
    return env


def run(argv, cwd: Path, env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], cwd=str(cwd), env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def user_dir(tmp_path_factory) -> Path:
    """A user's playbook directory with the collection installed from the built tarball."""
    home = tmp_path_factory.mktemp("collection-user")
    env = outside_env(home / "collections")
    built = run([BIN / "ansible-galaxy", "collection", "build", "--output-path", home / "dist", ROOT], home, env)
    assert built.returncode == 0, built.stderr
    tarball = home / "dist" / f"hybrid-onboard-{VERSION}.tar.gz"
    assert tarball.is_file(), built.stdout
    installed = run([BIN / "ansible-galaxy", "collection", "install", "--offline", "-p", home / "collections",
                     tarball], home, env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert (home / "collections" / "ansible_collections" / "hybrid" / "onboard" / "MANIFEST.json").is_file()
    return home


def test_the_tarball_holds_the_collection_and_not_the_in_place_link(user_dir):
    root = user_dir / "collections" / "ansible_collections" / "hybrid" / "onboard"
    manifest = json.loads((root / "MANIFEST.json").read_text())["collection_info"]
    assert (manifest["namespace"], manifest["name"], manifest["version"]) == ("hybrid", "onboard", VERSION)
    assert {"amazon.aws", "community.aws"} <= set(manifest["dependencies"])
    assert (root / "meta" / "runtime.yml").is_file() and (root / "roles" / "ssm_agent" / "tasks").is_dir()
    # The roles' inputs of the collection's own playbooks (`ansible-playbook hybrid.onboard.site`).
    assert (root / "playbooks" / "group_vars" / "all" / "roles.yml").is_file()
    assert not (root / "collections" / "ansible_collections").exists(), "the in-place link must not be packaged"


def test_ansible_doc_renders_every_module_and_plugin_by_fqcn(user_dir):
    env = outside_env(user_dir / "collections")
    listed = run([BIN / "ansible-doc", "-l", "hybrid.onboard"], user_dir, env)
    assert listed.returncode == 0, listed.stderr
    assert {f"hybrid.onboard.{m}" for m in MODULES} <= {line.split()[0] for line in listed.stdout.splitlines()}
    for kind, names in (("module", MODULES), ("lookup", ["hybrid_ssm_parameter"]), ("inventory", ["ssm_nodes"])):
        for name in names:
            doc = run([BIN / "ansible-doc", "-t", kind, f"hybrid.onboard.{name}"], user_dir, env)
            assert doc.returncode == 0, f"{kind} {name}: {doc.stderr}"
            assert f"hybrid.onboard.{name}" in doc.stdout and "OPTIONS" in doc.stdout, f"{kind} {name}"


def test_the_collection_playbooks_run_by_fqcn(user_dir):
    (user_dir / "hosts.yml").write_text("all:\n  hosts:\n    localhost:\n      ansible_connection: local\n")
    env = outside_env(user_dir / "collections")
    for name in ("site", "offboard", "report"):
        check = run([BIN / "ansible-playbook", "-i", "hosts.yml", f"hybrid.onboard.{name}", "--syntax-check"],
                    user_dir, env)
        assert check.returncode == 0, f"{name}: {check.stdout}{check.stderr}"


def test_a_user_playbook_calls_the_roles_by_fqcn_against_aws(user_dir, aws_only):
    """The identity and activation roles from the installed collection converge in the emulator and rerun clean.

    Given only their own inputs (no site-wide hybrid_* variable): the roles are usable alone."""
    playbook = user_dir / "onboard.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "Identity and activation from the installed collection",
        "hosts": "localhost",
        "gather_facts": False,
        "vars": {"aws_hybrid_identity_name": NAME, "aws_hybrid_identity_region": C.REGION,
                 "ssm_activation_name": NAME, "ssm_activation_region": C.REGION, "ssm_activation_planned_nodes": 2,
                 "ansible_python_interpreter": str(BIN / "python")},
        "roles": [{"role": "hybrid.onboard.aws_hybrid_identity"}, {"role": "hybrid.onboard.ssm_activation"}],
    }], sort_keys=False))
    (user_dir / "hosts.yml").write_text("all:\n  hosts:\n    localhost:\n      ansible_connection: local\n")
    env = outside_env(user_dir / "collections", {**C.controller_env(), **aws_only})
    argv = [BIN / "ansible-playbook", "-i", "hosts.yml", "onboard.yml"]
    first = run(argv, user_dir, env, timeout=600)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    assert parse_recap(first.stdout)["localhost"]["changed"] > 0
    second = run(argv, user_dir, env, timeout=600)
    assert second.returncode == 0, second.stdout[-4000:]
    assert parse_recap(second.stdout)["localhost"]["changed"] == 0, second.stdout[-4000:]

    session = dict(endpoint_url=aws_only["AWS_ENDPOINT_URL"], region_name=C.REGION,
                   aws_access_key_id=C.ACCESS_KEY, aws_secret_access_key=C.SECRET_KEY)
    role = boto3.client("iam", **session).get_role(RoleName=f"{NAME}-ssm-hybrid")["Role"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "ssm.amazonaws.com"}
    parameter = boto3.client("ssm", **session).get_parameter(Name=f"/hybrid-onboard/{NAME}/activation")["Parameter"]
    assert parameter["Type"] == "SecureString"


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_installs_from_git_without_galaxy(tmp_path):
    """`ansible-galaxy collection install git+file://...` installs the committed collection."""
    env = outside_env(tmp_path / "collections")
    installed = run([BIN / "ansible-galaxy", "collection", "install", "--offline", "-p", tmp_path / "collections",
                     f"git+file://{ROOT}"], tmp_path, env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    root = tmp_path / "collections" / "ansible_collections" / "hybrid" / "onboard"
    assert (root / "MANIFEST.json").is_file() and (root / "plugins" / "modules" / "ssm_activation.py").is_file()
    doc = run([BIN / "ansible-doc", "hybrid.onboard.ssm_activation"], tmp_path, env)
    assert doc.returncode == 0 and "hybrid.onboard.ssm_activation" in doc.stdout, doc.stderr
