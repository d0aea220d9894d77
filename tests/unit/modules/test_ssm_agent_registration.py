"""ssm_agent_registration run as Ansible runs it, with the lab's amazon-ssm-agent stand-in as the agent binary,
registering for real against the in-process emulator (activations created there with boto3). The registration it
leaves is read back with ssm_agent_registration_info (tested on its own in test_ssm_agent_registration_info.py).

The stand-in (tests/lab/agents/src/ssm_agent.py) writes its files under ``HYBRID_LAB_AGENT_ROOT`` and talks to
``HYBRID_LAB_AGENT_ENDPOINT_URL``; run_module hands the test's environment to the module, which hands it to the
agent. systemctl is a fake on PATH that records its calls, so nothing on this machine is started or stopped.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

MODULE = "ssm_agent_registration"
INFO = "ssm_agent_registration_info"
SRC = Path(__file__).resolve().parents[2] / "lab" / "agents" / "src"
REGION = "eu-west-1"
SERVICE = "amazon-ssm-agent-test.service"
CODE = "NotTheRealCode0000001"


# --- a host in a temp dir: the agent stand-in, its data dir, a fake systemctl ----------------------------------


class Host:
    def __init__(self, root: Path):
        self.root = root
        self.data_dir = root / "var/lib/amazon/ssm"
        self.agent = root / "usr/bin/amazon-ssm-agent"
        self.vault = self.data_dir / "Vault/Store/RegistrationKey"
        self.registration_file = self.data_dir / "registration"

    def install_agent(self):
        self.agent.parent.mkdir(parents=True, exist_ok=True)
        self.agent.write_text(
            f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(SRC)!r})\nimport ssm_agent\n"
            "sys.exit(ssm_agent.main())\n"
        )
        self.agent.chmod(0o755)
        return self

    def vault_id(self):
        return json.loads(self.vault.read_text())["instanceID"] if self.vault.exists() else None

    def args(self, **extra):
        base = {"agent_path": str(self.agent), "data_dir": str(self.data_dir), "stop_service": False}
        base.update(extra)
        return base

    def info_args(self):
        return {"agent_path": str(self.agent), "data_dir": str(self.data_dir)}


@pytest.fixture
def new_host(tmp_path, monkeypatch, emulator):
    """``new_host()``: a fresh host root with the agent installed; the environment points the agent at it."""

    def make(install=True):
        host = Host(tmp_path / f"host-{uuid.uuid4().hex[:6]}")
        host.root.mkdir()
        if install:
            host.install_agent()
        monkeypatch.setenv("HYBRID_LAB_AGENT_ROOT", str(host.root))
        monkeypatch.setenv("HYBRID_LAB_AGENT_ENDPOINT_URL", emulator.url)
        return host

    return make


@pytest.fixture
def host(new_host):
    return new_host()


@pytest.fixture
def systemctl(tmp_path, monkeypatch):
    """A fake systemctl first on PATH: records its calls; the unit's state lives in a file."""
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    calls, state = tmp_path / "systemctl.calls", tmp_path / "systemctl.state"
    script = bindir / "systemctl"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> "{calls}"\n'
        'case "$1" in\n'
        f'  is-active) s=$(cat "{state}" 2>/dev/null || echo inactive); echo "$s"; [ "$s" = active ];;\n'
        f'  stop) echo inactive > "{state}";;\n'
        f'  start) echo active > "{state}";;\n'
        "esac\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")

    class Fake:
        def set_state(self, value):
            state.write_text(value + "\n")

        def state(self):
            return state.read_text().strip() if state.exists() else "inactive"

        def calls(self):
            return calls.read_text().splitlines() if calls.exists() else []

    return Fake()


@pytest.fixture(scope="module")
def hybrid_role(emulator):
    iam = emulator.client("iam")
    name = f"reg-role-{uuid.uuid4().hex[:8]}"
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ssm.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    return name


@pytest.fixture
def activation(emulator, hybrid_role):
    """``activation(limit=5, expires_in=None)`` -> (id, code); registrations(id) counts what AWS saw."""
    ssm = emulator.client("ssm")
    made = []

    def create(limit=5, expires_in=None):
        kwargs = {"IamRole": hybrid_role, "RegistrationLimit": limit}
        if expires_in is not None:
            kwargs["ExpirationDate"] = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=expires_in)
        act = ssm.create_activation(**kwargs)
        made.append(act["ActivationId"])
        return act["ActivationId"], act["ActivationCode"]

    create.registrations = lambda act_id: ssm.describe_activations(
        Filters=[{"FilterKey": "ActivationIds", "FilterValues": [act_id]}]
    )["ActivationList"][0]["RegistrationsCount"]
    create.instances = lambda: {i["InstanceId"] for i in ssm.describe_instance_information()["InstanceInformationList"]}
    yield create
    for act_id in made:
        ssm.delete_activation(ActivationId=act_id)


