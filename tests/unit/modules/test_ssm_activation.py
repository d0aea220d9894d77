"""ssm_activation run for real (child process, as Ansible runs it) against the lab emulator.

Four-step idempotency, rotation when expired (emulator clock moved), exhausted (nodes registered through the
agent's anonymous RegisterManagedInstance) or near either, the code returned only on creation and never in
the diff, and validation before any AWS call.
"""

from __future__ import annotations

import json
import uuid

import pytest
from lab.test_emulator_ssm import Agent

MODULE = "ssm_activation"


@pytest.fixture
def role(emulator) -> str:
    name = f"act-role-{uuid.uuid4().hex[:8]}"
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ssm.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
    emulator.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    return name


@pytest.fixture
def site() -> str:
    return f"site-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def clock(emulator):
    yield emulator.set_clock_offset
    emulator.set_clock_offset(0)


def ours(emulator, site):
    acts = emulator.client("ssm").describe_activations()["ActivationList"]
    return [a for a in acts if {"Key": "Name", "Value": site} in a.get("Tags", [])]


def test_four_step_then_absent(run_module, emulator, tools, role, site):
    args = {"name": site, "iam_role": role, "registration_limit": 5, "expiration_days": 2,
            "default_instance_name": "node", "tags": {"Env": "test"}}
    emulator.reset_calls()
    check = run_module(MODULE, args, check=True, diff=True)
    assert check["changed"] is True and "activation_code" not in check, check
    assert check["reasons"] == ["not_found"]
    assert tools.mutations(emulator.calls()) == {}
    assert ours(emulator, site) == []

    made = run_module(MODULE, args, diff=True)
    assert made["changed"] is True, made
    code = made["activation_code"]
    assert len(code) == 20
    assert code not in json.dumps(made["diff"]) and code not in json.dumps(made["activation"])
    act = made["activation"]
    assert act["registration_limit"] == 5 and act["registrations_left"] == 5 and act["expired"] is False
    assert 47.9 < act["expires_in_hours"] <= 48
    (live,) = ours(emulator, site)
    assert live["ActivationId"] == act["activation_id"]
    assert {t["Key"]: t["Value"] for t in live["Tags"]} == {"Name": site, "ManagedBy": "hybrid-onboard", "Env": "test"}

    emulator.reset_calls()
    again_check = run_module(MODULE, args, check=True, diff=True)
    again = run_module(MODULE, args, diff=True)
    for result in (again_check, again):
        assert result["changed"] is False, result
        assert "activation_code" not in result
        assert result["activation"]["activation_id"] == act["activation_id"]
    assert tools.mutations(emulator.calls()) == {}

    absent = {"name": site, "state": "absent"}
    assert run_module(MODULE, absent, check=True)["changed"] is True
    assert len(ours(emulator, site)) == 1
    gone = run_module(MODULE, absent)
    assert gone["changed"] is True and gone["deleted_activation_ids"] == [act["activation_id"]]
    assert ours(emulator, site) == []
    assert run_module(MODULE, absent)["changed"] is False


def test_returned_keys_match_return_doc(run_module, tools, role, site):
    made = run_module(MODULE, {"name": site, "iam_role": role})
    documented = tools.return_keys(MODULE)
    assert set(made) - tools.STANDARD_KEYS == documented
    kept = run_module(MODULE, {"name": site, "iam_role": role})
    assert set(kept) - tools.STANDARD_KEYS == documented - {"activation_code"}
    run_module(MODULE, {"name": site, "state": "absent"})


def test_rotates_an_expired_activation(run_module, emulator, clock, role, site):
    first = run_module(MODULE, {"name": site, "iam_role": role, "expiration_hours": 1})
    clock(2 * 3600)  # the emulator now says the activation expired
    rotated = run_module(MODULE, {"name": site, "iam_role": role, "expiration_hours": 24}, diff=True)
    assert rotated["changed"] is True and rotated["rotated"] is True, rotated
    assert "expired" in rotated["reasons"]
    assert rotated["deleted_activation_ids"] == [first["activation"]["activation_id"]]
    assert rotated["activation_code"] != first["activation_code"]
    (live,) = ours(emulator, site)
    assert live["ActivationId"] == rotated["activation"]["activation_id"] and live["Expired"] is False
    run_module(MODULE, {"name": site, "state": "absent"})


