"""ssm_agent_registration_info run as Ansible runs it, against a host laid out in a temp dir: the agent's Vault and
registration file written as the agent writes them, a stand-in agent binary and a fake systemctl first on PATH
that record any call, so a test can tell the module ran nothing and changed nothing.

(ssm_agent_registration's tests read the registration a real registration leaves with this module.)
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import stat
import sys
from pathlib import Path

import pytest

MODULE = "ssm_agent_registration_info"
REGION = "eu-west-1"
INSTANCE = "mi-0123456789abcdef0"
PRIVATE_KEY = "MIIEsecretsecretPRIVATE"


class Host:
    def __init__(self, root: Path):
        self.root = root
        self.data_dir = root / "var/lib/amazon/ssm"
        self.agent = root / "usr/bin/amazon-ssm-agent"
        self.vault = self.data_dir / "Vault/Store/RegistrationKey"
        self.registration_file = self.data_dir / "registration"
        self.calls = root.parent / "calls.log"  # outside the host's tree, so the snapshot does not see it

    def install_agent(self):
        """An agent binary that only records that it ran."""
        self.agent.parent.mkdir(parents=True, exist_ok=True)
        self.agent.write_text(f'#!/bin/sh\necho "amazon-ssm-agent $*" >> "{self.calls}"\n')
        self.agent.chmod(0o755)
        return self

    def register(self, instance_id=INSTANCE, region=REGION, file_id=None, file_region=None, file=True):
        """Vault and registration file as the agent leaves them (the file may say otherwise: file_id, file_region)."""
        self.vault.parent.mkdir(parents=True, exist_ok=True)
        self.vault.write_text(json.dumps({
            "instanceID": instance_id, "region": region, "privateKey": PRIVATE_KEY, "privateKeyType": "Rsa",
        }))
        if file:
            self.write_registration_file(file_id or instance_id, file_region or region)
        return self

    def write_registration_file(self, instance_id, region):
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.registration_file.write_text(json.dumps({"ManagedInstanceID": instance_id, "Region": region}))

    def args(self, **extra):
        return dict({"agent_path": str(self.agent), "data_dir": str(self.data_dir)}, **extra)

    def snapshot(self):
        """Every path under the host's root with its type, mode, size, mtime and content: what a change would touch."""
        found = {}
        for path in sorted(self.root.rglob("*")):
            info = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if stat.S_ISREG(info.st_mode) else None
            found[str(path.relative_to(self.root))] = (stat.S_IFMT(info.st_mode), stat.S_IMODE(info.st_mode),
                                                       info.st_size, info.st_mtime_ns, digest)
        return found


@pytest.fixture
def host(tmp_path, monkeypatch):
    root = tmp_path / "host"
    root.mkdir()
    made = Host(root).install_agent()
    # A systemctl first on PATH that records any call: reading must not touch the agent's unit.
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    (bindir / "systemctl").write_text(f'#!/bin/sh\necho "systemctl $*" >> "{made.calls}"\n')
    (bindir / "systemctl").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return made


def warnings(result):
    """The warnings' texts (ansible-core 2.19 returns them as structured events when run directly)."""
    return [w if isinstance(w, str) else w.get("event", {}).get("msg", str(w)) for w in result.get("warnings") or []]


def run_and_check_nothing_changed(run_module, host, check=False, **extra):
    before = host.snapshot()
    result = run_module(MODULE, host.args(**extra), check=check)
    assert host.snapshot() == before, "the module changed the host's files"
    assert not host.calls.exists(), f"the module ran a command: {host.calls.read_text()}"
    assert result.get("changed") is False, result
    return result


# --- what it returns ------------------------------------------------------------------------------------------


def test_a_host_that_never_registered(run_module, host, tools):
    result = run_and_check_nothing_changed(run_module, host)
    assert result.get("failed") is not True, result
    assert result["registered"] is False and result["instance_id"] is None and result["region"] is None
    assert result["registration_file"] is None and result["registration_file_stale"] is False
    assert result["installed"] is True and result["agent_path"] == str(host.agent) and result["snap"] is False
    assert result["service_name"] == "amazon-ssm-agent.service"
    # Every key of RETURN, and nothing else.
    assert set(result) - tools.STANDARD_KEYS == tools.return_keys(MODULE)


def test_a_registered_host_without_its_private_key(run_module, host, tools):
    host.register()
    result = run_and_check_nothing_changed(run_module, host)
    assert result["registered"] is True and result["instance_id"] == INSTANCE and result["region"] == REGION
    assert result["registration_file"] == {"instance_id": INSTANCE, "region": REGION}
    assert result["registration_file_stale"] is False
    assert PRIVATE_KEY not in json.dumps(result) and "privateKey" not in json.dumps(result)
    assert set(result) - tools.STANDARD_KEYS == tools.return_keys(MODULE)


@pytest.mark.parametrize("check", [False, True], ids=["run", "check_mode"])
def test_check_mode_reads_the_same_and_changes_nothing(run_module, host, check):
    host.register()
    normal = run_and_check_nothing_changed(run_module, host)
    result = run_and_check_nothing_changed(run_module, host, check=check)
    assert {k: v for k, v in result.items() if k != "invocation"} == {
        k: v for k, v in normal.items() if k != "invocation"
    }
    assert result["registered"] is True


