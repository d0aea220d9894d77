"""ssm_association run for real (child process, as Ansible runs it) against the lab emulator.

Four-step idempotency, exact parameters (removed when left out, never dropped by an unrelated update), targets
by tag and by node IDs (checked through the nodes State Manager says are targeted), version bumps, options left
out compared with AWS's defaults, fields without options kept, duplicate names refused, absent, validation before
any call and check mode without mutating calls. Assertions read the association back from the emulator directly.
"""

from __future__ import annotations

import json
import re
import uuid

import pytest
import yaml
from botocore.exceptions import ClientError
from lab.test_emulator_ssm import Agent
from plugin_loader import load_plugin

MODULE = "ssm_association"
INVENTORY = "AWS-GatherSoftwareInventory"  # parameters: applications, networkConfig, files, ... (all optional)
AGENT_UPDATE = "AWS-UpdateSSMAgent"  # parameters: version, allowDowngrade
NODE_A = "mi-0123456789abcdef0"  # well formed; targets need not exist for the association to be stored
NODE_B = "mi-0123456789abcdef1"


@pytest.fixture
def name() -> str:
    return f"assoc-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def ssm(emulator):
    return emulator.client("ssm")


@pytest.fixture
def cleanup(ssm):
    """Association IDs to delete after the test (whatever the module did)."""
    ids: list[str] = []
    yield ids
    for association_id in ids:
        try:
            ssm.delete_association(AssociationId=association_id)
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "AssociationDoesNotExist"


def named(ssm, name):
    """Associations named ``name``, described in full, read from the emulator directly."""
    listed = ssm.list_associations(AssociationFilterList=[{"key": "AssociationName", "value": name}])["Associations"]
    return [ssm.describe_association(AssociationId=a["AssociationId"])["AssociationDescription"] for a in listed]


def only(ssm, name):
    (found,) = named(ssm, name)
    return found


def base_args(name, **extra):
    args = {
        "name": name,
        "document_name": INVENTORY,
        "targets": [{"key": "tag:HybridSite", "values": ["paris"]}],
        "schedule_expression": "rate(12 hours)",
        "parameters": {"applications": "Enabled", "networkConfig": ["Disabled"]},
        "max_concurrency": "10%",
        "max_errors": "1",
        "compliance_severity": "MEDIUM",
    }
    args.update(extra)
    return args


