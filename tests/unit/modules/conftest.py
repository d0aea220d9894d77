"""Fixtures for testing our AWS modules against the in-process lab emulator, running the modules for real.

- ``emulator``: the session's in-process AWS emulator (same class as tests/unit/lab's fixture).
- ``run_module(name, args, check=False, diff=False, via="direct")``: runs ``plugins/modules/<name>.py`` as
  ``__main__`` the way Ansible's module runner does (ANSIBLE_MODULE_ARGS JSON with the ``legacy`` profile, our
  collection importable from ``collections/``), pointed at the emulator through ``AWS_ENDPOINT_URL``;
  returns the module's JSON result (``failed`` set when it failed). ``direct`` runs it inside this process,
  with the run's own environment, working directory and stdout, and Ansible's per-run globals reset before
  and after: a child Python per call spent most of the unit suite's time importing boto3 and parsing the same
  botocore service models again. ``via="process"`` runs it in a child Python instead (set
  ``HYBRID_UNIT_MODULE_RUNNER=process`` to run every direct call that way); ``via="ansible"`` goes through
  ``ansible localhost -m <name>`` (AnsiballZ, argument handling, ``--check``/``--diff``, the module's action
  plugin), after which ``run_module.displayed`` holds the lines displayed before the JSON result.
- ``lab_vpc``: a fresh VPC (DNS support and hostnames on) with subnets in three AZs plus a second subnet
  in the first AZ, so tests never collide with the seeded lab VPC or with each other.
- ``tools``: helpers for assertions (``return_keys(name)``: RETURN's top-level keys; ``mutations(calls)``:
  the calls of ``emulator.calls()`` that change something; ``total_calls``; ``make_vpc(emulator)``;
  ``STANDARD_KEYS``). Fixtures, not imports: every test folder has a module called ``conftest``.
- ``stand_ins(scripts, state_env)``: host commands (dpkg, systemctl, ...) as shell scripts first on PATH, with a
  state directory (holding an empty ``.log``) named by the environment variable ``state_env``; returns that
  directory. For host-side modules, so the test machine's own package database and units are never touched.

moto keeps its state in process-global backends, so every test creates its own resources.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import runpy
import subprocess
import sys
import traceback
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
MODULES = ROOT / "plugins" / "modules"
# collections/ansible_collections/hybrid/onboard links back to the repository: the collection's import root.
COLLECTIONS = ROOT / "collections"
LAB_DIR = ROOT / "tests" / "lab"
if str(LAB_DIR) not in sys.path:
    sys.path.insert(0, str(LAB_DIR))
UNIT_LAB = ROOT / "tests" / "unit" / "lab"
if str(UNIT_LAB.parent) not in sys.path:
    sys.path.insert(0, str(UNIT_LAB.parent))

import labconst  # noqa: E402
from lab.conftest import LabEmulator  # noqa: E402

# Module results that Ansible adds, not the module's own RETURN keys.
STANDARD_KEYS = {"changed", "diff", "invocation", "warnings", "deprecations", "failed", "msg", "exception"}

# Runs a module file as Ansible's module runner would, with the collection (its module_utils) importable.
_RUNNER = """
import runpy, sys
sys.path.insert(0, sys.argv[1])
module_path, args_path = sys.argv[2], sys.argv[3]
sys.argv = [module_path, args_path]
runpy.run_path(module_path, run_name="__main__")
"""


@pytest.fixture(scope="session")
def emulator():
    """The in-process emulator on a free loopback port, faults off whatever the environment says."""
    from emulator import server
    from emulator.middleware import FaultConfig

    handle = server.start_in_thread(port=0, faults=FaultConfig())
    try:
        yield LabEmulator(handle.url, handle)
    finally:
        handle.stop()


@pytest.fixture(scope="session", autouse=True)
def _one_botocore_loader():
    """In-process module runs share one botocore data loader, so each service model is parsed once per session.

    Each run builds its own boto3 session, as under Ansible; only the loader (a read-only cache of botocore's
    JSON models, which one session's clients already share) is shared between them.
    """
    import functools

    import botocore.session

    original = botocore.session.create_loader
    botocore.session.create_loader = functools.lru_cache(maxsize=None)(original)
    try:
        yield
    finally:
        botocore.session.create_loader = original


def aws_env(emulator: LabEmulator, region: str = labconst.REGION) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "EC2_", "BOTO_"))}
    env.update(
        AWS_ENDPOINT_URL=emulator.url,
        AWS_REGION=region,
        AWS_DEFAULT_REGION=region,
        AWS_ACCESS_KEY_ID=labconst.ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=labconst.SECRET_KEY,
        # Exact call counts: botocore must not retry behind the module's back.
        AWS_MAX_ATTEMPTS="1",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
    )
    return env


class ModuleRunner:
    def __init__(self, emulator: LabEmulator, tmp_path: Path) -> None:
        self.emulator = emulator
        self.tmp_path = tmp_path
        # The lines the last via="ansible" run displayed before its JSON result (an action plugin's progress).
        self.displayed: list[str] = []

    def __call__(
        self,
        name: str,
        args: dict[str, Any],
        check: bool = False,
        diff: bool = False,
        via: str = "direct",
        region: str = labconst.REGION,
    ) -> dict[str, Any]:
        env = aws_env(self.emulator, region)
        if via == "ansible":
            return self._via_ansible(name, args, check, diff, env)
        module_args = dict(args, _ansible_check_mode=check, _ansible_diff=diff)
        if via == "direct" and os.environ.get("HYBRID_UNIT_MODULE_RUNNER", "in-process") != "process":
            return _parse(*_run_in_process(MODULES / f"{name}.py", module_args, env, self.tmp_path))
        if via not in ("direct", "process"):
            raise ValueError(f"via must be direct, process or ansible, not {via!r}")
        args_file = self.tmp_path / f"args-{uuid.uuid4().hex}.json"
        args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": module_args}))
        proc = subprocess.run(
            [sys.executable, "-c", _RUNNER, str(COLLECTIONS), str(MODULES / f"{name}.py"), str(args_file)],
            capture_output=True,
            text=True,
            env=env,
            cwd=str(self.tmp_path),
            timeout=300, check=False,
        )
        return _parse(proc.stdout, proc.stderr, proc.returncode)

    def _via_ansible(self, name, args, check, diff, env):
        # ansible.cfg enables no extra callbacks (an empty list, which ad-hoc runs cannot load): name the json one.
        env = dict(
            env,
            ANSIBLE_LOAD_CALLBACK_PLUGINS="true",
            ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
            ANSIBLE_CALLBACKS_ENABLED="ansible.posix.json",
        )
        cmd = [
            str(Path(sys.executable).parent / "ansible"),
            "localhost",
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
            "-m",
            name if "." in name else f"hybrid.onboard.{name}",
            "-a",
            json.dumps(args),
        ]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(ROOT), timeout=300, check=False)
        # The json callback writes one document at the end; lines an action plugin displays (progress of a wait)
        # come before it on the same stdout.
        start = 0 if proc.stdout.startswith("{") else proc.stdout.find("\n{") + 1
        self.displayed = proc.stdout[:start].splitlines()
        try:
            payload = json.loads(proc.stdout[start:])
            result = payload["plays"][0]["tasks"][0]["hosts"]["localhost"]
        except (ValueError, KeyError, IndexError) as exc:
            raise AssertionError(f"ansible gave no JSON result: {proc.stdout}\n{proc.stderr}") from exc
        return result


def _run_in_process(module_path: Path, module_args: dict[str, Any], env: dict[str, str], cwd: Path):
    """Run a module file as ``__main__`` here; return (stdout, stderr, exit code) as a child's would be."""
    from ansible.module_utils import _internal, basic
    from ansible.module_utils.common import warnings

    saved_env, saved_cwd, saved_side = dict(os.environ), os.getcwd(), _internal.is_controller
    # This process imported controller code (filters, ansible.errors), which marks it as the controller; a module
    # run on a target returns its warnings in its result instead of displaying them.
    _internal.is_controller = False
    out, err, code = io.StringIO(), io.StringIO(), 0
    basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": module_args}).encode()
    basic._ANSIBLE_PROFILE = "legacy"
    warnings._global_warnings.clear()
    warnings._global_deprecations.clear()
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                runpy.run_path(str(module_path), run_name="__main__")
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except Exception:  # what a child would die of: its traceback on stderr, exit code 1
                traceback.print_exc()
                code = 1
    finally:
        _internal.is_controller = saved_side
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        basic._ANSIBLE_ARGS = basic._ANSIBLE_PROFILE = basic._PARSED_MODULE_ARGS = None
        warnings._global_warnings.clear()
        warnings._global_deprecations.clear()
    return out.getvalue(), err.getvalue(), code


def _parse(stdout: str, stderr: str, returncode: int) -> dict[str, Any]:
    # The module prints exactly one JSON document; anything before it is a warning from an import.
    start = stdout.find("{")
    try:
        result = json.loads(stdout[start:])
    except ValueError as exc:
        raise AssertionError(f"module gave no JSON (rc={returncode}):\n{stdout}\n{stderr}") from exc
    if returncode != 0:
        result.setdefault("failed", True)
    return result


@pytest.fixture
def run_module(emulator, tmp_path):
    return ModuleRunner(emulator, tmp_path)


def make_vpc(emulator: LabEmulator) -> dict[str, Any]:
    """A fresh VPC with DNS on: subnets in AZs a, b, c and a second one in a; two SGs; a route table."""
    ec2 = emulator.client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsSupport={"Value": True})
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    region = labconst.REGION
    subnets = {}
    for key, zone, cidr in (
        ("a", "a", "10.20.1.0/24"),
        ("b", "b", "10.20.2.0/24"),
        ("c", "c", "10.20.3.0/24"),
        ("a2", "a", "10.20.4.0/24"),
    ):
        subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone=f"{region}{zone}")
        subnets[key] = subnet["Subnet"]["SubnetId"]
    groups = [
        ec2.create_security_group(GroupName=f"ep-{uuid.uuid4().hex[:8]}", Description="test", VpcId=vpc_id)["GroupId"]
        for _i in range(2)
    ]
    route_table = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
    return {
        "vpc_id": vpc_id,
        "subnets": subnets,
        "sg": groups[0],
        "sg2": groups[1],
        "route_table": route_table,
        "region": region,
    }


