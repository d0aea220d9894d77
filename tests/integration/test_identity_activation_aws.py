"""identity.yml and activation.yml against an in-thread AWS emulator (no lab network, no root).

Asserted from outside with boto3: four-step idempotency of both playbooks, no activation code and no secret
access key anywhere in the captured output at -vvv, rotation of an expired (emulator clock moved) and an
exhausted activation with registered nodes still working, bad input failing before any change with the
variable named, and the activation tier switched only with its acknowledgement.
"""

from __future__ import annotations

import contextlib
import json
import sys
import urllib.request
import uuid

import boto3
import pytest
from labtools import ROOT, C, playbook

sys.path.insert(0, str(ROOT / "tests" / "unit"))
from lab.test_emulator_ssm import Agent  # noqa: E402

NAME = f"idt{uuid.uuid4().hex[:6]}"
PARAMETER = f"/hybrid-onboard/{NAME}/activation"
BASE = {"hybrid_name": NAME, "ssm_activation_planned_nodes": 2}
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def client(env, service):
    return boto3.client(service, endpoint_url=env["AWS_ENDPOINT_URL"], region_name=C.REGION,
                        aws_access_key_id=C.ACCESS_KEY, aws_secret_access_key=C.SECRET_KEY)


def lab_call(env, method, path, payload=None):
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(f"{env['AWS_ENDPOINT_URL']}{path}", data=data, method=method,  # noqa: S310
                                     headers={"Content-Type": "application/json"})
    with _OPENER.open(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def mutations(env):
    calls = lab_call(env, "GET", "/_lab/calls")
    return {f"{s}:{a}": n for s, acts in calls.items() for a, n in acts.items()
            if not a.startswith(("Describe", "List", "Get"))}


def stored(env, name=PARAMETER):
    value = client(env, "ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    return json.loads(value)


def ours(env, name=NAME):
    acts = client(env, "ssm").describe_activations()["ActivationList"]
    return [a for a in acts if {"Key": "Name", "Value": name} in a.get("Tags", [])]


def run(env, name, extra=None, *args, check=False):
    result = playbook(name, *args, env=env, extra_vars={**BASE, **(extra or {})}, check_mode=check)
    return result


def ok(result):
    assert result.rc == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return result


@pytest.fixture(scope="module")
def hybrid_role(aws_only):
    """The hybrid service role as identity.yml names it, made directly so activation tests stand alone."""
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ssm.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    name = f"{NAME}-ssm-hybrid"
    iam = client(aws_only, "iam")
    with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    return name


# --- identity --------------------------------------------------------------------------------


def test_identity_four_step_and_cw_agent_key_rotation(aws_only):
    name = f"{NAME}i"
    extra = {"hybrid_name": name, "aws_hybrid_identity_output_bucket": f"{name}-output",
             "aws_hybrid_identity_cw_agent_iam_user": True}
    iam = client(aws_only, "iam")
    first_check = ok(run(aws_only, "identity.yml", extra, check=True))
    assert first_check.changed() > 0
    assert not [r for r in iam.list_roles()["Roles"] if r["RoleName"] == f"{name}-ssm-hybrid"]

    ok(run(aws_only, "identity.yml", extra))
    role = iam.get_role(RoleName=f"{name}-ssm-hybrid")["Role"]
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust["Statement"][0]["Principal"] == {"Service": "ssm.amazonaws.com"}
    assert trust["Statement"][0]["Condition"]["StringEquals"] == {"aws:SourceAccount": C.ACCOUNT_ID}
    attached = iam.list_attached_role_policies(RoleName=f"{name}-ssm-hybrid")["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["AmazonSSMManagedInstanceCore"]
    inline = iam.list_role_policies(RoleName=f"{name}-ssm-hybrid")["PolicyNames"]
    assert sorted(inline) == ["hybrid-onboard-cloudwatch-agent", "hybrid-onboard-ssm-output"]
    keys = iam.list_access_keys(UserName=f"{name}-cloudwatch-agent")["AccessKeyMetadata"]
    credentials = stored(aws_only, f"/hybrid-onboard/{name}/cloudwatch-agent-credentials")
    assert [k["AccessKeyId"] for k in keys] == [credentials["aws_access_key_id"]]

    second = ok(run(aws_only, "identity.yml", extra))
    assert second.changed() == 0, second.stdout
    second_check = ok(run(aws_only, "identity.yml", extra, check=True))
    assert second_check.changed() == 0, second_check.stdout

    rotated = ok(run(aws_only, "identity.yml", {**extra, "aws_hybrid_identity_cw_agent_rotate_key": True}, "-vvv"))
    new = stored(aws_only, f"/hybrid-onboard/{name}/cloudwatch-agent-credentials")
    assert new["aws_access_key_id"] != credentials["aws_access_key_id"]
    keys = iam.list_access_keys(UserName=f"{name}-cloudwatch-agent")["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in keys] == [new["aws_access_key_id"]]
    captured = rotated.stdout + rotated.stderr
    assert new["aws_secret_access_key"] not in captured
    assert credentials["aws_secret_access_key"] not in captured


def test_identity_refuses_a_bare_star_log_group(aws_only):
    lab_call(aws_only, "POST", "/_lab/calls/reset")
    extra = {"hybrid_name": f"{NAME}s", "aws_hybrid_identity_cw_agent_log_groups": ["*"]}
    result = run(aws_only, "identity.yml", extra)
    assert result.rc != 0
    assert "aws_hybrid_identity_cw_agent_log_groups" in result.stdout
    assert mutations(aws_only) == {}


# --- activation ------------------------------------------------------------------------------


def test_activation_four_step_and_no_code_in_verbose_output(aws_only, hybrid_role):
    first_check = ok(run(aws_only, "activation.yml", check=True))
    assert first_check.changed() > 0 and ours(aws_only) == []
    first = ok(run(aws_only, "activation.yml"))
    assert first.changed() == 2  # the activation and its parameter
    (act,) = ours(aws_only)
    value = stored(aws_only)
    assert value["id"] == act["ActivationId"] and value["region"] == C.REGION and len(value["code"]) == 20
    version = client(aws_only, "ssm").get_parameter(Name=PARAMETER)["Parameter"]["Version"]

    for check in (False, True):
        again = ok(run(aws_only, "activation.yml", check=check))
        assert again.changed() == 0, again.stdout
    assert client(aws_only, "ssm").get_parameter(Name=PARAMETER)["Parameter"]["Version"] == version
    assert [a["ActivationId"] for a in ours(aws_only)] == [act["ActivationId"]]

    verbose = ok(run(aws_only, "activation.yml", {"ssm_activation_force_rotate": True}, "-vvv", check=False))
    new = stored(aws_only)
    assert new["id"] != value["id"] and new["code"] != value["code"]
    captured = verbose.stdout + verbose.stderr + first.stdout + first.stderr
    for code in (value["code"], new["code"]):
        assert code not in captured
    assert "output has been hidden" in verbose.stdout
    assert client(aws_only, "ssm").get_parameter(Name=PARAMETER)["Parameter"]["Version"] == version + 1


def test_expired_activation_is_rotated(aws_only, hybrid_role):
    ok(run(aws_only, "activation.yml"))
    before = stored(aws_only)
    lab_call(aws_only, "POST", "/_lab/clock", {"offset_seconds": 8 * 86400})  # past the 7-day expiry
    try:
        assert ours(aws_only)[0]["Expired"] is True
        # The new expiry is computed on the controller's clock and must lie beyond the emulator's "now".
        rotated = ok(run(aws_only, "activation.yml", {"ssm_activation_expiration_days": 10}))
        assert rotated.changed() == 2
        after = stored(aws_only)
        assert after["id"] != before["id"]
        assert [a["ActivationId"] for a in ours(aws_only)] == [after["id"]]
        assert ours(aws_only)[0]["Expired"] is False
    finally:
        lab_call(aws_only, "POST", "/_lab/clock", {"offset_seconds": 0})


def test_exhausted_activation_is_rotated_and_nodes_keep_working(aws_only, hybrid_role):
    extra = {"ssm_activation_registration_limit": 2}
    ok(run(aws_only, "activation.yml", extra))
    value = stored(aws_only)
    agents = []
    for _run in range(2):
        agent = Agent(aws_only["AWS_ENDPOINT_URL"])
        assert agent.register(value["id"], value["code"])[0] == 200
        agents.append(agent)
    rotated = ok(run(aws_only, "activation.yml", extra))
    assert rotated.changed() == 2 and "exhausted" in rotated.stdout
    new = stored(aws_only)
    assert new["id"] != value["id"] and [a["ActivationId"] for a in ours(aws_only)] == [new["id"]]
    for agent in agents:
        assert agent.role_token()[0] == 200 and agent.heartbeat()[0] == 200
    assert Agent(aws_only["AWS_ENDPOINT_URL"]).register(new["id"], new["code"])[0] == 200


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"ssm_activation_registration_limit": 0}, "ssm_activation_registration_limit"),
        ({"ssm_activation_registration_limit": 1001}, "ssm_activation_registration_limit"),
        ({"ssm_activation_expiration_days": 31}, "ssm_activation_expiration_days"),
        ({"ssm_activation_iam_role": "arn:aws:iam::123456789012:role/lab-ssm-hybrid"}, "ssm_activation_iam_role"),
        ({"ssm_activation_parameter_kms_key": "alias/no-such-key"}, "ssm_activation_parameter_kms_key"),
    ],
)
def test_bad_input_fails_before_any_change(aws_only, extra, named):
    name = f"{NAME}b"
    lab_call(aws_only, "POST", "/_lab/calls/reset")
    result = run(aws_only, "activation.yml", {"hybrid_name": name, **extra})
    assert result.rc != 0
    assert named in result.stdout
    assert mutations(aws_only) == {}
    assert ours(aws_only, name) == []