def test_four_step_create_then_absent(run_module, emulator, tools, ssm, name, cleanup):
    args = base_args(
        name,
        output_location={"s3_bucket_name": "lab-ssm-output", "s3_key_prefix": "assoc"},
        sync_compliance="AUTO",
    )
    emulator.reset_calls()
    check = run_module(MODULE, args, check=True, diff=True)
    assert check["changed"] is True, check
    assert check["association"] == {}
    assert check["diff"]["before"] == {}
    after = check["diff"]["after"]
    assert after["parameters"] == {"applications": ["Enabled"], "networkConfig": ["Disabled"]}
    assert after["targets"] == [{"key": "tag:HybridSite", "values": ["paris"]}]
    assert after["schedule_expression"] == "rate(12 hours)"
    assert tools.mutations(emulator.calls()) == {}
    assert named(ssm, name) == []

    made = run_module(MODULE, args, diff=True)
    assert made["changed"] is True, made
    assoc = made["association"]
    cleanup.append(assoc["association_id"])
    assert made["diff"] == check["diff"]
    live = only(ssm, name)
    assert live["AssociationId"] == assoc["association_id"]
    assert live["Name"] == INVENTORY and live["AssociationVersion"] == "1" == assoc["association_version"]
    # A scalar parameter value is sent as a list of one string.
    assert live["Parameters"] == {"applications": ["Enabled"], "networkConfig": ["Disabled"]}
    assert live["Targets"] == [{"Key": "tag:HybridSite", "Values": ["paris"]}]
    assert (live["ScheduleExpression"], live["MaxConcurrency"], live["MaxErrors"]) == ("rate(12 hours)", "10%", "1")
    assert (live["ComplianceSeverity"], live["SyncCompliance"]) == ("MEDIUM", "AUTO")
    assert live["OutputLocation"] == {
        "S3Location": {"OutputS3BucketName": "lab-ssm-output", "OutputS3KeyPrefix": "assoc"}
    }
    # Parameter names come back as AWS has them, not snake_cased.
    assert assoc["parameters"] == {"applications": ["Enabled"], "networkConfig": ["Disabled"]}
    assert assoc["output_location"] == {"s3_bucket_name": "lab-ssm-output", "s3_key_prefix": "assoc", "s3_region": None}
    assert assoc["overview"]["status"] == "Pending" and assoc["document_version"] == "$DEFAULT"

    emulator.reset_calls()
    again_check = run_module(MODULE, args, check=True, diff=True)
    again = run_module(MODULE, args, diff=True)
    for result in (again_check, again):
        assert result["changed"] is False, result
        assert result["association"]["association_id"] == assoc["association_id"]
        assert result["association"]["association_version"] == "1"
    assert tools.mutations(emulator.calls()) == {}
    assert only(ssm, name)["AssociationVersion"] == "1"

    absent = {"name": name, "state": "absent"}
    emulator.reset_calls()
    gone_check = run_module(MODULE, absent, check=True, diff=True)
    assert gone_check["changed"] is True
    assert gone_check["diff"]["before"]["association_name"] == name and gone_check["diff"]["after"] == {}
    assert tools.mutations(emulator.calls()) == {}
    assert len(named(ssm, name)) == 1
    gone = run_module(MODULE, absent)
    assert gone["changed"] is True and gone["association"] == {}
    assert named(ssm, name) == []
    emulator.reset_calls()
    assert run_module(MODULE, absent)["changed"] is False
    assert run_module(MODULE, absent, check=True)["changed"] is False
    assert tools.mutations(emulator.calls()) == {}


def test_returned_keys_match_return_doc(run_module, tools, name, cleanup):
    made = run_module(MODULE, base_args(name))
    cleanup.append(made["association"]["association_id"])
    assert set(made) - tools.STANDARD_KEYS == tools.return_keys(MODULE)
    documented = yaml.safe_load(load_plugin("modules", MODULE).RETURN)["association"]["contains"]
    assert set(made["association"]) == set(documented)
    assert set(made["association"]["overview"]) == set(documented["overview"]["contains"])
    gone = run_module(MODULE, {"name": name, "state": "absent"})
    assert set(gone) - tools.STANDARD_KEYS == tools.return_keys(MODULE)


def test_parameters_are_exact_and_never_dropped_by_other_updates(run_module, ssm, name, cleanup):
    three = {"applications": "Enabled", "networkConfig": "Enabled", "services": "Disabled"}
    made = run_module(MODULE, base_args(name, parameters=three))
    cleanup.append(made["association"]["association_id"])
    assert made["association"]["association_version"] == "1"

    # A parameter left out of the task is removed in AWS.
    two = {"applications": "Enabled", "services": "Disabled"}
    removed = run_module(MODULE, base_args(name, parameters=two), diff=True)
    assert removed["changed"] is True, removed
    assert removed["diff"]["before"]["parameters"]["networkConfig"] == ["Enabled"]
    assert "networkConfig" not in removed["diff"]["after"]["parameters"]
    live = only(ssm, name)
    assert live["Parameters"] == {"applications": ["Enabled"], "services": ["Disabled"]}
    assert live["AssociationVersion"] == "2" == removed["association"]["association_version"]

    # Only the schedule changes: parameters and every other managed field survive the update.
    rescheduled = run_module(MODULE, base_args(name, parameters=two, schedule_expression="rate(1 day)"))
    assert rescheduled["changed"] is True
    live = only(ssm, name)
    assert live["ScheduleExpression"] == "rate(1 day)"
    assert live["Parameters"] == {"applications": ["Enabled"], "services": ["Disabled"]}
    assert (live["MaxConcurrency"], live["MaxErrors"], live["ComplianceSeverity"]) == ("10%", "1", "MEDIUM")
    assert live["Targets"] == [{"Key": "tag:HybridSite", "Values": ["paris"]}]
    assert live["AssociationVersion"] == "3" == rescheduled["association"]["association_version"]

    # A parameter added in AWS behind the module's back is a change, and is removed.
    ssm.update_association(
        AssociationId=live["AssociationId"],
        AssociationName=name,
        Name=INVENTORY,
        Targets=live["Targets"],
        ScheduleExpression="rate(1 day)",
        Parameters={**live["Parameters"], "files": ["[]"]},
        MaxConcurrency="10%",
        MaxErrors="1",
        ComplianceSeverity="MEDIUM",
    )
    restored = run_module(MODULE, base_args(name, parameters=two, schedule_expression="rate(1 day)"))
    assert restored["changed"] is True
    assert only(ssm, name)["Parameters"] == {"applications": ["Enabled"], "services": ["Disabled"]}
    assert run_module(MODULE, base_args(name, parameters=two, schedule_expression="rate(1 day)"))["changed"] is False