def register_args(host, act, **extra):
    return host.args(activation_id=act[0], activation_code=act[1], region=REGION, **extra)


def assert_no_secret(result, code, host=None):
    text = json.dumps(result)
    assert code not in text
    assert "privateKey" not in text and "PRIVATE KEY" not in text
    if host is not None and host.vault.exists():
        assert json.loads(host.vault.read_text())["privateKey"] not in text


def warnings(result):
    """The warnings' texts (ansible-core 2.19 returns them as structured events when run directly)."""
    found = []
    for warning in result.get("warnings") or []:
        found.append(warning if isinstance(warning, str) else warning.get("event", {}).get("msg", str(warning)))
    return found


# --- the registration it leaves, as ssm_agent_registration_info reads it ------------------------------------


def test_info_after_clear_sees_the_stale_registration_file(run_module, host, activation):
    act = activation()
    registered = run_module(MODULE, register_args(host, act))
    assert registered["changed"] is True, registered
    info = run_module(INFO, host.info_args())
    assert info["changed"] is False and info["registration_file_stale"] is False
    assert {key: info[key] for key in ("registered", "instance_id", "region", "registration_file")} == {
        key: registered[key] for key in ("registered", "instance_id", "region", "registration_file")
    }

    cleared = subprocess.run(
        [str(host.agent), "-register", "-clear"], capture_output=True, text=True, env=os.environ.copy(), check=False
    )
    assert cleared.returncode == 0, cleared.stderr
    info = run_module(INFO, host.info_args())
    assert info["registered"] is False and info["instance_id"] is None
    assert info["registration_file"] == {"instance_id": registered["instance_id"], "region": REGION}
    assert info["registration_file_stale"] is True

    # The stale file does not make the module believe the host is registered: it registers again.
    again = run_module(MODULE, register_args(host, act))
    assert again["changed"] is True and again["instance_id"] != registered["instance_id"]
    assert again["registration_file_stale"] is False and again["previous_instance_id"] is None


# --- registering ----------------------------------------------------------------------------------------------


def test_check_then_register_then_nothing_to_do(run_module, host, activation, tools):
    act = activation()
    checked = run_module(MODULE, register_args(host, act), check=True)
    assert checked.get("failed") is not True, checked
    assert checked["changed"] is True and checked["registered"] is False
    assert not host.vault.exists() and activation.registrations(act[0]) == 0

    result = run_module(MODULE, register_args(host, act), diff=True)
    assert result.get("failed") is not True, result
    assert result["changed"] is True and result["registered"] is True
    assert result["instance_id"].startswith("mi-") and result["instance_id"] == host.vault_id()
    assert result["region"] == REGION and result["previous_instance_id"] is None
    assert result["registration_file"] == {"instance_id": result["instance_id"], "region": REGION}
    assert "Successfully registered" in result["agent_output"]
    assert result["diff"] == {
        "before": {"instance_id": None, "region": None},
        "after": {"instance_id": result["instance_id"], "region": REGION},
    }
    assert result["instance_id"] in activation.instances()
    assert activation.registrations(act[0]) == 1
    assert_no_secret(result, act[1], host)
    assert set(result) - tools.STANDARD_KEYS == tools.return_keys(MODULE) - {"failure_reason"}

    for check in (True, False):
        again = run_module(MODULE, register_args(host, act), check=check)
        assert again["changed"] is False and again["instance_id"] == result["instance_id"], again
    assert activation.registrations(act[0]) == 1  # the agent was not run again


def test_force_registers_again_and_names_the_old_instance(run_module, host, activation):
    act = activation()
    first = run_module(MODULE, register_args(host, act))
    forced = run_module(MODULE, register_args(host, act, force=True))
    assert forced["changed"] is True and forced["instance_id"] != first["instance_id"]
    assert forced["previous_instance_id"] == first["instance_id"]
    assert any(first["instance_id"] in w and "deregistered" in w for w in warnings(forced))
    assert activation.registrations(act[0]) == 2


