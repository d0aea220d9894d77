"""ssm_managed_node_info run for real against the lab emulator, with nodes registered like the agent does."""

from __future__ import annotations

import json
import uuid

import pytest
from lab.test_emulator_ssm import Agent

MODULE = "ssm_managed_node_info"


@pytest.fixture
def nodes(emulator):
    """Three nodes of a fresh activation: two Online (heartbeat), one never pinged; one tagged."""
    iam, ssm = emulator.client("iam"), emulator.client("ssm")
    role = f"info-role-{uuid.uuid4().hex[:8]}"
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ssm.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
    act = ssm.create_activation(IamRole=role, RegistrationLimit=3)
    agents = []
    for index in range(3):
        agent = Agent(emulator.url)
        assert agent.register(act["ActivationId"], act["ActivationCode"])[0] == 200
        if index < 2:
            assert agent.role_token()[0] == 200
            assert agent.heartbeat()[0] == 200
        agents.append(agent)
    tag = uuid.uuid4().hex[:8]
    ssm.add_tags_to_resource(ResourceType="ManagedInstance", ResourceId=agents[0].instance_id,
                             Tags=[{"Key": "Batch", "Value": tag}])
    yield {"activation_id": act["ActivationId"], "ids": [a.instance_id for a in agents], "tag": tag}
    for agent in agents:
        ssm.deregister_managed_instance(InstanceId=agent.instance_id)
    ssm.delete_activation(ActivationId=act["ActivationId"])


def test_filters_and_counts(run_module, nodes):
    by_activation = run_module(MODULE, {"activation_ids": [nodes["activation_id"]]})
    assert by_activation["changed"] is False
    assert by_activation["count"] == 3
    assert [n["instance_id"] for n in by_activation["managed_nodes"]] == nodes["ids"]
    assert by_activation["counts_by_ping_status"] == {"Online": 2, "ConnectionLost": 1}
    node = by_activation["managed_nodes"][0]
    assert node["resource_type"] == "ManagedInstance" and node["ping_status"] == "Online"
    assert isinstance(node["registration_date"], str)

    online = run_module(MODULE, {"activation_ids": [nodes["activation_id"]], "ping_status": ["Online"]})
    assert online["count"] == 2
    tagged = run_module(MODULE, {"tags": {"Batch": nodes["tag"]}})
    assert [n["instance_id"] for n in tagged["managed_nodes"]] == nodes["ids"][:1]
    everything = run_module(MODULE, {})
    assert everything["count"] >= 3


def test_unknown_ids_are_not_an_error(run_module, nodes):
    result = run_module(MODULE, {"instance_ids": [nodes["ids"][1], "mi-0123456789abcdef0"]})
    assert result.get("failed") is not True, result
    assert [n["instance_id"] for n in result["managed_nodes"]] == [nodes["ids"][1]]


def test_check_mode_and_return_doc(run_module, tools, nodes):
    result = run_module(MODULE, {"instance_ids": nodes["ids"]}, check=True)
    assert result["count"] == 3
    # not_ready and waited come only with wait_ping_status (tested below).
    assert set(result) - tools.STANDARD_KEYS == tools.return_keys(MODULE) - {"not_ready", "waited"}


def test_bad_filter_values_fail_before_any_call(run_module, emulator, tools):
    emulator.reset_calls()
    result = run_module(MODULE, {"ping_status": ["Sleeping"]})
    assert result.get("failed") is True and "ping_status" in result["msg"]
    assert tools.total_calls(emulator.calls()) == 0


def test_wait_for_online_returns_the_nodes_that_never_got_there(run_module, tools, nodes):
    online, never = nodes["ids"][:2], nodes["ids"][2]
    result = run_module(MODULE, {"instance_ids": nodes["ids"], "wait_ping_status": "Online",
                                 "wait_timeout": 2, "wait_delay": 1})
    assert result.get("failed") is not True, result
    assert result["not_ready"] == [never]
    assert result["waited"] >= 2
    assert set(result) - tools.STANDARD_KEYS == tools.return_keys(MODULE)
    quick = run_module(MODULE, {"instance_ids": online, "wait_ping_status": "Online", "wait_timeout": 60})
    assert quick["not_ready"] == [] and quick["waited"] < 5


def test_more_ids_than_one_filter_holds_are_asked_in_chunks(run_module, emulator, nodes):
    unknown = [f"mi-{index:017x}" for index in range(1, 120)]
    emulator.reset_calls()
    result = run_module(MODULE, {"instance_ids": unknown + [nodes["ids"][0]]})
    assert result.get("failed") is not True, result
    assert [n["instance_id"] for n in result["managed_nodes"]] == [nodes["ids"][0]]


def test_wait_needs_instance_ids(run_module):
    result = run_module(MODULE, {"wait_ping_status": "Online"})
    assert result.get("failed") is True and "instance_ids" in result["msg"]


def test_a_long_wait_shows_the_nodes_not_online_yet(run_module, tools, nodes):
    # Longer than one slice (the plugin's own wait with wait_delay 1 is 11 s), so progress lines come in between.
    online, never = nodes["ids"][:2], nodes["ids"][2]
    args = {"instance_ids": nodes["ids"], "wait_ping_status": "Online", "wait_timeout": 20, "wait_delay": 1}
    result = run_module(MODULE, args, via="ansible")
    assert result.get("failed") is not True, result
    assert result["not_ready"] == [never]
    assert 20 <= result["waited"] < 30
    # action and _ansible_no_log: what the json callback adds to every task result.
    assert set(result) - tools.STANDARD_KEYS - {"action", "_ansible_no_log"} == tools.return_keys(MODULE)
    assert result["invocation"]["module_args"]["wait_timeout"] == 20
    progress = [line for line in run_module.displayed if line.startswith("Waiting for ")]
    assert progress, run_module.displayed
    for line in progress:
        # The node registered but never pinged: listed with its ping status.
        assert line.startswith("Waiting for 1 of 3 managed nodes to be Online (")
        assert line.endswith(f" s left): {never} (ConnectionLost)"), line
        assert not any(node in line for node in online)