@pytest.fixture
def agents(emulator, ssm):
    """Two hybrid nodes registered the way the agent does; the first is tagged HybridSite=lyon."""
    iam = emulator.client("iam")
    role = f"assoc-role-{uuid.uuid4().hex[:8]}"
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ssm.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
    act = ssm.create_activation(IamRole=role, RegistrationLimit=2)
    made = []
    for _run in range(2):
        agent = Agent(emulator.url)
        assert agent.register(act["ActivationId"], act["ActivationCode"])[0] == 200
        made.append(agent)
    ids = [agent.instance_id for agent in made]
    ssm.add_tags_to_resource(
        ResourceType="ManagedInstance", ResourceId=ids[0], Tags=[{"Key": "HybridSite", "Value": "lyon"}]
    )
    yield made
    for instance_id in ids:
        ssm.deregister_managed_instance(InstanceId=instance_id)
    ssm.delete_activation(ActivationId=act["ActivationId"])


@pytest.fixture
def nodes(agents):
    return [agent.instance_id for agent in agents]


def targeted_by(ssm, instance_id):
    """Association IDs State Manager applies to ``instance_id``."""
    listed = ssm.list_associations(AssociationFilterList=[{"key": "InstanceId", "value": instance_id}])
    return {a["AssociationId"] for a in listed["Associations"]}


def test_targets_by_tag_and_by_instance_ids(run_module, ssm, name, cleanup, nodes):
    tagged, other = nodes
    by_tag = {
        "name": name,
        "document_name": AGENT_UPDATE,
        "targets": [{"key": "tag:HybridSite", "values": ["lyon"]}],
    }
    made = run_module(MODULE, by_tag)
    assert made["changed"] is True, made
    association_id = made["association"]["association_id"]
    cleanup.append(association_id)
    assert made["association"]["targets"] == [{"key": "tag:HybridSite", "values": ["lyon"]}]
    assert association_id in targeted_by(ssm, tagged) and association_id not in targeted_by(ssm, other)
    assert made["association"]["overview"]["association_status_aggregated_count"] == {"Pending": 1}

    by_ids = dict(by_tag, targets=[{"key": "InstanceIds", "values": [tagged, other]}])
    switched = run_module(MODULE, by_ids, diff=True)
    assert switched["changed"] is True
    assert switched["diff"]["before"]["targets"] == [{"key": "tag:HybridSite", "values": ["lyon"]}]
    assert switched["association"]["association_version"] == "2"
    assert only(ssm, name)["Targets"] == [{"Key": "InstanceIds", "Values": [tagged, other]}]
    assert association_id in targeted_by(ssm, tagged) and association_id in targeted_by(ssm, other)

    # The same nodes in another order are the same targets.
    reordered = run_module(MODULE, dict(by_tag, targets=[{"key": "InstanceIds", "values": [other, tagged]}]))
    assert reordered["changed"] is False
    assert only(ssm, name)["AssociationVersion"] == "2"