@pytest.mark.parametrize(
    ("layout", "registered", "file"),
    [
        # amazon-ssm-agent -register -clear empties the Vault but leaves the registration file.
        ({"file": False, "file_only": (INSTANCE, REGION)}, False, {"instance_id": INSTANCE, "region": REGION}),
        ({"file_id": "mi-00000000000000001"}, True, {"instance_id": "mi-00000000000000001", "region": REGION}),
        ({"file_region": "us-east-1"}, True, {"instance_id": INSTANCE, "region": "us-east-1"}),
    ],
    ids=["cleared", "other_id", "other_region"],
)
def test_a_registration_file_that_disagrees_with_the_vault_is_stale(run_module, host, layout, registered, file):
    file_only = layout.pop("file_only", None)
    if file_only:
        host.write_registration_file(*file_only)
    else:
        host.register(**layout)
    result = run_and_check_nothing_changed(run_module, host)
    assert result["registered"] is registered
    assert result["registration_file"] == file and result["registration_file_stale"] is True


def test_a_corrupt_vault_is_not_registered_and_warns(run_module, host):
    host.vault.parent.mkdir(parents=True)
    host.vault.write_text("{not json")
    result = run_and_check_nothing_changed(run_module, host)
    assert result["registered"] is False and result["instance_id"] is None
    assert any("RegistrationKey is not JSON" in w and "treated as not registered" in w for w in warnings(result))


def test_a_corrupt_registration_file_is_stale_and_warns(run_module, host):
    host.register(file=False)
    host.registration_file.write_text("[1, 2]")
    result = run_and_check_nothing_changed(run_module, host)
    assert result["registered"] is True and result["registration_file"] is None
    assert result["registration_file_stale"] is True
    assert any("registration is not a JSON object" in w for w in warnings(result))


def test_a_vault_it_cannot_read_fails_rather_than_guess(run_module, host):
    # A directory where the Vault's file belongs: unreadable whoever runs the test (root reads any mode-000 file).
    host.vault.mkdir(parents=True)
    result = run_module(MODULE, host.args())
    assert result["failed"] is True
    assert "cannot read" in result["msg"] and "needs root: run the task with become: true" in result["msg"]
    assert "registered" not in result


def test_a_missing_agent_is_reported_not_an_error(run_module, host):
    result = run_and_check_nothing_changed(run_module, host, agent_path=str(host.root / "nowhere/amazon-ssm-agent"))
    assert result.get("failed") is not True, result
    assert result["installed"] is False and result["registered"] is False


def test_it_takes_no_registration_options(run_module, host):
    result = run_module(MODULE, host.args(state="registered"))
    assert result["failed"] is True and "Unsupported parameters" in result["msg"]
    assert not host.calls.exists()


# --- through Ansible --------------------------------------------------------------------------------------------


def test_through_ansible_in_check_mode(run_module, host, tools):
    # Ansible packs the module with its module_utils (hybrid_registration) and runs it: the import must resolve.
    host.register()
    before = host.snapshot()
    result = run_module(MODULE, host.args(), check=True, via="ansible")
    assert result.get("failed") is not True, result
    assert result["changed"] is False and result["instance_id"] == INSTANCE
    assert tools.return_keys(MODULE) <= set(result)  # the json callback adds its own keys (action, ...)
    assert host.snapshot() == before and not host.calls.exists()


# --- shared host-side code (module_utils/hybrid_registration.py) ------------------------------------------------


@pytest.fixture
def shared(plugin):
    return plugin("module_utils", "hybrid_registration")


def test_snap_agent_is_preferred_when_present(shared, tmp_path):
    snap = tmp_path / "snap/amazon-ssm-agent/current/amazon-ssm-agent"
    assert shared.detect(snap_agent=str(snap)) == ("/usr/bin/amazon-ssm-agent", "amazon-ssm-agent.service", False)
    snap.parent.mkdir(parents=True)
    snap.write_text("")
    assert shared.detect(snap_agent=str(snap)) == (str(snap), "snap.amazon-ssm-agent.amazon-ssm-agent.service", True)
    assert shared.detect("/opt/agent", "custom.service", snap_agent=str(snap)) == (
        "/opt/agent", "custom.service", False
    )
    assert shared.detect("/snap/amazon-ssm-agent/current/amazon-ssm-agent", snap_agent=str(snap))[1:] == (
        "snap.amazon-ssm-agent.amazon-ssm-agent.service",
        True,
    )


def test_both_modules_and_their_shared_code_are_python36_syntax(shared, plugin):
    for module in (shared, plugin("modules", MODULE), plugin("modules", "ssm_agent_registration")):
        ast.parse(Path(module.__file__).read_text(), feature_version=(3, 6))


def test_the_modules_import_only_the_standard_library_and_ansible(shared, plugin):
    for module in (shared, plugin("modules", MODULE), plugin("modules", "ssm_agent_registration")):
        for node in ast.walk(ast.parse(Path(module.__file__).read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            )
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or top in ("ansible", "ansible_collections", "__future__"), name
                if top == "ansible_collections":
                    assert name.startswith("ansible_collections.hybrid.onboard.plugins.module_utils."), name