def test_tier_needs_the_acknowledgement(aws_only, hybrid_role):
    ssm = client(aws_only, "ssm")
    tier = "/ssm/managed-instance/activation-tier"
    name = f"{NAME}t"
    try:
        lab_call(aws_only, "POST", "/_lab/calls/reset")
        refused = run(aws_only, "activation.yml", {"hybrid_name": name, "ssm_activation_planned_nodes": 1001})
        assert refused.rc != 0 and "ssm_activation_advanced_tier_acknowledged" in refused.stdout
        assert mutations(aws_only) == {} and ours(aws_only, name) == []
        session = run(aws_only, "activation.yml", {"hybrid_name": name, "ssm_activation_session_manager": True})
        assert session.rc != 0 and "ssm_activation_advanced_tier_acknowledged" in session.stdout
        assert ssm.get_service_setting(SettingId=tier)["ServiceSetting"]["SettingValue"] == "standard"

        switched = ok(run(aws_only, "activation.yml", {"ssm_activation_planned_nodes": 1001,
                                                       "ssm_activation_advanced_tier_acknowledged": True}))
        assert "Switch the activation tier to advanced" in switched.stdout
        assert ssm.get_service_setting(SettingId=tier)["ServiceSetting"]["SettingValue"] == "advanced"
    finally:
        ssm.reset_service_setting(SettingId=tier)