def test_rotates_an_exhausted_activation_and_registered_nodes_keep_working(run_module, emulator, role, site):
    args = {"name": site, "iam_role": role, "registration_limit": 2}
    first = run_module(MODULE, args)
    agents = []
    for _run in range(2):
        agent = Agent(emulator.url)
        status, answer = agent.register(first["activation"]["activation_id"], first["activation_code"])
        assert status == 200, answer
        agents.append(agent)
    state = run_module(MODULE, args, check=True)
    assert state["changed"] is True and state["reasons"] == ["exhausted"]
    rotated = run_module(MODULE, args)
    assert rotated["rotated"] is True and rotated["reasons"] == ["exhausted"]
    assert rotated["activation"]["registrations_left"] == 2
    # The old activation is gone; its nodes are still registered and can still heartbeat.
    for agent in agents:
        assert agent.role_token()[0] == 200
        assert agent.heartbeat()[0] == 200
    ids = [a.instance_id for a in agents]
    info = emulator.client("ssm").describe_instance_information(Filters=[{"Key": "InstanceIds", "Values": ids}])
    assert {n["PingStatus"] for n in info["InstanceInformationList"]} == {"Online"}
    # A node can register with the new code.
    assert Agent(emulator.url).register(rotated["activation"]["activation_id"], rotated["activation_code"])[0] == 200
    run_module(MODULE, {"name": site, "state": "absent"})


def test_rotates_within_the_margins_and_on_request(run_module, role, site):
    first = run_module(MODULE, {"name": site, "iam_role": role, "expiration_hours": 2})
    near = run_module(MODULE, {"name": site, "iam_role": role, "expiration_hours": 24, "rotate_margin_hours": 3})
    assert near["reasons"] == ["expiry_margin"]
    assert near["deleted_activation_ids"] == [first["activation"]["activation_id"]]
    forced = run_module(MODULE, {"name": site, "iam_role": role, "expiration_hours": 24, "force_rotate": True})
    assert forced["reasons"] == ["force_rotate"] and "activation_code" in forced
    changed = run_module(MODULE, {"name": site, "iam_role": role, "expiration_hours": 24, "registration_limit": 7})
    assert changed["reasons"] == ["changed_registration_limit"]
    assert changed["activation"]["registration_limit"] == 7
    run_module(MODULE, {"name": site, "state": "absent"})


def test_known_activation_id_replaces_activations_whose_code_is_lost(run_module, emulator, role, site):
    first = run_module(MODULE, {"name": site, "iam_role": role})
    known = first["activation"]["activation_id"]
    kept = run_module(MODULE, {"name": site, "iam_role": role, "known_activation_id": known})
    assert kept["changed"] is False
    lost = run_module(MODULE, {"name": site, "iam_role": role, "known_activation_id": ""})
    assert lost["changed"] is True and lost["reasons"] == ["code_unknown"]
    assert [a["ActivationId"] for a in ours(emulator, site)] == [lost["activation"]["activation_id"]]
    run_module(MODULE, {"name": site, "state": "absent"})


def test_other_owners_activations_are_never_touched(run_module, emulator, role, site):
    foreign = emulator.client("ssm").create_activation(
        IamRole=role, Tags=[{"Key": "Name", "Value": site}, {"Key": "ManagedBy", "Value": "someone-else"}]
    )
    made = run_module(MODULE, {"name": site, "iam_role": role})
    assert made["reasons"] == ["not_found"]
    run_module(MODULE, {"name": site, "state": "absent"})
    assert [a["ActivationId"] for a in ours(emulator, site)] == [foreign["ActivationId"]]
    emulator.client("ssm").delete_activation(ActivationId=foreign["ActivationId"])


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"registration_limit": 0}, "registration_limit"),
        ({"registration_limit": 1001}, "registration_limit"),
        ({"expiration_days": 31}, "expiration_days"),
        ({"expiration_hours": 721}, "expiration_hours"),
        ({"iam_role": "arn:aws:iam::123456789012:role/lab-ssm-hybrid"}, "iam_role"),
        ({"default_instance_name": "x" * 257}, "default_instance_name"),
        ({"expiration_hours": 6, "rotate_margin_hours": 6}, "rotate_margin_hours"),
    ],
)
def test_validation_fails_before_any_call(run_module, emulator, tools, role, site, extra, named):
    emulator.reset_calls()
    result = run_module(MODULE, {"name": site, "iam_role": role, **extra})
    assert result.get("failed") is True, result
    assert named in result["msg"]
    assert tools.total_calls(emulator.calls()) == 0


def test_unknown_role_fails_with_a_hint(run_module, site):
    result = run_module(MODULE, {"name": site, "iam_role": "no-such-role"})
    assert result.get("failed") is True
    assert "Failed to create activation" in result["msg"] and "identity.yml" in result["msg"]
