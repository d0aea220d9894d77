"""ssm_run_command run for real against the lab emulator, with stand-in agents answering from a background thread.

The emulator delivers each invocation to a hybrid node's agent through ec2messages (GetMessages, AcknowledgeMessage,
SendReply); ``AgentDriver`` plays those agents while the module, in its own process, sends and waits. Invocations on
moto EC2 instances (``i-...``) succeed at once in the emulator; they make up the large batches.
"""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
import yaml
from lab.test_emulator_ssm import Agent
from plugin_loader import load_plugin

MODULE = "ssm_run_command"
PACKAGE = "AWS-ConfigureAWSPackage"
INSTALL = {"action": "Install", "name": "AmazonCloudWatchAgent"}
UNKNOWN = "mi-0123456789abcdef0"  # well formed, never registered (the emulator draws random IDs)
WAIT_KEYS = {"invocations", "succeeded_instance_ids", "failed_instance_ids", "pending_instance_ids", "waited"}


class AgentDriver:
    """Answers every command delivered to the given agents, each agent with its own reply, until stopped.

    ``replies`` maps an agent to ``(status, stdout, stderr, code)``; agents not in it never poll (offline).
    Errors in the thread are collected in ``errors`` (an assert there would be lost) and checked on exit.
    """

    def __init__(self, replies):
        self.replies = replies
        self.payloads = {}
        self.errors = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            for agent, (status, stdout, stderr, code) in self.replies.items():
                try:
                    for message in agent.get_messages():
                        self.payloads.setdefault(agent.instance_id, []).append(json.loads(message["Payload"]))
                        acked = agent.ec2messages("AcknowledgeMessage", {"MessageId": message["MessageId"]})
                        replied = agent.reply(message["MessageId"], status, stdout=stdout, stderr=stderr, code=code)
                        if acked[0] != 200 or replied[0] != 200:
                            self.errors.append((agent.instance_id, acked, replied))
                except Exception as exc:  # noqa: BLE001 - reported by __exit__
                    self.errors.append((agent.instance_id, repr(exc)))
            self._stop.wait(0.2)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=10)
        assert self.errors == []


@pytest.fixture
def agents(emulator):
    """``agents(n)``: n Online stand-in agents of a fresh activation; deregistered afterwards."""
    iam, ssm = emulator.client("iam"), emulator.client("ssm")
    made, activations = [], []

    def make(count):
        role = f"rc-role-{uuid.uuid4().hex[:8]}"
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "ssm.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        }
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
        act = ssm.create_activation(IamRole=role, RegistrationLimit=count)
        activations.append(act["ActivationId"])
        batch = []
        for _i in range(count):
            agent = Agent(emulator.url)
            assert agent.register(act["ActivationId"], act["ActivationCode"])[0] == 200
            assert agent.role_token()[0] == 200
            assert agent.heartbeat()[0] == 200
            batch.append(agent)
        made.extend(batch)
        return batch

    yield make
    for agent in made:
        ssm.deregister_managed_instance(InstanceId=agent.instance_id)
    for activation_id in activations:
        ssm.delete_activation(ActivationId=activation_id)


@pytest.fixture(scope="module")
def ec2_nodes(emulator):
    """50 moto EC2 instances (i-...): Run Command on them succeeds at once in the emulator."""
    ec2 = emulator.client("ec2")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ids = [i["InstanceId"] for i in ec2.run_instances(ImageId=image, MinCount=50, MaxCount=50)["Instances"]]
    yield ids
    ec2.terminate_instances(InstanceIds=ids)


def ssm_calls(emulator):
    return emulator.calls().get("ssm", {})


def sent_command(emulator, command_id):
    return emulator.client("ssm").list_commands(CommandId=command_id)["Commands"][0]


def documented_invocation_keys():
    returned = yaml.safe_load(load_plugin("modules", MODULE).RETURN)
    return set(returned["invocations"]["contains"]), set(returned["commands"]["contains"])


def by_id(result):
    return {row["instance_id"]: row for row in result["invocations"]}