def test_rerun_failed_runs_a_failed_association_once_more(run_module, ssm, name, cleanup, agents):
    node = agents[0]
    assert node.role_token()[0] == 200 and node.heartbeat()[0] == 200
    args = {
        "name": name,
        "document_name": "AWS-RunShellScript",
        "targets": [{"key": "InstanceIds", "values": [node.instance_id]}],
        "parameters": {"commands": ["test -e /etc/ready"]},
        "schedule_expression": "rate(14 days)",
        "rerun_failed": True,
    }
    made = run_module(MODULE, args)
    assert made["changed"] is True and made["rerun"] is False, made
    association_id = made["association"]["association_id"]
    cleanup.append(association_id)

    def run_on_the_node(status):
        """The node polls, runs the association and replies ``status``; [] when it had nothing to run."""
        messages = [m for m in node.get_messages() if association_id in m["Payload"]]
        for message in messages:
            node.ec2messages("AcknowledgeMessage", {"MessageId": message["MessageId"]})
            node.reply(message["MessageId"], status, code=0 if status == "Success" else 1)
        return messages

    assert len(run_on_the_node("Failed")) == 1

    def counts():
        return only(ssm, name)["Overview"]["AssociationStatusAggregatedCount"]

    assert counts() == {"Failed": 1}
    # Without rerun_failed the failure stays until the schedule; check mode only reports the rerun.
    left = run_module(MODULE, dict(args, rerun_failed=False))
    assert (left["changed"], left["rerun"]) == (False, False), left
    check = run_module(MODULE, args, check=True)
    assert (check["changed"], check["rerun"]) == (True, True), check
    assert run_on_the_node("Success") == [] and counts() == {"Failed": 1}
    # The real run starts it once: the old result shows until the node picks the run up, then Success, and no
    # rerun after.
    rerun = run_module(MODULE, args)
    assert (rerun["changed"], rerun["rerun"]) == (True, True), rerun
    assert rerun["association"]["overview"]["association_status_aggregated_count"] == {"Failed": 1}
    assert only(ssm, name)["AssociationVersion"] == "1"
    assert len(run_on_the_node("Success")) == 1 and counts() == {"Success": 1}
    again = run_module(MODULE, args)
    assert (again["changed"], again["rerun"]) == (False, False), again


def test_options_left_out_compare_with_aws_defaults(run_module, ssm, name, cleanup):
    args = {"name": name, "document_name": AGENT_UPDATE, "targets": [{"key": "InstanceIds", "values": [NODE_A]}]}
    # Made outside the module with the AWS defaults spelled out: the same as leaving them out.
    made = ssm.create_association(
        AssociationName=name,
        Name=AGENT_UPDATE,
        Targets=[{"Key": "InstanceIds", "Values": [NODE_A]}],
        MaxConcurrency="100%",
        ComplianceSeverity="UNSPECIFIED",
        SyncCompliance="AUTO",
        ApplyOnlyAtCronInterval=False,
        DocumentVersion="$DEFAULT",
    )["AssociationDescription"]
    cleanup.append(made["AssociationId"])
    assert run_module(MODULE, args)["changed"] is False

    # A value that is not the default, for an option the task leaves out, is a change and is removed.
    ssm.update_association(
        AssociationId=made["AssociationId"],
        AssociationName=name,
        Name=AGENT_UPDATE,
        Targets=[{"Key": "InstanceIds", "Values": [NODE_A]}],
        MaxConcurrency="5",
        ScheduleExpression="rate(7 days)",
    )
    reset = run_module(MODULE, args, diff=True)
    assert reset["changed"] is True
    assert reset["diff"]["before"]["max_concurrency"] == "5" and reset["diff"]["after"]["max_concurrency"] is None
    live = only(ssm, name)
    assert "MaxConcurrency" not in live and "ScheduleExpression" not in live
    assert run_module(MODULE, args)["changed"] is False


