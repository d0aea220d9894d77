"""ssm_managed_instance run for real against the lab emulator: tags and deregistration of hybrid nodes in batches."""

from __future__ import annotations

import json
import uuid

import pytest
import yaml
from botocore.exceptions import ClientError
from lab.test_emulator_ssm import Agent
from plugin_loader import load_plugin

MODULE = "ssm_managed_instance"
UNKNOWN = "mi-0123456789abcdef0"  # well formed, never registered (the emulator draws random IDs)
STACK_TAG = "aws:cloudformation:stack-name"


class Fleet:
    """Nodes registered like the agent does, with direct (not module) access to their tags and registration."""

    def __init__(self, emulator):
        self.emulator = emulator
        self.ssm = emulator.client("ssm")
        self.activations = []
        self.ids = []

    def register(self, count):
        iam = self.emulator.client("iam")
        role = f"mi-role-{uuid.uuid4().hex[:8]}"
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "ssm.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        }
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
        act = self.ssm.create_activation(IamRole=role, RegistrationLimit=count)
        self.activations.append(act["ActivationId"])
        ids = []
        for _i in range(count):
            agent = Agent(self.emulator.url)
            assert agent.register(act["ActivationId"], act["ActivationCode"])[0] == 200
            ids.append(agent.instance_id)
        self.ids += ids
        return ids

    def tags(self, instance_id):
        answer = self.ssm.list_tags_for_resource(ResourceType="ManagedInstance", ResourceId=instance_id)
        return {t["Key"]: t["Value"] for t in answer["TagList"]}

    def tag(self, instance_id, **tags):
        self.ssm.add_tags_to_resource(
            ResourceType="ManagedInstance",
            ResourceId=instance_id,
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
        )

    def registered(self, ids):
        """IDs of ``ids`` still listed by DescribeInstanceInformation (listed by activation: unknown IDs are
        an error for the InstanceIds filter)."""
        pages = self.ssm.get_paginator("describe_instance_information").paginate(
            Filters=[{"Key": "ActivationIds", "Values": self.activations}]
        )
        listed = {n["InstanceId"] for page in pages for n in page["InstanceInformationList"]}
        return [i for i in ids if i in listed]

    def cleanup(self):
        for instance_id in self.ids:
            try:
                self.ssm.deregister_managed_instance(InstanceId=instance_id)
            except ClientError as exc:
                assert exc.response["Error"]["Code"] == "InvalidInstanceId"
        for activation_id in self.activations:
            self.ssm.delete_activation(ActivationId=activation_id)


@pytest.fixture
def fleet(emulator):
    made = Fleet(emulator)
    yield made
    made.cleanup()


def mutations_of(emulator, tools):
    return tools.mutations(emulator.calls())


def test_tags_four_step_idempotency(run_module, emulator, tools, fleet):
    first, second = fleet.register(2)
    fleet.tag(first, Old="x", **{STACK_TAG: "onprem"})
    args = {
        "instances": [
            {"instance_id": first, "tags": {"Site": "paris", "Wave": 1}},
            {"instance_id": second, "tags": {"Site": "paris"}},
        ]
    }
    want_first = {"Site": "paris", "Wave": "1", STACK_TAG: "onprem"}

    emulator.reset_calls()
    check = run_module(MODULE, args, check=True, diff=True)
    assert check["changed"] is True, check
    assert check["diff"] == {
        "before": {first: {"Old": "x", STACK_TAG: "onprem"}, second: {}},
        "after": {first: want_first, second: {"Site": "paris"}},
    }
    assert check["instances"] == [
        {"instance_id": first, "tags": want_first, "changed": True, "deregistered": False},
        {"instance_id": second, "tags": {"Site": "paris"}, "changed": True, "deregistered": False},
    ]
    assert mutations_of(emulator, tools) == {}
    assert fleet.tags(first) == {"Old": "x", STACK_TAG: "onprem"} and fleet.tags(second) == {}

    done = run_module(MODULE, args, diff=True)
    assert done["changed"] is True, done
    assert done["diff"] == check["diff"]
    assert fleet.tags(first) == want_first
    assert fleet.tags(second) == {"Site": "paris"}
    assert [n["tags"] for n in done["instances"]] == [want_first, {"Site": "paris"}]

    emulator.reset_calls()
    again_check = run_module(MODULE, args, check=True, diff=True)
    assert again_check["changed"] is False
    assert again_check["diff"] == {"before": {}, "after": {}}
    again = run_module(MODULE, args)
    assert again["changed"] is False
    assert [n["changed"] for n in again["instances"]] == [False, False]
    assert [n["tags"] for n in again["instances"]] == [want_first, {"Site": "paris"}]
    assert mutations_of(emulator, tools) == {}