def test_every_node_succeeds_with_one_command(run_module, emulator, tools, agents):
    nodes = agents(3)
    ids = [a.instance_id for a in nodes]
    emulator.reset_calls()
    with AgentDriver({a: ("Success", "Successfully installed AmazonCloudWatchAgent\n", "", 0) for a in nodes}) as drv:
        result = run_module(
            MODULE,
            {
                "document_name": PACKAGE,
                "parameters": {"action": ["Install"], "name": "AmazonCloudWatchAgent"},
                "instance_ids": ids,
                "comment": "cloudwatch agent",
                "max_concurrency": "1",  # the emulator delivers one node at a time: the wait must outlast it
                "poll_interval": 1,
                "wait_timeout": 60,
            },
        )
    assert result.get("failed") is not True, result
    assert result["changed"] is True
    assert ssm_calls(emulator)["SendCommand"] == 1
    assert len(result["command_ids"]) == 1
    assert result["succeeded_instance_ids"] == sorted(ids)
    assert result["failed_instance_ids"] == [] and result["pending_instance_ids"] == []
    assert [row["instance_id"] for row in result["invocations"]] == sorted(ids)
    for row in result["invocations"]:
        assert (row["status"], row["status_details"], row["response_code"]) == ("Success", "Success", 0)
        assert row["output"] == "Successfully installed AmazonCloudWatchAgent\n" and row["error"] == ""
        assert row["command_id"] == result["command_ids"][0]
    # Success needs no extra call per node.
    assert "GetCommandInvocation" not in ssm_calls(emulator)

    # What AWS received, read back from the emulator and from what the agents were given.
    command = sent_command(emulator, result["command_ids"][0])
    assert command["DocumentName"] == PACKAGE
    assert command["Parameters"] == {"action": ["Install"], "name": ["AmazonCloudWatchAgent"]}
    assert (command["MaxConcurrency"], command["MaxErrors"], command["TimeoutSeconds"]) == ("1", "0", 600)
    assert command["Comment"] == "cloudwatch agent" and sorted(command["InstanceIds"]) == sorted(ids)
    for agent in nodes:
        (payload,) = drv.payloads[agent.instance_id]
        assert payload["Parameters"]["name"] == ["AmazonCloudWatchAgent"]

    invocation_keys, command_keys = documented_invocation_keys()
    assert set(result) - tools.STANDARD_KEYS == tools.return_keys(MODULE)
    assert all(set(row) == invocation_keys for row in result["invocations"])
    assert set(result["commands"][0]) == command_keys
    assert result["commands"][0]["command_id"] == result["command_ids"][0]


def test_a_failed_node_is_reported_with_its_error_and_the_task_does_not_fail(run_module, emulator, agents):
    good, bad, other = agents(3)
    long_stdout = "downloading manifest\n" * 150  # 3150 characters: the list call cuts it before stderr
    stderr = "failed to install package AmazonCloudWatchAgent: exit status 1"
    replies = {
        good: ("Success", "installed\n", "", 0),
        bad: ("Failed", long_stdout, stderr, 1),
        other: ("Success", "installed\n", "", 0),
    }
    emulator.reset_calls()
    with AgentDriver(replies):
        result = run_module(
            MODULE,
            {
                "document_name": PACKAGE,
                "parameters": INSTALL,
                "instance_ids": [good.instance_id, bad.instance_id, other.instance_id],
                "max_errors": "100%",
                "poll_interval": 1,
                "wait_timeout": 60,
            },
        )
    assert result.get("failed") is not True, result
    assert result["failed_instance_ids"] == [bad.instance_id]
    assert result["succeeded_instance_ids"] == sorted([good.instance_id, other.instance_id])
    assert result["pending_instance_ids"] == []
    row = by_id(result)[bad.instance_id]
    assert (row["status"], row["status_details"], row["response_code"]) == ("Failed", "Failed", 1)
    assert row["error"] == stderr
    assert row["output"] == long_stdout[:2000]
    # One extra read, for the failed node only.
    assert ssm_calls(emulator)["GetCommandInvocation"] == 1