def test_registration_in_another_region_is_replaced(run_module, host, activation):
    host.vault.parent.mkdir(parents=True)
    host.vault.write_text(json.dumps({"instanceID": "mi-00000000000000001", "region": "us-east-1", "privateKey": "x"}))
    act = activation()
    result = run_module(MODULE, register_args(host, act))
    assert result["changed"] is True and result["region"] == REGION
    assert result["previous_instance_id"] == "mi-00000000000000001"


def test_the_service_is_stopped_first_and_left_stopped(run_module, host, activation, systemctl):
    systemctl.set_state("active")
    result = run_module(MODULE, register_args(host, act := activation(), stop_service=True, service_name=SERVICE))
    assert result["changed"] is True, result
    assert systemctl.calls() == [f"is-active {SERVICE}", f"stop {SERVICE}"]
    assert systemctl.state() == "inactive"  # the role starts it, after its configuration
    assert activation.registrations(act[0]) == 1


def test_an_inactive_service_is_not_stopped(run_module, host, activation, systemctl):
    result = run_module(MODULE, register_args(host, activation(), stop_service=True, service_name=SERVICE))
    assert result["changed"] is True, result
    assert systemctl.calls() == [f"is-active {SERVICE}"]


def test_a_failed_registration_starts_the_stopped_service_again(run_module, host, activation, systemctl):
    systemctl.set_state("active")
    act_id, _code = activation()
    result = run_module(
        MODULE, register_args(host, (act_id, "WrongCode-WrongCode-456"), stop_service=True, service_name=SERVICE)
    )
    assert result["failed"] is True
    assert systemctl.calls() == [f"is-active {SERVICE}", f"stop {SERVICE}", f"start {SERVICE}"]
    assert systemctl.state() == "active"


# --- failures -------------------------------------------------------------------------------------------------


def test_wrong_code_is_invalid(run_module, host, activation):
    act_id, _code = activation()
    result = run_module(MODULE, register_args(host, (act_id, "WrongCode-WrongCode-123")))
    assert result["failed"] is True and result["failure_reason"] == "invalid"
    assert f"Registration with activation {act_id} in {REGION} failed (invalid" in result["msg"]
    assert "Activation ID or code is not valid" in result["msg"]
    assert "check activation_id and activation_code" in result["msg"]
    assert result["registered"] is False and not host.vault.exists()
    assert_no_secret(result, "WrongCode-WrongCode-123")


def test_exhausted_activation_says_rotate(run_module, new_host, activation):
    act = activation(limit=1)
    assert run_module(MODULE, register_args(new_host(), act))["changed"] is True
    second = new_host()
    result = run_module(MODULE, register_args(second, act))
    assert result["failed"] is True and result["failure_reason"] == "exhausted"
    assert "registration limit of 1" in result["msg"]
    assert "rotate the activation: ansible-playbook playbooks/activation.yml" in result["msg"]
    assert not second.vault.exists()
    assert_no_secret(result, act[1])


def test_expired_activation_says_rotate(run_module, host, activation):
    act = activation(expires_in=2)
    time.sleep(2.5)
    result = run_module(MODULE, register_args(host, act))
    assert result["failed"] is True and result["failure_reason"] == "expired"
    assert "Activation has expired" in result["msg"]
    assert "rotate the activation: ansible-playbook playbooks/activation.yml" in result["msg"]
    assert_no_secret(result, act[1])