def test_purge_false_adds_and_updates_but_keeps_unlisted_tags(run_module, emulator, tools, fleet):
    (node,) = fleet.register(1)
    fleet.tag(node, Old="x", Owner="ops")
    added = run_module(MODULE, {"instances": [{"instance_id": node, "tags": {"New": "y"}}], "purge_tags": False})
    assert added["changed"] is True, added
    assert fleet.tags(node) == {"Old": "x", "Owner": "ops", "New": "y"}

    updated = run_module(MODULE, {"instances": [{"instance_id": node, "tags": {"Old": "z"}}], "purge_tags": False})
    assert updated["changed"] is True
    assert fleet.tags(node) == {"Old": "z", "Owner": "ops", "New": "y"}

    emulator.reset_calls()
    same = run_module(MODULE, {"instances": [{"instance_id": node, "tags": {"New": "y"}}], "purge_tags": False})
    assert same["changed"] is False and mutations_of(emulator, tools) == {}

    purged = run_module(MODULE, {"instances": [{"instance_id": node, "tags": {"New": "y"}}]})
    assert purged["changed"] is True
    assert fleet.tags(node) == {"New": "y"}


def test_empty_tags_purge_everything_but_aws_keys_and_unset_tags_are_left_alone(run_module, emulator, tools, fleet):
    cleared, untouched = fleet.register(2)
    fleet.tag(cleared, Site="paris", **{STACK_TAG: "onprem"})
    fleet.tag(untouched, Site="lyon", Team="db")
    emulator.reset_calls()
    result = run_module(MODULE, {"instances": [{"instance_id": cleared, "tags": {}}, {"instance_id": untouched}]})
    assert result["changed"] is True, result
    assert fleet.tags(cleared) == {STACK_TAG: "onprem"}
    assert fleet.tags(untouched) == {"Site": "lyon", "Team": "db"}
    assert result["instances"][1] == {
        "instance_id": untouched,
        "tags": {"Site": "lyon", "Team": "db"},
        "changed": False,
        "deregistered": False,
    }
    assert mutations_of(emulator, tools) == {"ssm:RemoveTagsFromResource": 1}


def test_absent_deregisters_and_second_run_is_not_changed(run_module, emulator, tools, fleet):
    first, second, kept = fleet.register(3)
    fleet.tag(first, Site="paris")
    args = {"instances": [{"instance_id": first}, {"instance_id": UNKNOWN}, {"instance_id": second}], "state": "absent"}

    emulator.reset_calls()
    check = run_module(MODULE, args, check=True, diff=True)
    assert check["changed"] is True, check
    assert check["diff"] == {"before": {first: {"Site": "paris"}, second: {}}, "after": {}}
    assert [(n["instance_id"], n["deregistered"]) for n in check["instances"]] == [
        (first, True),
        (UNKNOWN, False),
        (second, True),
    ]
    assert mutations_of(emulator, tools) == {}
    assert fleet.registered([first, second, kept]) == [first, second, kept]

    done = run_module(MODULE, args, diff=True)
    assert done["changed"] is True, done
    assert done["instances"] == [
        {"instance_id": first, "tags": {}, "changed": True, "deregistered": True},
        {"instance_id": UNKNOWN, "tags": {}, "changed": False, "deregistered": False},
        {"instance_id": second, "tags": {}, "changed": True, "deregistered": True},
    ]
    assert fleet.registered([first, second, kept]) == [kept]

    emulator.reset_calls()
    assert run_module(MODULE, args, check=True)["changed"] is False
    again = run_module(MODULE, args)
    assert again["changed"] is False, again
    assert not any(n["deregistered"] for n in again["instances"])
    assert mutations_of(emulator, tools) == {}


def test_unknown_id_with_present_fails_and_changes_no_node(run_module, emulator, tools, fleet):
    first, second = fleet.register(2)
    fleet.tag(first, Old="x")
    args = {
        "instances": [
            {"instance_id": first, "tags": {"Site": "paris"}},
            {"instance_id": UNKNOWN, "tags": {"Site": "paris"}},
            {"instance_id": second, "tags": {"Site": "paris"}},
        ]
    }
    emulator.reset_calls()
    result = run_module(MODULE, args)
    assert result.get("failed") is True, result
    assert UNKNOWN in result["msg"] and "instances" in result["msg"] and "No node was changed" in result["msg"]
    assert first not in result["msg"] and second not in result["msg"]
    assert mutations_of(emulator, tools) == {}
    assert fleet.tags(first) == {"Old": "x"} and fleet.tags(second) == {}