def test_a_node_that_never_polls_is_pending_and_failed_at_wait_timeout(run_module, agents):
    online, offline = agents(2)
    with AgentDriver({online: ("Success", "ok\n", "", 0)}):
        result = run_module(
            MODULE,
            {
                "document_name": PACKAGE,
                "parameters": INSTALL,
                "instance_ids": [online.instance_id, offline.instance_id],
                "poll_interval": 1,
                "wait_timeout": 4,
            },
        )
    assert result.get("failed") is not True, result
    assert result["succeeded_instance_ids"] == [online.instance_id]
    assert result["failed_instance_ids"] == [offline.instance_id]
    assert result["pending_instance_ids"] == [offline.instance_id]
    row = by_id(result)[offline.instance_id]
    assert (row["status"], row["response_code"], row["output"]) == ("Pending", -1, "")
    assert 4 <= result["waited"] < 15


def test_a_delivery_timeout_ends_the_wait_early(run_module, emulator, agents):
    (offline,) = agents(1)

    def travel():
        time.sleep(2)
        emulator.set_clock_offset(45)  # past TimeoutSeconds=30: the emulator times the invocation out

    mover = threading.Thread(target=travel, daemon=True)
    mover.start()
    try:
        result = run_module(
            MODULE,
            {
                "document_name": PACKAGE,
                "parameters": INSTALL,
                "instance_ids": [offline.instance_id],
                "timeout_seconds": 30,
                "poll_interval": 1,
                "wait_timeout": 120,
            },
        )
    finally:
        mover.join()
        emulator.set_clock_offset(0)
    assert result.get("failed") is not True, result
    row = by_id(result)[offline.instance_id]
    assert (row["status"], row["status_details"]) == ("TimedOut", "DeliveryTimedOut")
    assert result["failed_instance_ids"] == [offline.instance_id] and result["pending_instance_ids"] == []
    assert result["waited"] < 30


def test_check_mode_sends_nothing_and_shows_the_commands(run_module, emulator, tools):
    ids = [f"mi-{n:017x}" for n in range(1, 53)]
    emulator.reset_calls()
    result = run_module(
        MODULE,
        {"document_name": PACKAGE, "parameters": {**INSTALL, "version": 1}, "instance_ids": ids},
        check=True,
        via="ansible",
    )
    assert result.get("failed") is not True, result
    assert result["changed"] is True
    assert tools.total_calls(emulator.calls()) == 0
    assert result["command_ids"] == []
    assert [c["instance_ids"] for c in result["commands"]] == [ids[:50], ids[50:]]
    assert all(c["command_id"] is None for c in result["commands"])
    assert result["commands"][0]["parameters"] == {
        "action": ["Install"],
        "name": ["AmazonCloudWatchAgent"],
        "version": ["1"],
    }
    ansible_keys = {k for k in result if k.startswith("_ansible") or k == "action"}  # added by ansible's runner
    assert set(result) - tools.STANDARD_KEYS - ansible_keys == tools.return_keys(MODULE) - WAIT_KEYS


def test_more_than_50_nodes_go_out_as_one_command_per_50(run_module, emulator, agents, ec2_nodes):
    nodes = agents(2)
    ids = ec2_nodes + [a.instance_id for a in nodes]
    emulator.reset_calls()
    with AgentDriver({a: ("Success", "ok\n", "", 0) for a in nodes}):
        result = run_module(
            MODULE,
            {"document_name": PACKAGE, "parameters": INSTALL, "instance_ids": ids, "poll_interval": 1},
        )
    assert result.get("failed") is not True, result
    assert ssm_calls(emulator)["SendCommand"] == 2
    assert len(result["command_ids"]) == 2
    sent = [sorted(sent_command(emulator, c)["InstanceIds"]) for c in result["command_ids"]]
    assert sent == [sorted(ec2_nodes), sorted(a.instance_id for a in nodes)]
    assert result["succeeded_instance_ids"] == sorted(ids)
    assert result["failed_instance_ids"] == []
    assert len(result["invocations"]) == 52