def test_document_version_left_out_is_kept_and_unmanaged_fields_survive(run_module, ssm, name, cleanup):
    args = {
        "name": name,
        "document_name": AGENT_UPDATE,
        "document_version": "1",
        "targets": [{"key": "InstanceIds", "values": [NODE_A, NODE_B]}],
        "schedule_expression": "cron(0 2 ? * SUN *)",
        "apply_only_at_cron_interval": True,
        "schedule_offset": 2,
        "parameters": {"allowDowngrade": "false"},
    }
    made = run_module(MODULE, args)
    assert made["changed"] is True, made
    association_id = made["association"]["association_id"]
    cleanup.append(association_id)
    assert made["association"]["document_version"] == "1"
    assert (made["association"]["schedule_offset"], made["association"]["apply_only_at_cron_interval"]) == (2, True)
    # Duration has no option in the module; set it directly (an update must repeat every field).
    ssm.update_association(
        AssociationId=association_id,
        AssociationName=name,
        Name=AGENT_UPDATE,
        DocumentVersion="1",
        Targets=[{"Key": "InstanceIds", "Values": [NODE_A, NODE_B]}],
        ScheduleExpression="cron(0 2 ? * SUN *)",
        ApplyOnlyAtCronInterval=True,
        ScheduleOffset=2,
        Parameters={"allowDowngrade": ["false"]},
        Duration=3,
    )
    unmanaged_version = {k: v for k, v in args.items() if k != "document_version"}
    assert run_module(MODULE, unmanaged_version)["changed"] is False

    moved = run_module(MODULE, dict(unmanaged_version, schedule_expression="cron(0 3 ? * SAT *)"))
    assert moved["changed"] is True
    live = only(ssm, name)
    assert live["ScheduleExpression"] == "cron(0 3 ? * SAT *)" and live["AssociationVersion"] == "3"
    assert live["DocumentVersion"] == "1"
    assert live["Duration"] == 3
    assert (live["ScheduleOffset"], live["ApplyOnlyAtCronInterval"]) == (2, True)


def test_check_mode_update_reports_the_diff_and_changes_nothing(run_module, emulator, tools, ssm, name, cleanup):
    made = run_module(MODULE, base_args(name))
    cleanup.append(made["association"]["association_id"])
    emulator.reset_calls()
    check = run_module(
        MODULE, base_args(name, schedule_expression="rate(1 day)", max_errors="0"), check=True, diff=True
    )
    assert check["changed"] is True
    before, after = check["diff"]["before"], check["diff"]["after"]
    assert (before["schedule_expression"], after["schedule_expression"]) == ("rate(12 hours)", "rate(1 day)")
    assert (before["max_errors"], after["max_errors"]) == ("1", "0")
    assert before["parameters"] == after["parameters"]
    assert check["association"]["association_version"] == "1"
    assert tools.mutations(emulator.calls()) == {}
    live = only(ssm, name)
    assert (live["ScheduleExpression"], live["MaxErrors"], live["AssociationVersion"]) == ("rate(12 hours)", "1", "1")


def test_duplicate_names_fail_listing_both_ids(run_module, emulator, tools, ssm, name, cleanup):
    import labconst
    from emulator import ssm_common

    targets = [{"Key": "tag:HybridSite", "Values": ["paris"]}]
    first = ssm.create_association(AssociationName=name, Name=AGENT_UPDATE, Targets=targets)["AssociationDescription"]
    second = ssm.create_association(AssociationName=name + "-2", Name=INVENTORY, Targets=targets)[
        "AssociationDescription"
    ]
    cleanup += [first["AssociationId"], second["AssociationId"]]
    # The emulator refuses a second association with a taken name; AWS documents no such rule, so give the
    # second one the same name in the emulator's state, as if it had been made elsewhere.
    state = ssm_common.state_for(labconst.ACCOUNT_ID, labconst.REGION)
    with ssm_common.LOCK:
        state.associations[second["AssociationId"]].spec["AssociationName"] = name
    assert len(named(ssm, name)) == 2

    emulator.reset_calls()
    for args in (base_args(name), {"name": name, "state": "absent"}):
        result = run_module(MODULE, args)
        assert result.get("failed") is True, result
        assert first["AssociationId"] in result["msg"] and second["AssociationId"] in result["msg"]
        assert name in result["msg"]
    assert tools.mutations(emulator.calls()) == {}
    assert len(named(ssm, name)) == 2


