"""amazon-ssm-agent stand-in: CLI parsing, registration against the lab emulator, Vault and
registration-file behaviour (-y prompt, -clear), shared credentials, heartbeats and Run Command.

Runs the stand-in as a subprocess with ``HYBRID_LAB_AGENT_ROOT`` (a temp root dir) and
``HYBRID_LAB_AGENT_ENDPOINT_URL`` (the in-process emulator, regional Host header kept).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

LAB = Path(__file__).resolve().parents[3] / "tests" / "lab"
SRC = LAB / "agents" / "src"
for p in (LAB, SRC):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import labconst  # noqa: E402
import ssm_agent  # noqa: E402

AGENT = str(SRC / "ssm_agent.py")
REGION = labconst.REGION


def test_parse_args_go_flag_style():
    assert ssm_agent.parse_args(["-register", "-code", "C", "-id=I", "--region", "eu-west-1", "-y"]) == {
        "register": True,
        "code": "C",
        "id": "I",
        "region": "eu-west-1",
        "y": True,
    }
    assert ssm_agent.parse_args(["-fingerprint", "-similarityThreshold", "40"]) == {
        "fingerprint": True,
        "similarityThreshold": "40",
    }
    with pytest.raises(ssm_agent.UsageError, match="flag provided but not defined: -bogus"):
        ssm_agent.parse_args(["-bogus"])
    with pytest.raises(ssm_agent.UsageError, match="flag needs an argument: -code"):
        ssm_agent.parse_args(["-register", "-code"])


def _run(root, *args, stdin="", endpoint=None, extra_env=None):
    env = dict(os.environ, HYBRID_LAB_AGENT_ROOT=str(root))
    env.pop("HYBRID_LAB_AGENT_ENDPOINT_URL", None)
    if endpoint:
        env["HYBRID_LAB_AGENT_ENDPOINT_URL"] = endpoint
    env.update(extra_env or {})
    return subprocess.run(
        [sys.executable, AGENT, *args], input=stdin, capture_output=True, text=True, env=env, timeout=60, check=False
    )


def test_version_and_bad_flag(tmp_path):
    out = _run(tmp_path, "-version")
    assert out.returncode == 0 and out.stdout.strip() == f"SSM Agent version: {ssm_agent.version()}"
    bad = _run(tmp_path, "-nope")
    assert bad.returncode == 2 and "flag provided but not defined: -nope" in bad.stderr


def test_register_needs_code_id_region(tmp_path):
    out = _run(tmp_path, "-register", "-code", "x")
    assert out.returncode == 1 and "Usage of amazon-ssm-agent" in out.stderr


def test_register_connection_refused_reports_cause(tmp_path):
    out = _run(
        tmp_path,
        "-register",
        "-code",
        "c",
        "-id",
        "i",
        "-region",
        REGION,
        "-y",
        endpoint="http://127.0.0.1:9",
    )
    assert out.returncode == 1
    assert out.stdout.startswith("Registration failed due to error registering the instance with AWS SSM.")
    assert "connection refused" in out.stdout
    assert not (tmp_path / "var/lib/amazon/ssm/Vault/Store/RegistrationKey").exists()


def test_register_dns_failure_reports_lookup(tmp_path):
    # an .invalid name never resolves (RFC 6761), so no traffic leaves the machine
    (tmp_path / "etc/amazon/ssm").mkdir(parents=True)
    (tmp_path / "etc/amazon/ssm/amazon-ssm-agent.json").write_text(
        json.dumps({"Ssm": {"Endpoint": "ssm.eu-west-1.lab.invalid"}})
    )
    out = _run(tmp_path, "-register", "-code", "c", "-id", "i", "-region", REGION, "-y")
    assert out.returncode == 1
    assert "lookup ssm.eu-west-1.lab.invalid: no such host" in out.stdout


@pytest.fixture(scope="module")
def emulator():
    boto3 = pytest.importorskip("boto3")
    server = pytest.importorskip("emulator.server")
    ssm_ext = pytest.importorskip(
        "emulator.ssm_ext", reason="emulator.ssm_ext (lab SSM extensions) not there yet"
    )
    ssm_ext.install()
    handle = server.start_in_thread()
    kw = dict(
        endpoint_url=handle.url,
        region_name=REGION,
        aws_access_key_id=labconst.ACCESS_KEY,
        aws_secret_access_key=labconst.SECRET_KEY,
    )
    iam, ssm = boto3.client("iam", **kw), boto3.client("ssm", **kw)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ssm.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    iam.create_role(RoleName="HybridLabAgentTest", AssumeRolePolicyDocument=json.dumps(trust))
    yield handle, ssm
    handle.stop()


@pytest.fixture
def activation(emulator):
    _handle, ssm = emulator
    act = ssm.create_activation(IamRole="HybridLabAgentTest", RegistrationLimit=10)
    return act["ActivationId"], act["ActivationCode"]


def _register(root, emulator, activation, *extra, stdin=""):
    handle, _ssm = emulator
    act_id, code = activation
    return _run(
        root,
        "-register",
        "-code",
        code,
        "-id",
        act_id,
        "-region",
        REGION,
        *extra,
        stdin=stdin,
        endpoint=handle.url,
    )


def _vault(root):
    return json.loads((root / "var/lib/amazon/ssm/Vault/Store/RegistrationKey").read_text())


def test_register_writes_vault_and_registration_file(tmp_path, emulator, activation):
    out = _register(tmp_path, emulator, activation, "-y")
    assert out.returncode == 0, out.stdout + out.stderr
    key = _vault(tmp_path)
    assert key["instanceID"].startswith("mi-") and len(key["instanceID"]) == 20
    assert key["region"] == REGION and key["privateKeyType"] == "Rsa" and key["availabilityZone"] == ""
    assert key["privateKey"]
    mode = stat.S_IMODE((tmp_path / "var/lib/amazon/ssm/Vault/Store/RegistrationKey").stat().st_mode)
    assert mode == 0o600
    assert "RegistrationKey" in json.loads((tmp_path / "var/lib/amazon/ssm/Vault/Manifest").read_text())
    reg = json.loads((tmp_path / "var/lib/amazon/ssm/registration").read_text())
    assert reg == {"ManagedInstanceID": key["instanceID"], "Region": REGION}
    assert f"Managed instance-id: {key['instanceID']}" in out.stdout
    _handle, ssm = emulator
    ids = [i["InstanceId"] for i in ssm.describe_instance_information()["InstanceInformationList"]]
    assert key["instanceID"] in ids


def test_invalid_activation_is_reported(tmp_path, emulator, activation):
    act_id, _code = activation
    out = _register(tmp_path, emulator, (act_id, "wrong-code"), "-y")
    assert out.returncode == 1
    assert "Registration failed due to error registering the instance with AWS SSM." in out.stdout
    assert "InvalidActivation" in out.stdout


def test_reregister_prompts_unless_y(tmp_path, emulator, activation):
    assert _register(tmp_path, emulator, activation, "-y").returncode == 0
    first = _vault(tmp_path)["instanceID"]
    declined = _register(tmp_path, emulator, activation, stdin="No\n")
    assert "Do you want to override the existing registration? [Yes/No]" in declined.stdout
    assert declined.returncode != 0
    assert _vault(tmp_path)["instanceID"] == first
    accepted = _register(tmp_path, emulator, activation, stdin="Yes\n")
    assert accepted.returncode == 0, accepted.stdout
    assert _vault(tmp_path)["instanceID"] != first  # a new mi- id, as the real agent does
    forced = _register(tmp_path, emulator, activation, "-y")
    assert "Do you want to override" not in forced.stdout and forced.returncode == 0


def test_clear_removes_vault_but_keeps_registration_file(tmp_path, emulator, activation, monkeypatch):
    assert _register(tmp_path, emulator, activation, "-y").returncode == 0
    alone = _run(tmp_path, "-clear")  # the real agent prints its usage: -clear belongs to -register
    assert alone.returncode == 1 and "-register" in alone.stderr
    assert (tmp_path / "var/lib/amazon/ssm/Vault").exists()
    out = _run(tmp_path, "-register", "-clear")
    assert out.returncode == 0
    assert "Registration information has been removed from the instance." in out.stdout + out.stderr
    assert not (tmp_path / "var/lib/amazon/ssm/Vault").exists()
    assert (tmp_path / "var/lib/amazon/ssm/registration").exists()  # stale, like the real agent's
    monkeypatch.setenv("HYBRID_LAB_AGENT_ROOT", str(tmp_path))
    assert ssm_agent.load_registration() is None  # the Vault, not the file, decides "registered"


def test_similarity_threshold(tmp_path):
    assert _run(tmp_path, "-fingerprint", "-similarityThreshold", "101").returncode == 1
    assert _run(tmp_path, "-fingerprint", "-similarityThreshold", "60").returncode == 0
    data = json.loads((tmp_path / "var/lib/amazon/ssm/Vault/Store/InstanceFingerprint").read_text())
    assert data["similarityThreshold"] == 60


def test_daemon_shares_credentials_heartbeats_and_runs_commands(tmp_path, emulator, activation):
    handle, ssm = emulator
    assert _register(tmp_path, emulator, activation, "-y").returncode == 0
    instance_id = _vault(tmp_path)["instanceID"]
    creds = tmp_path / "root/.aws/credentials"
    creds.parent.mkdir(parents=True)
    creds.write_text("[AmazonCloudWatchAgent]\naws_access_key_id = keep\naws_secret_access_key = me\n")
    env = dict(
        os.environ,
        HYBRID_LAB_AGENT_ROOT=str(tmp_path),
        HYBRID_LAB_AGENT_ENDPOINT_URL=handle.url,
        HYBRID_LAB_AGENT_HEARTBEAT="1",
        HYBRID_LAB_AGENT_POLL="1",
    )
    proc = subprocess.Popen(
        [sys.executable, AGENT], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.time() + 20
        while time.time() < deadline and "[default]" not in (creds.read_text() if creds.exists() else ""):
            time.sleep(0.2)
        text = creds.read_text()
        assert "[default]" in text and "aws_session_token = " in text
        assert "[AmazonCloudWatchAgent]\naws_access_key_id = keep" in text  # other profiles untouched
        assert stat.S_IMODE(creds.stat().st_mode) == 0o600
        info = None
        while time.time() < deadline:
            found = ssm.describe_instance_information(
                Filters=[{"Key": "InstanceIds", "Values": [instance_id]}]
            )["InstanceInformationList"]
            info = found[0] if found else None
            if info and info.get("PingStatus") == "Online" and info.get("AgentVersion"):
                break
            time.sleep(0.5)
        assert info and info["PingStatus"] == "Online" and info["AgentVersion"] == ssm_agent.version()
        command = ssm.send_command(
            InstanceIds=[instance_id],
            DocumentName="AWS-RunShellScript",
            Parameters={"commands": ["echo hello-from-$(hostname)", "exit 3"]},
        )
        command_id = command["Command"]["CommandId"]
        result = {}
        while time.time() < deadline + 20:
            result = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
            if result["Status"] not in ("Pending", "InProgress", "Delayed"):
                break
            time.sleep(0.5)
        assert result["Status"] == "Failed"
        assert result["ResponseCode"] == 3
        assert result["StandardOutputContent"].startswith("hello-from-")
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    log = (tmp_path / "var/log/amazon/ssm/amazon-ssm-agent.log").read_text()
    assert f"Managed instance-id {instance_id}" in log


def test_unregistered_daemon_idles_and_stops_on_sigterm(tmp_path):
    env = dict(os.environ, HYBRID_LAB_AGENT_ROOT=str(tmp_path))
    proc = subprocess.Popen(
        [sys.executable, AGENT], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    time.sleep(1.5)
    assert proc.poll() is None  # idles, as the real agent does before registration
    proc.terminate()
    assert proc.wait(timeout=10) == 0
    assert "not registered" in (tmp_path / "var/log/amazon/ssm/errors.log").read_text()


def test_run_shell_timeout_reports_timed_out(tmp_path, monkeypatch):
    monkeypatch.setenv("HYBRID_LAB_AGENT_ROOT", str(tmp_path))
    agent = ssm_agent.Agent({"Mds": {"CommandWorkersLimit": 1}})
    agent.instance_id = "mi-00000000000000000"
    status, out, err, rc = ssm_agent.Commands(agent).execute(
        {
            "CommandId": "c1",
            "DocumentName": "AWS-RunShellScript",
            "Parameters": {"commands": ["echo started", "sleep 5"], "executionTimeout": ["1"]},
        }
    )
    assert (status, rc) == ("TimedOut", ssm_agent.TIMEOUT_RC)
    assert "Command execution timed out" in err


def test_a_reply_that_cannot_reach_the_service_is_kept_and_sent_again(tmp_path, emulator, activation, monkeypatch):
    """The agent's replies folder: a SendReply refused (service restarting) is saved under
    /var/lib/amazon/ssm/<instance id>/replies and sent at a later poll, so the command ends as it really did."""
    handle, ssm = emulator
    assert _register(tmp_path, emulator, activation, "-y").returncode == 0
    monkeypatch.setenv("HYBRID_LAB_AGENT_ROOT", str(tmp_path))
    monkeypatch.setenv("HYBRID_LAB_AGENT_ENDPOINT_URL", handle.url)
    reg = ssm_agent.load_registration()
    agent = ssm_agent.Agent({"Mds": {"CommandWorkersLimit": 1}})
    agent.instance_id, agent.region = reg["instanceID"], reg["region"]
    agent.refresh_token(reg)
    service_down = True
    real_call = agent.call

    def call(url, target, payload, service):
        if service_down and target.endswith(".SendReply"):
            raise ssm_agent.RequestError("RequestError: send request failed (the lab test cut it)")
        return real_call(url, target, payload, service)

    agent.call = call
    command_id = ssm.send_command(
        InstanceIds=[agent.instance_id], DocumentName="AWS-RunShellScript", Parameters={"commands": ["echo kept"]}
    )["Command"]["CommandId"]
    agent.poll_messages()
    agent.pool.shutdown(wait=True)  # the command ran; its reply did not get through
    replies = tmp_path / "var/lib/amazon/ssm" / agent.instance_id / "replies"
    (saved,) = list(replies.iterdir())
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert json.loads(saved.read_text())["MessageId"] == f"aws.ssm.{command_id}.{agent.instance_id}"
    invocation = ssm.get_command_invocation(CommandId=command_id, InstanceId=agent.instance_id)
    assert invocation["Status"] == "InProgress"
    agent.send_failed_replies()  # still down: kept
    assert list(replies.iterdir()) == [saved]

    service_down = False
    agent.send_failed_replies()
    assert list(replies.iterdir()) == []
    invocation = ssm.get_command_invocation(CommandId=command_id, InstanceId=agent.instance_id)
    assert (invocation["Status"], invocation["StandardOutputContent"]) == ("Success", "kept\n")