def test_without_wait_returns_once_sent_and_converts_parameter_values(run_module, emulator, agents):
    (node,) = agents(1)
    result = run_module(
        MODULE,
        {
            "document_name": "AWS-UpdateSSMAgent",
            "parameters": {"allowDowngrade": True},
            "instance_ids": [node.instance_id, node.instance_id],
            "wait": False,
        },
    )
    assert result.get("failed") is not True, result
    assert not set(result) & WAIT_KEYS
    # ansible-core >= 2.19 returns warnings as structured summaries: look for the text anywhere in them.
    assert f"instance_ids lists {node.instance_id} more than once" in json.dumps(result.get("warnings"))
    command = sent_command(emulator, result["command_ids"][0])
    assert command["InstanceIds"] == [node.instance_id]
    # The emulator checks allowedValues ["true", "false"]: a Python "True" would have been refused.
    assert command["Parameters"] == {"allowDowngrade": ["true"]}
    assert command["Status"] == "Pending"  # nobody polled: the module did not wait


@pytest.mark.parametrize(
    ("args", "option"),
    [
        ({"instance_ids": ["mi-123"]}, "instance_ids"),
        ({"instance_ids": ["host1.example"]}, "instance_ids"),
        ({"instance_ids": []}, "instance_ids"),
        ({"max_concurrency": "0"}, "max_concurrency"),
        ({"max_concurrency": "150%"}, "max_concurrency"),
        ({"max_errors": "some"}, "max_errors"),
        ({"comment": "x" * 101}, "comment"),
        ({"timeout_seconds": 10}, "timeout_seconds"),
        ({"parameters": {"commands": [["nested"]]}}, "parameters.commands"),
        ({"output_s3_key_prefix": "runs/"}, "output_s3_bucket_name"),
        ({"poll_interval": 0}, "poll_interval"),
        ({"command_ids": ["one", "two"]}, "command_ids"),
    ],
)
def test_bad_input_fails_before_any_call(run_module, emulator, tools, args, option):
    emulator.reset_calls()
    result = run_module(MODULE, {"document_name": PACKAGE, "instance_ids": [UNKNOWN], **args})
    assert result.get("failed") is True, result
    assert option in result["msg"]
    assert tools.total_calls(emulator.calls()) == 0


def test_aws_errors_fail_the_task_naming_the_operation(run_module, ec2_nodes):
    unregistered = run_module(MODULE, {"document_name": PACKAGE, "parameters": INSTALL, "instance_ids": [UNKNOWN]})
    assert unregistered.get("failed") is True
    assert unregistered["msg"].startswith(f"Failed to send command {PACKAGE} (no command was sent)")
    assert "InvalidInstanceId" in unregistered["msg"] or "registered" in unregistered["msg"]

    no_document = run_module(MODULE, {"document_name": "Nope-Document", "instance_ids": ec2_nodes[:1]})
    assert no_document.get("failed") is True
    assert "Failed to send command Nope-Document" in no_document["msg"]

    # The second batch of 50 is refused: the first one was sent and is named, so it can be followed up.
    mid_batch = run_module(
        MODULE, {"document_name": PACKAGE, "parameters": INSTALL, "instance_ids": ec2_nodes + [UNKNOWN]}
    )
    assert mid_batch.get("failed") is True
    assert len(mid_batch["command_ids"]) == 1
    assert f"to instances 51-51 (commands already sent: {mid_batch['command_ids'][0]})" in mid_batch["msg"]