@pytest.mark.parametrize(
    ("change", "option"),
    [
        ({"name": "ab"}, "name"),
        ({"name": "has space"}, "name"),
        ({"document_name": None}, "document_name"),
        ({"document_name": "x"}, "document_name"),
        ({"document_version": "latest"}, "document_version"),
        ({"targets": None}, "targets"),
        ({"targets": []}, "targets"),
        ({"targets": [{"key": "Environment", "values": ["x"]}]}, "targets[1].key"),
        ({"targets": [{"key": "tag:", "values": ["x"]}]}, "targets[1].key"),
        ({"targets": [{"key": "InstanceIds", "values": ["web01"]}]}, "targets[1].values"),
        ({"targets": [{"key": "InstanceIds", "values": ["*", NODE_A]}]}, "targets[1].values"),
        ({"targets": [{"key": "tag-key", "values": []}]}, "targets[1].values"),
        ({"targets": [{"key": "tag-key", "values": ["x"]}] * 6}, "targets"),
        ({"targets": [{"values": ["x"]}]}, "targets"),
        ({"schedule_expression": "every day"}, "schedule_expression"),
        ({"schedule_expression": "rate(5 minutes)"}, "schedule_expression"),
        ({"schedule_expression": "rate(1 days)"}, "schedule_expression"),
        ({"schedule_expression": "cron(0 2 * *)"}, "schedule_expression"),
        ({"schedule_offset": 2}, "schedule_offset"),
        (
            {"schedule_expression": "cron(0 2 ? * SUN *)", "apply_only_at_cron_interval": True, "schedule_offset": 7},
            "schedule_offset",
        ),
        ({"apply_only_at_cron_interval": True}, "apply_only_at_cron_interval"),
        ({"compliance_severity": "SEVERE"}, "compliance_severity"),
        ({"sync_compliance": "SOMETIMES"}, "sync_compliance"),
        ({"max_concurrency": "0"}, "max_concurrency"),
        ({"max_concurrency": "0%"}, "max_concurrency"),
        ({"max_errors": "101%"}, "max_errors"),
        ({"max_errors": "-1"}, "max_errors"),
        ({"parameters": {"applications": True}}, "parameters.applications"),
        ({"parameters": {"applications": {"a": "b"}}}, "parameters.applications"),
        ({"output_location": {"s3_key_prefix": "x"}}, "s3_bucket_name"),
        ({"output_location": {"s3_bucket_name": "ab"}}, "output_location.s3_bucket_name"),
    ],
)
def test_validation_fails_before_any_call(run_module, emulator, tools, name, change, option):
    args = base_args(name)
    for key, value in change.items():
        if value is None:
            args.pop(key)
        else:
            args[key] = value
    emulator.reset_calls()
    result = run_module(MODULE, args)
    assert result.get("failed") is True, result
    # The option is named as itself, not as part of a longer name (``name`` is not ``document_name``).
    assert re.search(rf"(?<![\w.\[]){re.escape(option)}(?!\w)", result["msg"]), result["msg"]
    assert tools.total_calls(emulator.calls()) == 0


def test_aws_errors_name_the_operation(run_module, name):
    result = run_module(MODULE, base_args(name, document_name="No-Such-Document"))
    assert result.get("failed") is True
    assert f"Failed to create association {name}" in result["msg"]
    assert "No-Such-Document" in result["msg"]


def test_runs_through_ansible(run_module, emulator, tools, ssm, name, cleanup):
    args = base_args(name)
    emulator.reset_calls()
    check = run_module(MODULE, args, check=True, diff=True, via="ansible")
    assert check["changed"] is True, check
    assert tools.mutations(emulator.calls()) == {}
    made = run_module(MODULE, args, via="ansible")
    assert made["changed"] is True, made
    assert not made.get("warnings"), made["warnings"]  # e.g. no "key looks like a secret" no_log warnings
    cleanup.append(made["association"]["association_id"])
    assert only(ssm, name)["AssociationId"] == made["association"]["association_id"]
    assert run_module(MODULE, args, via="ansible")["changed"] is False