def test_batches_beyond_one_describe_chunk(run_module, emulator, tools, fleet):
    # More than the 100 values one InstanceIds filter accepts: the module must split its existence check.
    ids = fleet.register(101)
    tagged = run_module(MODULE, {"instances": [{"instance_id": i, "tags": {"Batch": "big"}} for i in ids]})
    assert tagged["changed"] is True, {k: v for k, v in tagged.items() if k != "instances"}
    assert all(n["tags"] == {"Batch": "big"} for n in tagged["instances"])
    assert fleet.tags(ids[0]) == fleet.tags(ids[-1]) == {"Batch": "big"}

    # An unknown ID inside a chunk: the other nodes of that chunk are still found.
    gone = run_module(
        MODULE, {"instances": [{"instance_id": i} for i in [*ids[:60], UNKNOWN, *ids[60:]]], "state": "absent"}
    )
    assert gone["changed"] is True, {k: v for k, v in gone.items() if k != "instances"}
    assert sum(n["deregistered"] for n in gone["instances"]) == 101
    assert gone["instances"][60] == {"instance_id": UNKNOWN, "tags": {}, "changed": False, "deregistered": False}
    assert fleet.registered(ids) == []


def test_retries_on_throttling(run_module, emulator, tools, fleet):
    (node,) = fleet.register(1)
    args = {"instances": [{"instance_id": node, "tags": {"Site": "paris"}}]}
    # Without faults: Describe, GetCallerIdentity, GetResources (an untagged node is not listed), ListTags, AddTags,
    # ListTags again.
    expected_calls = 6
    emulator.reset_calls()
    with emulator.faults(throttle_rate=0.5, seed=3):
        result = run_module(MODULE, args)
    calls = tools.total_calls(emulator.calls())
    assert result.get("failed") is not True, result
    assert result["changed"] is True
    assert calls > expected_calls, "the seed threw no throttling error: the test proves nothing"
    assert fleet.tags(node) == {"Site": "paris"}


@pytest.mark.parametrize(
    ("instances", "fragment"),
    [
        ([{"instance_id": "i-0123456789abcdef0"}], "instances[1].instance_id must be a hybrid managed node ID"),
        ([{"instance_id": "mi-0123456789ABCDEF0"}], "'mi-0123456789ABCDEF0'"),
        ([{"instance_id": "mi-0123"}], "(got 'mi-0123')"),
        ([{"instance_id": UNKNOWN}], "instances[1].instance_id mi-0123456789abcdef0 is listed more than once"),
        (
            [{"instance_id": "mi-0fedcba9876543210", "tags": {"aws:owner": "me"}}],
            "keys starting with aws: are reserved",
        ),
        ([{"instance_id": "mi-0fedcba9876543210", "tags": {"Empty": None}}], "instances[1].tags.Empty has no value"),
        ([{"instance_id": "mi-0fedcba9876543210", "tags": {f"k{n}": "v" for n in range(51)}}], "at most 50"),
    ],
)
def test_bad_input_fails_before_any_call(run_module, emulator, tools, instances, fragment):
    emulator.reset_calls()
    result = run_module(MODULE, {"instances": [{"instance_id": UNKNOWN, "tags": {"Site": "paris"}}, *instances]})
    assert result.get("failed") is True and fragment in result["msg"], result
    assert tools.total_calls(emulator.calls()) == 0


def test_empty_list_does_nothing(run_module, emulator, tools):
    emulator.reset_calls()
    result = run_module(MODULE, {"instances": []})
    assert result["changed"] is False and result["instances"] == []
    assert tools.total_calls(emulator.calls()) == 0


def test_returned_keys_match_return_doc(run_module, tools, fleet):
    (node,) = fleet.register(1)
    result = run_module(MODULE, {"instances": [{"instance_id": node, "tags": {"Site": "paris"}}]}, check=True)
    assert set(result) - tools.STANDARD_KEYS == tools.return_keys(MODULE)
    documented = set(yaml.safe_load(load_plugin("modules", MODULE).RETURN)["instances"]["contains"])
    assert set(result["instances"][0]) == documented


def test_through_ansible_with_check_and_diff(run_module, emulator, tools, fleet):
    (node,) = fleet.register(1)
    emulator.reset_calls()
    result = run_module(
        MODULE, {"instances": [{"instance_id": node, "tags": {"Site": "paris"}}]}, check=True, diff=True, via="ansible"
    )
    assert result["changed"] is True, result
    assert result["diff"] == {"before": {node: {}}, "after": {node: {"Site": "paris"}}}
    assert mutations_of(emulator, tools) == {}
    assert fleet.tags(node) == {}


