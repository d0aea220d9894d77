"""plugins/lookup/hybrid_ssm_parameter.py through `ansible` itself, against the emulator: the value, a missing
parameter, and botocore's retries set from the play's hybrid_aws_* variables (a lookup runs in the controller, where
a play's `environment` does not reach). The fault injector counts the attempts."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from conftest import ROOT, aws_env


def lookup(emulator, expression: str, *extra: str) -> subprocess.CompletedProcess:
    env = aws_env(emulator)  # its AWS_MAX_ATTEMPTS=1 must not be what the lookup uses
    cmd = [str(Path(sys.executable).parent / "ansible"), "localhost", "-i", "localhost,", "-c", "local",
           "-e", f"ansible_python_interpreter={sys.executable}", *extra,
           "-m", "ansible.builtin.debug", "-a", "msg={{ " + expression + " }}"]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(ROOT), timeout=300, check=False)


@pytest.fixture
def parameter(emulator):
    ssm = emulator.client("ssm")
    name = f"/hybrid-onboard/test-{uuid.uuid4().hex[:8]}/activation"
    value = json.dumps({"id": "11111111-2222-3333-4444-555555555555", "code": "not-a-real-code"})
    ssm.put_parameter(Name=name, Value=value, Type="SecureString")
    yield name, value
    ssm.delete_parameter(Name=name)


def faults(emulator, **settings) -> dict:
    status, body = emulator.lab("POST", "/_lab/faults", settings)
    assert status == 200, body
    return body


def injected(emulator) -> dict:
    return emulator.lab("GET", "/_lab/faults")[1]["injected"]


def test_the_decrypted_value_and_a_missing_parameter(emulator, parameter):
    name, value = parameter
    found = lookup(emulator, f"lookup('hybrid.onboard.hybrid_ssm_parameter', '{name}') | from_json")
    assert found.returncode == 0 and '"code": "not-a-real-code"' in found.stdout, found.stdout + found.stderr
    skipped = lookup(emulator,
                     f"lookup('hybrid.onboard.hybrid_ssm_parameter', '{name}-gone', on_missing='skip') | length")
    assert skipped.returncode == 0 and '"msg": 0' in skipped.stdout, skipped.stdout + skipped.stderr
    missing = lookup(emulator, f"lookup('hybrid.onboard.hybrid_ssm_parameter', '{name}-gone')")
    assert missing.returncode != 0 and f"SSM parameter {name}-gone does not exist" in missing.stdout, missing.stdout


@pytest.mark.parametrize("attempts", [2, 3])
def test_a_throttled_read_is_tried_as_often_as_the_play_says(emulator, parameter, attempts):
    name, _value = parameter
    faults(emulator, throttle_rate=1.0, seed=1)
    try:
        result = lookup(emulator, f"lookup('hybrid.onboard.hybrid_ssm_parameter', '{name}')",
                        "-e", f"hybrid_aws_max_attempts={attempts}")
        counted = injected(emulator)
    finally:
        faults(emulator, throttle_rate=0.0, seed=None)
    assert result.returncode != 0 and "ThrottlingException" in result.stdout, result.stdout + result.stderr
    assert "not-a-real-code" not in result.stdout + result.stderr
    assert counted == {"throttle": attempts}


@pytest.mark.parametrize("extra, message", [
    ("hybrid_aws_max_attempts=0", "hybrid_aws_max_attempts must be an integer from 1 to 50"),
    ("hybrid_aws_max_attempts=51", "hybrid_aws_max_attempts must be an integer from 1 to 50"),
    ("hybrid_aws_max_attempts=many", "from 'var: hybrid_aws_max_attempts' has an invalid value"),  # Ansible's own
    ("hybrid_aws_retry_mode=fast", "hybrid_aws_retry_mode must be one of legacy, standard, adaptive"),
])
def test_bad_retry_settings_are_refused_with_the_variable_named(emulator, parameter, extra, message):
    name, _value = parameter
    result = lookup(emulator, f"lookup('hybrid.onboard.hybrid_ssm_parameter', '{name}')", "-e", extra)
    assert result.returncode != 0 and message in result.stdout + result.stderr, result.stdout + result.stderr