@pytest.fixture
def lab_vpc(emulator):
    return make_vpc(emulator)


def return_keys(name: str) -> set[str]:
    """Top-level keys of a module's RETURN documentation (read from the file, not imported)."""
    from plugin_loader import load_plugin

    module = load_plugin("modules", name)
    return set(yaml.safe_load(module.RETURN))


def mutations(calls: dict[str, dict[str, int]]) -> dict[str, int]:
    """Calls that change something (anything but Describe*/List*/Get*), flattened over services."""
    return {
        f"{service}:{action}": count
        for service, actions in calls.items()
        for action, count in actions.items()
        if not action.startswith(("Describe", "List", "Get"))
    }


def total_calls(calls: dict[str, dict[str, int]]) -> int:
    return sum(count for actions in calls.values() for count in actions.values())


@pytest.fixture
def tools():
    return SimpleNamespace(
        STANDARD_KEYS=STANDARD_KEYS,
        return_keys=return_keys,
        mutations=mutations,
        total_calls=total_calls,
        make_vpc=make_vpc,
    )


@pytest.fixture
def stand_ins(tmp_path, monkeypatch):
    def install(scripts: dict[str, str], state_env: str) -> Path:
        bin_dir = tmp_path / "stand-in-bin"
        bin_dir.mkdir(exist_ok=True)
        for name, text in scripts.items():
            (bin_dir / name).write_text(text)
            (bin_dir / name).chmod(0o755)
        state = tmp_path / state_env.lower()
        state.mkdir()
        (state / ".log").write_text("")
        monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
        monkeypatch.setenv(state_env, str(state))
        return state

    return install