def test_aws_error_mid_batch_names_the_operation_and_the_nodes_already_changed(run_module, fleet):
    first, full = fleet.register(2)
    fleet.tag(full, **{f"k{n}": "v" for n in range(45)})
    args = {
        "instances": [
            {"instance_id": first, "tags": {"Site": "paris"}},
            {"instance_id": full, "tags": {f"new{n}": "v" for n in range(10)}},
        ],
        "purge_tags": False,
    }
    result = run_module(MODULE, args)
    assert result.get("failed") is True, result
    assert f"Failed to add tags to managed node {full}" in result["msg"]
    assert f"already changed before this failure: {first}" in result["msg"]
    assert fleet.tags(first) == {"Site": "paris"}
    assert len(fleet.tags(full)) == 45


def _reads(emulator):
    calls = emulator.calls()
    return {f"{service}:{action}": n for service, actions in calls.items() for action, n in actions.items()}


def test_noop_reads_tags_in_batches_whatever_the_number_of_nodes(run_module, emulator, fleet):
    ids = fleet.register(50)
    few, many = (
        {
            "instances": [
                {"instance_id": i, "tags": {"Site": "paris", "Hostname": f"h{n}"}} for n, i in enumerate(chosen)
            ]
        }
        for chosen in (ids[:3], ids)
    )
    assert run_module(MODULE, many)["changed"] is True

    counts = []
    for args in (few, many):
        emulator.reset_calls()
        again = run_module(MODULE, args)
        assert again["changed"] is False, again
        assert [n["tags"]["Hostname"] for n in again["instances"]] == [f"h{n}" for n in range(len(args["instances"]))]
        counts.append(_reads(emulator))
    # One existence check (50 nodes a page), one caller identity, one GetResources (100 nodes a call); no per-node read.
    assert counts[0] == counts[1], counts
    assert sum(n for action, n in counts[1].items() if action.endswith(":ListTagsForResource")) == 0, counts[1]
    assert sum(n for action, n in counts[1].items() if action.endswith(":GetResources")) == 1, counts[1]


def test_stale_batch_answer_is_checked_on_the_node_before_any_change(run_module, emulator, fleet, monkeypatch):
    from emulator import tagging_ext

    first, second = fleet.register(2)
    args = {"instances": [{"instance_id": i, "tags": {"Site": "paris"}} for i in (first, second)]}
    assert run_module(MODULE, args)["changed"] is True
    # The Tagging API still answers with the tags of before (eventual consistency): the module must not tag again.
    monkeypatch.setattr(
        tagging_ext,
        "by_arns",
        lambda arns: [{"ResourceARN": a, "Tags": [{"Key": "Site", "Value": "old"}]} for a in arns],
    )
    emulator.reset_calls()
    again = run_module(MODULE, args, diff=True)
    assert again["changed"] is False, again
    assert again["diff"] == {"before": {}, "after": {}}
    assert [n["tags"] for n in again["instances"]] == [{"Site": "paris"}] * 2
    reads = _reads(emulator)
    assert reads.get("ssm:ListTagsForResource") == 2, reads
    assert not any(a.endswith(("AddTagsToResource", "RemoveTagsFromResource")) for a in reads), reads


def test_denied_tagging_api_falls_back_to_one_read_per_node_with_a_warning(run_module, emulator, fleet, monkeypatch):
    from moto.resourcegroupstaggingapi.exceptions import ResourceGroupsTaggingAPIError
    from moto.resourcegroupstaggingapi.responses import ResourceGroupsTaggingAPIResponse

    def denied(self):
        raise ResourceGroupsTaggingAPIError("AccessDeniedException", "not authorized to perform: tag:GetResources")

    first, second = fleet.register(2)
    fleet.tag(first, Site="lyon")
    monkeypatch.setattr(ResourceGroupsTaggingAPIResponse, "get_resources", denied)
    args = {"instances": [{"instance_id": i, "tags": {"Site": "paris"}} for i in (first, second)]}
    emulator.reset_calls()
    result = run_module(MODULE, args)
    assert result["changed"] is True, result
    warned = [w["event"]["msg"] if isinstance(w, dict) else w for w in result.get("warnings", [])]
    assert any("tag:GetResources is denied" in w for w in warned), warned
    assert _reads(emulator).get("ssm:ListTagsForResource") == 4  # two before, two after the change
    assert fleet.tags(first) == fleet.tags(second) == {"Site": "paris"}