def test_send_command_is_retried_on_throttling_only(run_module, emulator, ec2_nodes):
    args = {"document_name": PACKAGE, "parameters": INSTALL, "instance_ids": ec2_nodes[:1], "wait": False}
    ssm = emulator.client("ssm")
    before = len(ssm.list_commands(InstanceId=ec2_nodes[0])["Commands"])
    # Seed 1 draws 0.13 then 0.85: the first SendCommand is throttled, the second goes through.
    emulator.reset_calls()
    with emulator.faults(throttle_rate=0.5, seed=1):
        throttled = run_module(MODULE, args)
    assert throttled.get("failed") is not True, throttled
    assert ssm_calls(emulator)["SendCommand"] == 2
    assert len(ssm.list_commands(InstanceId=ec2_nodes[0])["Commands"]) == before + 1

    # After a server error the command may exist already: not sent again, the task fails and says so.
    emulator.reset_calls()
    with emulator.faults(error_5xx_rate=1.0, seed=1):
        broken = run_module(MODULE, args)
    assert broken.get("failed") is True
    assert broken["msg"].startswith(f"Failed to send command {PACKAGE} (no command was sent)")
    assert ssm_calls(emulator)["SendCommand"] == 1


def test_command_ids_follow_commands_sent_before_without_sending(run_module, emulator, agents):
    (node,) = agents(1)
    args = {"document_name": PACKAGE, "parameters": INSTALL, "instance_ids": [node.instance_id]}
    sent = run_module(MODULE, dict(args, wait=False))
    assert sent.get("failed") is not True, sent
    emulator.reset_calls()
    with AgentDriver({node: ("Failed", "trying\n", "no space left", 1)}):
        followed = run_module(MODULE, dict(args, command_ids=sent["command_ids"], poll_interval=1, wait_timeout=30,
                                           read_failed_output=False))
    assert followed.get("failed") is not True, followed
    assert followed["changed"] is False and followed["command_ids"] == sent["command_ids"]
    assert followed["failed_instance_ids"] == [node.instance_id] and followed["pending_instance_ids"] == []
    calls = ssm_calls(emulator)
    assert "SendCommand" not in calls and "GetCommandInvocation" not in calls
    # What the list call returned, as read_failed_output=false keeps it.
    assert "no space left" in by_id(followed)[node.instance_id]["error"]


def test_a_long_wait_shows_the_nodes_still_running(run_module, emulator, tools, agents):
    # Longer than one slice (the plugin's own wait with poll_interval 1 is 11 s), so progress lines come in between.
    good, bad, offline = agents(3)
    stderr = "failed to install package AmazonCloudWatchAgent: exit status 1"
    replies = {good: ("Success", "installed\n", "", 0), bad: ("Failed", "trying\n", stderr, 1)}
    ids = [good.instance_id, bad.instance_id, offline.instance_id]
    args = {"document_name": PACKAGE, "parameters": INSTALL, "instance_ids": ids, "max_errors": "100%",
            "poll_interval": 1, "wait_timeout": 20}
    emulator.reset_calls()
    with AgentDriver(replies):
        result = run_module(MODULE, args, via="ansible")
    assert result.get("failed") is not True, result
    # The result of one run: sent once, every node reported, the failed node's own stderr read once, at the end.
    assert result["changed"] is True and len(result["command_ids"]) == 1
    assert result["succeeded_instance_ids"] == [good.instance_id]
    assert result["failed_instance_ids"] == sorted([bad.instance_id, offline.instance_id])
    assert result["pending_instance_ids"] == [offline.instance_id]
    assert by_id(result)[bad.instance_id]["error"] == stderr
    assert 20 <= result["waited"] < 35
    # action and _ansible_no_log: what the json callback adds to every task result.
    assert set(result) - tools.STANDARD_KEYS - {"action", "_ansible_no_log"} == tools.return_keys(MODULE)
    assert result["invocation"]["module_args"]["wait_timeout"] == 20
    assert "command_ids" not in result["invocation"]["module_args"] or not result["invocation"]["module_args"][
        "command_ids"]
    calls = ssm_calls(emulator)
    assert calls["SendCommand"] == 1 and calls["GetCommandInvocation"] == 1
    progress = [line for line in run_module.displayed if line.startswith("Waiting for ")]
    assert progress, run_module.displayed
    for line in progress:
        assert line.startswith("Waiting for Run Command on 1 of 3 nodes ("), line
        assert f" s left): {offline.instance_id} (" in line, line