class Signer:
    """A throwaway GPG key in its own homedir (agent_package): its fingerprint, exported public key (armored and
    binary), and sign()."""

    def __init__(self, home: Path, uid: str, created: int | None = None, expire: str = "never"):
        self.home = home
        home.mkdir(mode=0o700)
        self.base = ["gpg", "--homedir", str(home), "--batch", "--no-tty"]
        self.base += ["--pinentry-mode", "loopback", "--passphrase", ""]
        self.faked = ["--faked-system-time", f"{created}!"] if created else []
        self._gpg(*self.faked, "--quick-generate-key", uid, "ed25519", "sign", expire)
        listing = self._gpg("--with-colons", "--list-secret-keys").stdout.decode()
        self.fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
        self.uid = uid
        self.binary_key = home / "key.gpg"
        self.binary_key.write_bytes(self._gpg("--export", self.fingerprint).stdout)
        self.armored_key = home / "key.asc"
        self.armored_key.write_bytes(self._gpg("--armor", "--export", self.fingerprint).stdout)

    def _gpg(self, *args):
        proc = subprocess.run([*self.base, *args], capture_output=True, check=False)
        assert proc.returncode == 0, proc.stderr.decode()
        return proc

    def sign(self, path: Path, output: Path | None = None, armor=False) -> Path:
        sig = output or path.with_name(path.name + ".sig")
        self._gpg(
            *self.faked,
            "--yes",
            "--local-user",
            self.fingerprint,
            "--digest-algo",
            "SHA256",
            *(["--armor"] if armor else []),
            "--detach-sign",
            "--output",
            str(sig),
            str(path),
        )
        return sig

    def close(self):
        subprocess.run(
            ["gpgconf", "--homedir", str(self.home), "--kill", "gpg-agent"], capture_output=True, check=False
        )


@pytest.fixture(scope="session")
def signers(tmp_path_factory):
    base = tmp_path_factory.mktemp("gpg")
    made = {name: Signer(base / name, f"{name} signer <{name}@example.test>") for name in ("aws", "other")}
    yield made
    for signer in made.values():
        signer.close()