def test_unreachable_endpoint_says_run_preflight(run_module, host, activation, monkeypatch):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there: connection refused
    monkeypatch.setenv("HYBRID_LAB_AGENT_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    act = activation()
    result = run_module(MODULE, register_args(host, act))
    assert result["failed"] is True and result["failure_reason"] == "unreachable"
    assert "connection refused" in result["msg"] and "playbooks/preflight.yml" in result["msg"]
    assert activation.registrations(act[0]) == 0
    assert_no_secret(result, act[1])


def test_missing_agent_fails_naming_the_path_but_check_mode_only_warns(run_module, new_host, activation):
    host = new_host(install=False)
    act = activation()
    result = run_module(MODULE, register_args(host, act))
    assert result["failed"] is True
    assert f"not installed at {host.agent} (agent_path): install the agent first" in result["msg"]
    checked = run_module(MODULE, register_args(host, act), check=True)
    assert checked["changed"] is True and checked["installed"] is False
    assert any("not installed" in w for w in warnings(checked))
    assert run_module(INFO, host.info_args())["installed"] is False


def test_the_code_is_redacted_from_the_agents_output(run_module, host, tmp_path):
    # An agent that echoes its arguments back (some error paths of real tools do).
    noisy = tmp_path / "noisy-agent"
    noisy.write_text('#!/bin/sh\necho "register $*"\necho "bad code $3" >&2\nexit 1\n')
    noisy.chmod(0o755)
    code = "Secr3tCodeValue00001"
    act_id = str(uuid.uuid4())
    result = run_module(
        MODULE,
        host.args(activation_id=act_id, activation_code=code, region=REGION, agent_path=str(noisy)),
    )
    assert result["failed"] is True and result["failure_reason"] == "other"
    assert code not in json.dumps(result) and code.lower() not in json.dumps(result).lower()
    # Redacted by the module itself (Ansible's own no_log masking would print ********).
    assert f"-code <activation code> -id {act_id}" in result["agent_output"]
    assert "bad code <activation code>" in result["msg"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            {"activation_id": "NotAUuidButACode01", "activation_code": CODE, "region": REGION},
            "activation_id must be the activation's id, a UUID",
        ),
        (
            {"activation_id": str(uuid.uuid4()), "activation_code": CODE, "region": "Ireland"},
            "region must be an AWS region like eu-west-1, got 'Ireland'",
        ),
        (
            {"activation_id": str(uuid.uuid4()), "activation_code": CODE},
            "missing required arguments: region",
        ),
        (
            {"activation_id": str(uuid.uuid4()), "activation_code": "short", "region": REGION},
            "activation_code must be the activation's code, 20 to 250 characters",
        ),
    ],
)
def test_bad_input_fails_before_the_agent_runs(run_module, host, args, expected):
    result = run_module(MODULE, host.args(**args))
    assert result["failed"] is True and expected in result["msg"], result["msg"]
    assert "NotAUuidButACode01" not in result["msg"]
    assert not host.vault.exists() and not (host.root / "var/log").exists()  # the agent never ran


@pytest.mark.parametrize("state", ["info", "registered"])
def test_the_state_option_is_gone(run_module, host, activation, state):
    # Reading is ssm_agent_registration_info's job; this module always registers (CHANGELOG, Unreleased).
    act = activation()
    result = run_module(MODULE, register_args(host, act, state=state))
    assert result["failed"] is True and "Unsupported parameters" in result["msg"] and "state" in result["msg"]
    assert not host.vault.exists() and activation.registrations(act[0]) == 0


# --- pure helpers ---------------------------------------------------------------------------------------------


@pytest.fixture
def mod(plugin):
    return plugin("modules", MODULE)


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        (
            "Registration failed due to error registering the instance with AWS SSM. "
            "InvalidActivation: Activation 1a2b has reached its registration limit of 10.",
            "exhausted",
        ),
        (
            "Registration failed due to error registering the instance with AWS SSM. "
            "InvalidActivation: Activation has expired.",
            "expired",
        ),
        (
            "Registration failed due to error registering the instance with AWS SSM. "
            "InvalidActivation: Activation ID or code is not valid.",
            "invalid",
        ),
        ("InvalidActivationId: The activation ID x is not valid.", "invalid"),
        (
            'RequestError: send request failed\ncaused by: Post "https://ssm.eu-west-1.amazonaws.com/": '
            "dial tcp: lookup ssm.eu-west-1.amazonaws.com: no such host",
            "unreachable",
        ),
        ("caused by: Post: tls: failed to verify certificate: x509: certificate has expired", "unreachable"),
        ("dial tcp 10.0.1.10:443: i/o timeout", "unreachable"),
        ("InvalidSignatureException: Signature expired: 20240101T000000Z is now earlier than ...", "other"),
        ("InstanceLimitExceeded: You have reached the standard-tier limit of 1000 managed instances", "other"),
        ("something else entirely", "other"),
    ],
)
def test_failure_reasons(mod, output, reason):
    assert mod.classify(output)[0] == reason


def test_clock_and_tier_failures_get_their_own_hint(mod):
    assert "NTP" in mod.classify("Signature expired: 20240101T000000Z")[1]
    assert "advanced" in mod.classify("InstanceLimitExceeded: standard-tier limit")[1]


def test_the_module_is_python36_syntax(mod):
    ast.parse(Path(mod.__file__).read_text(), feature_version=(3, 6))


# --- through Ansible --------------------------------------------------------------------------------------------


def test_through_ansible_registers_without_logging_the_code(run_module, host, activation):
    act = activation()
    result = run_module(MODULE, register_args(host, act), via="ansible")
    assert result.get("failed") is not True, result
    assert result["changed"] is True and result["instance_id"] == host.vault_id()
    assert result["invocation"]["module_args"]["activation_code"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert_no_secret(result, act[1], host)
