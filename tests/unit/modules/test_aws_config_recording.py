"""aws_config_recording run for real (child process, as Ansible runs it) against the lab emulator (moto).

The bug this module fixes is community.aws.config_recorder reporting `changed` on every run, so idempotency is
tested hard: check -> real -> check -> real, also through `ansible` itself, with the resource types in another
order on the second round. Also: recording really started and stopped (status described with boto3), merging
with an existing recorder's types (list, all supported, exclusions), refusing a recorder or channel with another
name before any change, absent twice, check mode without a mutating call, validation before any call, RETURN.

AWS allows one recorder and one delivery channel per account and region, and moto keeps them per region in the
process-wide emulator: every test takes its own region (``region`` fixture) and leaves it empty.
"""

from __future__ import annotations

import itertools

import labconst
import pytest
import yaml
from plugin_loader import load_plugin

MODULE = "aws_config_recording"
ROLE = f"arn:aws:iam::{labconst.ACCOUNT_ID}:role/hybrid-aws-config"
OTHER_ROLE = f"arn:aws:iam::{labconst.ACCOUNT_ID}:role/site-aws-config"
TOPIC = f"arn:aws:sns:us-east-2:{labconst.ACCOUNT_ID}:config-events"
OURS = ["AWS::SSM::ManagedInstanceInventory", "AWS::SSM::FileData"]
KMS = f"arn:aws:kms:us-east-2:{labconst.ACCOUNT_ID}:key/0b0e2a8c-6f1d-4a7c-9e3f-1f2d3c4b5a69"

# Not the lab's own region (eu-west-1): no other test's recorder can be there.
_REGIONS = itertools.cycle(
    [
        "us-east-2",
        "eu-central-1",
        "ap-southeast-2",
        "ca-central-1",
        "eu-north-1",
        "sa-east-1",
        "us-west-1",
        "ap-northeast-1",
        "eu-west-2",
        "ap-south-1",
        "us-west-2",
        "eu-west-3",
        "ap-northeast-2",
        "ap-southeast-1",
    ]
)


def wipe(config) -> None:
    for status in config.describe_configuration_recorder_status()["ConfigurationRecordersStatus"]:
        if status.get("recording"):
            config.stop_configuration_recorder(ConfigurationRecorderName=status["name"])
    for channel in config.describe_delivery_channels()["DeliveryChannels"]:
        config.delete_delivery_channel(DeliveryChannelName=channel["name"])
    for recorder in config.describe_configuration_recorders()["ConfigurationRecorders"]:
        config.delete_configuration_recorder(ConfigurationRecorderName=recorder["name"])


@pytest.fixture
def region(emulator) -> str:
    name = next(_REGIONS)
    config = emulator.client("config", region=name)
    wipe(config)
    yield name
    wipe(config)


@pytest.fixture
def config(emulator, region):
    """boto3 AWS Config client on the emulator in the test's region: the outside view of what the module did."""
    return emulator.client("config", region=region)


@pytest.fixture
def run(run_module, region):
    def _run(args, **kwargs):
        return run_module(MODULE, args, region=region, **kwargs)

    return _run


def present(**extra):
    return {"role_arn": ROLE, "resource_types": list(OURS), "s3_bucket_name": "hybrid-config-audit", **extra}


def recorders(config):
    return config.describe_configuration_recorders()["ConfigurationRecorders"]


def channels(config):
    return config.describe_delivery_channels()["DeliveryChannels"]


def is_recording(config, name="default") -> bool:
    statuses = config.describe_configuration_recorder_status()["ConfigurationRecordersStatus"]
    return any(s["name"] == name and s["recording"] for s in statuses)


def put_recorder(config, name="default", role=OTHER_ROLE, **group):
    config.put_configuration_recorder(ConfigurationRecorder={"name": name, "roleARN": role, "recordingGroup": group})


@pytest.mark.parametrize(
    ("args", "recorded", "channel"),
    [
        (
            present(s3_key_prefix="config", sns_topic_arn=TOPIC, delivery_frequency="Six_Hours"),
            {"allSupported": False, "resourceTypes": sorted(OURS)},
            {
                "name": "default",
                "s3BucketName": "hybrid-config-audit",
                "s3KeyPrefix": "config",
                "snsTopicARN": TOPIC,
                "configSnapshotDeliveryProperties": {"deliveryFrequency": "Six_Hours"},
            },
        ),
        (
            {
                "recorder_name": "hybrid",
                "delivery_channel_name": "hybrid-audit",
                "role_arn": ROLE,
                "all_supported": True,
                "include_global_resource_types": True,
                "s3_bucket_name": "hybrid-config-audit",
            },
            {"allSupported": True, "includeGlobalResourceTypes": True, "resourceTypes": []},
            {"name": "hybrid-audit", "s3BucketName": "hybrid-config-audit"},
        ),
    ],
    ids=["resource_types", "all_supported"],
)
def test_four_step_idempotency_then_absent_twice(run, emulator, tools, config, args, recorded, channel):
    name = args.get("recorder_name", "default")
    emulator.reset_calls()
    check = run(args, check=True, diff=True)
    assert check["changed"] is True, check
    assert tools.mutations(emulator.calls()) == {}
    assert recorders(config) == [] and channels(config) == []
    assert check["recorder"] == {} and check["delivery_channel"] == {} and check["recording"] is False
    assert check["diff"]["before"] == {"recorder": {}, "delivery_channel": {}, "recording": False}
    would = check["diff"]["after"]
    assert would["recording"] is True
    assert would["recorder"]["name"] == name and would["recorder"]["role_arn"] == ROLE
    assert would["recorder"]["resource_types"] == sorted(args.get("resource_types", []))
    assert would["delivery_channel"]["s3_bucket_name"] == "hybrid-config-audit"

    emulator.reset_calls()
    made = run(args, diff=True)
    assert made["changed"] is True, made
    assert not made.get("warnings") and not made.get("deprecations"), made
    assert tools.mutations(emulator.calls()) == {
        "config:PutConfigurationRecorder": 1,
        "config:PutDeliveryChannel": 1,
        "config:StartConfigurationRecorder": 1,
    }
    (live,) = recorders(config)
    assert live["name"] == name and live["roleARN"] == ROLE
    group = live["recordingGroup"]
    assert {k: sorted(group[k]) if k == "resourceTypes" else group[k] for k in recorded} == recorded
    assert channels(config) == [channel]
    assert is_recording(config, name)
    assert made["recording"] is True
    assert made["recorder"] == would["recorder"]  # what check mode announced is what happened
    assert made["delivery_channel"] == would["delivery_channel"]
    assert made["diff"]["after"] == {k: made[k] for k in ("recorder", "delivery_channel", "recording")}

    # Second round, resource types in another order: AWS's answer carries keys we do not own
    # (recordingStrategy, exclusionByResourceTypes, includeGlobalResourceTypes) - none of them is a change.
    again_args = dict(args)
    if "resource_types" in args:
        again_args["resource_types"] = list(reversed(args["resource_types"]))
    emulator.reset_calls()
    again_check = run(again_args, check=True, diff=True)
    again = run(again_args, diff=True)
    for result in (again_check, again):
        assert result["changed"] is False, result
        assert result["recorder"] == made["recorder"] and result["delivery_channel"] == made["delivery_channel"]
        assert result["recording"] is True
    assert tools.mutations(emulator.calls()) == {}

    absent = {"state": "absent", "recorder_name": name, "delivery_channel_name": channel["name"]}
    emulator.reset_calls()
    absent_check = run(absent, check=True, diff=True)
    assert absent_check["changed"] is True
    assert absent_check["diff"]["after"] == {"recorder": {}, "delivery_channel": {}, "recording": False}
    assert tools.mutations(emulator.calls()) == {}
    assert len(recorders(config)) == 1 and is_recording(config, name)
    gone = run(absent)
    assert gone["changed"] is True, gone
    assert tools.mutations(emulator.calls()) == {
        "config:StopConfigurationRecorder": 1,
        "config:DeleteDeliveryChannel": 1,
        "config:DeleteConfigurationRecorder": 1,
    }
    assert recorders(config) == [] and channels(config) == []
    assert gone["recorder"] == {} and gone["delivery_channel"] == {} and gone["recording"] is False
    emulator.reset_calls()
    assert run(absent)["changed"] is False
    assert tools.mutations(emulator.calls()) == {}


def test_four_step_through_ansible(run_module, emulator, tools, config, region):
    args = present(delivery_frequency="TwentyFour_Hours")
    steps = [(True, True), (False, True), (True, False), (False, False)]  # (check mode, expected changed)
    for check, expected in steps:
        emulator.reset_calls()
        result = run_module(MODULE, args, check=check, diff=True, via="ansible", region=region)
        assert result.get("failed") is not True, result
        assert result["changed"] is expected, (check, result)
        if check or not expected:
            assert tools.mutations(emulator.calls()) == {}
    assert is_recording(config)
    assert sorted(recorders(config)[0]["recordingGroup"]["resourceTypes"]) == sorted(OURS)


def test_recording_is_stopped_and_started(run, emulator, tools, config):
    run(present())
    assert is_recording(config)
    emulator.reset_calls()
    stopped = run(present(recording=False), diff=True)
    assert stopped["changed"] is True and stopped["recording"] is False
    assert stopped["diff"]["before"]["recording"] is True and stopped["diff"]["after"]["recording"] is False
    assert tools.mutations(emulator.calls()) == {"config:StopConfigurationRecorder": 1}
    assert not is_recording(config)
    assert run(present(recording=False))["changed"] is False
    emulator.reset_calls()
    started = run(present())
    assert started["changed"] is True and started["recording"] is True
    assert tools.mutations(emulator.calls()) == {"config:StartConfigurationRecorder": 1}
    assert is_recording(config)


def test_new_recorder_with_recording_false_is_not_started(run, config):
    made = run(present(recording=False))
    assert made["changed"] is True and made["recording"] is False
    assert len(recorders(config)) == 1 and len(channels(config)) == 1
    assert not is_recording(config)
    assert run(present(recording=False))["changed"] is False


def test_merge_records_the_union_of_an_existing_list_and_ours(run, emulator, tools, config):
    put_recorder(config, allSupported=False, resourceTypes=["AWS::EC2::Instance"])
    emulator.reset_calls()
    merged = run(present(), diff=True)
    assert merged["changed"] is True, merged
    assert merged["diff"]["before"]["recorder"]["resource_types"] == ["AWS::EC2::Instance"]
    union = sorted(["AWS::EC2::Instance", *OURS])
    assert merged["recorder"]["resource_types"] == union
    assert sorted(recorders(config)[0]["recordingGroup"]["resourceTypes"]) == union
    assert recorders(config)[0]["roleARN"] == ROLE
    assert run(present())["changed"] is False

    # merge_resource_types=false records exactly ours: the site's EC2 recording goes (asked for, shown in the diff).
    exact = run(present(merge_resource_types=False), diff=True)
    assert exact["changed"] is True
    assert exact["diff"]["before"]["recorder"]["resource_types"] == union
    assert exact["diff"]["after"]["recorder"]["resource_types"] == sorted(OURS)
    assert sorted(recorders(config)[0]["recordingGroup"]["resourceTypes"]) == sorted(OURS)


def test_an_existing_all_supported_recorder_is_left_alone(run, emulator, tools, config):
    put_recorder(config, role=ROLE, allSupported=True, includeGlobalResourceTypes=True)
    config.put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": "hybrid-config-audit"})
    config.start_configuration_recorder(ConfigurationRecorderName="default")
    emulator.reset_calls()
    kept = run(present(), diff=True)
    assert kept["changed"] is False, kept
    assert tools.mutations(emulator.calls()) == {}
    assert kept["recorder"]["all_supported"] is True and kept["recorder"]["resource_types"] == []
    group = recorders(config)[0]["recordingGroup"]
    assert group["allSupported"] is True and group["includeGlobalResourceTypes"] is True

    # Another role is ours to set; the recording group stays all supported with the global types.
    emulator.reset_calls()
    new_role = run(present(role_arn=OTHER_ROLE), diff=True)
    assert new_role["changed"] is True
    assert new_role["diff"]["before"]["recorder"]["role_arn"] == ROLE
    assert tools.mutations(emulator.calls()) == {"config:PutConfigurationRecorder": 1}
    (live,) = recorders(config)
    assert live["roleARN"] == OTHER_ROLE
    assert live["recordingGroup"]["allSupported"] is True and live["recordingGroup"]["includeGlobalResourceTypes"]
    assert is_recording(config)

    # all_supported with include_global_resource_types=false does not narrow the existing global recording.
    assert (
        run(present(role_arn=OTHER_ROLE, resource_types=None, all_supported=True, include_global_resource_types=False))[
            "changed"
        ]
        is False
    )
    assert recorders(config)[0]["recordingGroup"]["includeGlobalResourceTypes"] is True


def test_an_exclusion_recorder_stops_excluding_ours(run, config):
    put_recorder(
        config,
        allSupported=False,
        exclusionByResourceTypes={"resourceTypes": ["AWS::EC2::Instance", "AWS::SSM::FileData"]},
        recordingStrategy={"useOnly": "EXCLUSION_BY_RESOURCE_TYPES"},
    )
    merged = run(present(), diff=True)
    assert merged["changed"] is True, merged
    assert merged["diff"]["before"]["recorder"]["excluded_resource_types"] == [
        "AWS::EC2::Instance",
        "AWS::SSM::FileData",
    ]
    assert merged["recorder"]["excluded_resource_types"] == ["AWS::EC2::Instance"]
    group = recorders(config)[0]["recordingGroup"]
    assert group["exclusionByResourceTypes"]["resourceTypes"] == ["AWS::EC2::Instance"]
    assert group["recordingStrategy"]["useOnly"] == "EXCLUSION_BY_RESOURCE_TYPES"
    assert run(present())["changed"] is False


def test_an_exclusion_of_only_ours_is_refused_before_any_change(run, emulator, tools, config):
    put_recorder(
        config,
        allSupported=False,
        exclusionByResourceTypes={"resourceTypes": ["AWS::SSM::FileData"]},
        recordingStrategy={"useOnly": "EXCLUSION_BY_RESOURCE_TYPES"},
    )
    emulator.reset_calls()
    refused = run(present())
    assert refused.get("failed") is True, refused
    assert "merge_resource_types" in refused["msg"] and "all_supported" in refused["msg"]
    assert tools.mutations(emulator.calls()) == {}
    assert recorders(config)[0]["recordingGroup"]["exclusionByResourceTypes"]["resourceTypes"] == ["AWS::SSM::FileData"]


def test_a_recorder_with_another_name_fails_before_any_change(run, emulator, tools, config):
    put_recorder(config, name="site-recorder", allSupported=False, resourceTypes=["AWS::EC2::Instance"])
    before = recorders(config)
    emulator.reset_calls()
    result = run(present())
    assert result.get("failed") is True, result
    assert "recorder_name" in result["msg"] and "'site-recorder'" in result["msg"] and "'default'" in result["msg"]
    assert tools.mutations(emulator.calls()) == {}
    assert recorders(config) == before and channels(config) == []
    # Not ours to delete either.
    assert run({"state": "absent"})["changed"] is False
    assert recorders(config) == before


def test_a_delivery_channel_with_another_name_fails_before_any_change(run, emulator, tools, config):
    put_recorder(config, allSupported=False, resourceTypes=["AWS::EC2::Instance"])
    config.put_delivery_channel(DeliveryChannel={"name": "site-audit", "s3BucketName": "site-bucket"})
    before = (recorders(config), channels(config))
    emulator.reset_calls()
    result = run(present())  # wants another role and more types: a change would show
    assert result.get("failed") is True, result
    assert "delivery_channel_name" in result["msg"] and "'site-audit'" in result["msg"]
    assert tools.mutations(emulator.calls()) == {}
    assert (recorders(config), channels(config)) == before
    assert not is_recording(config)


def test_absent_only_deletes_what_exists(run, emulator, tools, config):
    emulator.reset_calls()
    nothing = run({"state": "absent"}, diff=True)
    assert nothing["changed"] is False
    assert tools.mutations(emulator.calls()) == {}
    put_recorder(config, allSupported=True)
    emulator.reset_calls()
    gone = run({"state": "absent"})
    assert gone["changed"] is True
    assert tools.mutations(emulator.calls()) == {"config:DeleteConfigurationRecorder": 1}
    assert recorders(config) == []
    assert run({"state": "absent"})["changed"] is False


def test_absent_refuses_to_stop_a_recorder_that_is_not_ours(run, emulator, tools, config):
    put_recorder(config, name="site-recorder", allSupported=True)
    config.put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": "site-bucket"})
    config.start_configuration_recorder(ConfigurationRecorderName="site-recorder")
    emulator.reset_calls()
    result = run({"state": "absent"})
    assert result.get("failed") is True, result
    assert "recorder_name" in result["msg"] and "'site-recorder'" in result["msg"]
    assert tools.mutations(emulator.calls()) == {}
    assert is_recording(config, "site-recorder") and len(channels(config)) == 1


def test_check_mode_makes_no_mutating_call_on_an_update(run, emulator, tools, config):
    run(present(s3_key_prefix="config"))
    before = (recorders(config), channels(config))
    emulator.reset_calls()
    would = run(
        present(
            role_arn=OTHER_ROLE, resource_types=["AWS::SSM::PatchCompliance"], s3_key_prefix="other", recording=False
        ),
        check=True,
        diff=True,
    )
    assert would["changed"] is True
    assert tools.mutations(emulator.calls()) == {}
    assert (recorders(config), channels(config)) == before and is_recording(config)
    assert would["diff"]["after"]["recorder"]["role_arn"] == OTHER_ROLE
    assert would["diff"]["after"]["recorder"]["resource_types"] == sorted([*OURS, "AWS::SSM::PatchCompliance"])
    assert would["diff"]["after"]["delivery_channel"]["s3_key_prefix"] == "other"
    assert would["diff"]["after"]["recording"] is False
    assert would["recorder"]["role_arn"] == ROLE  # returned as found


def test_delivery_channel_options_not_set_are_kept(run, emulator, tools, config):
    config.put_configuration_recorder(
        ConfigurationRecorder={"name": "default", "roleARN": ROLE, "recordingGroup": {"resourceTypes": list(OURS)}}
    )
    config.put_delivery_channel(
        DeliveryChannel={
            "name": "default",
            "s3BucketName": "hybrid-config-audit",
            "s3KeyPrefix": "config",
            "s3KmsKeyArn": KMS,
            "snsTopicARN": TOPIC,
            "configSnapshotDeliveryProperties": {"deliveryFrequency": "One_Hour"},
        }
    )
    config.start_configuration_recorder(ConfigurationRecorderName="default")
    emulator.reset_calls()
    assert run(present())["changed"] is False  # prefix, topic, frequency and key not given: kept
    assert tools.mutations(emulator.calls()) == {}

    changed = run(present(s3_key_prefix="audit", sns_topic_arn=""), diff=True)
    assert changed["changed"] is True
    assert changed["diff"]["before"]["delivery_channel"]["s3_key_prefix"] == "config"
    assert tools.mutations(emulator.calls()) == {"config:PutDeliveryChannel": 1}
    (channel,) = channels(config)
    assert channel["s3KeyPrefix"] == "audit" and "snsTopicARN" not in channel  # "" removed the topic
    assert channel["s3KmsKeyArn"] == KMS  # not ours: sent back unchanged
    assert channel["configSnapshotDeliveryProperties"] == {"deliveryFrequency": "One_Hour"}
    assert changed["delivery_channel"]["s3_kms_key_arn"] == KMS


def test_returned_keys_match_return_doc(run, tools):
    documented = yaml.safe_load(load_plugin("modules", MODULE).RETURN)
    made = run(present(sns_topic_arn=TOPIC))
    assert set(made) - tools.STANDARD_KEYS == tools.return_keys(MODULE)
    assert set(made["recorder"]) == set(documented["recorder"]["contains"])
    assert set(made["delivery_channel"]) == set(documented["delivery_channel"]["contains"])
    assert isinstance(made["recording"], bool)
    gone = run({"state": "absent"})
    assert set(gone) - tools.STANDARD_KEYS == tools.return_keys(MODULE)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ({"role_arn": None}, "role_arn"),
        ({"role_arn": "hybrid-aws-config"}, "role_arn"),
        ({"role_arn": "arn:aws:iam::123456789012:user/someone"}, "role_arn"),
        ({"s3_bucket_name": None}, "s3_bucket_name"),
        ({"s3_bucket_name": "s3://hybrid-config-audit/config"}, "s3_bucket_name"),
        ({"resource_types": ["SSM::ManagedInstanceInventory"]}, "resource_types"),
        ({"resource_types": ["AWS::SSM::Managed Instance"]}, "resource_types"),
        ({"resource_types": []}, "resource_types"),
        ({"resource_types": None}, "all_supported"),
        ({"all_supported": True}, "all_supported"),
        ({"include_global_resource_types": True}, "include_global_resource_types"),
        ({"sns_topic_arn": "config-events"}, "sns_topic_arn"),
        ({"recorder_name": ""}, "recorder_name"),
        ({"delivery_channel_name": "x" * 257}, "delivery_channel_name"),
        ({"delivery_frequency": "Daily"}, "delivery_frequency"),
    ],
)
def test_validation_fails_before_any_call(run, emulator, tools, args, named):
    emulator.reset_calls()
    result = run({**present(), **args})
    assert result.get("failed") is True, result
    assert named in result["msg"]
    assert tools.total_calls(emulator.calls()) == 0


def test_an_aws_shaped_answer_is_no_change_and_unowned_fields_are_sent_back():
    """Real AWS returns more than moto: recordingMode, arn, recordingScope. None of it is a change, and an
    update sends recordingMode back (PutConfigurationRecorder would otherwise reset it to continuous)."""
    mod = load_plugin("modules", MODULE)
    found = {
        "arn": "arn:aws:config:us-east-2:123456789012:configuration-recorder/default/abc",
        "name": "default",
        "roleARN": ROLE,
        "recordingGroup": {
            "allSupported": False,
            "includeGlobalResourceTypes": False,
            "resourceTypes": list(reversed(OURS)),
            "exclusionByResourceTypes": {"resourceTypes": []},
            "recordingStrategy": {"useOnly": "INCLUSION_BY_RESOURCE_TYPES"},
        },
        "recordingMode": {"recordingFrequency": "DAILY", "recordingModeOverrides": []},
        "recordingScope": "PAID",
    }
    params = {
        "recorder_name": "default",
        "role_arn": ROLE,
        "resource_types": list(OURS),
        "all_supported": None,
        "include_global_resource_types": None,
        "merge_resource_types": True,
    }
    current = mod.recorder_view(found)
    wanted, problem = mod.wanted_recorder(params, current)
    assert problem is None and wanted == current
    request = mod.recorder_request(dict(wanted, role_arn=OTHER_ROLE), found)
    assert request["recordingMode"] == found["recordingMode"]
    assert request["roleARN"] == OTHER_ROLE and sorted(request["recordingGroup"]["resourceTypes"]) == sorted(OURS)
    assert "arn" not in request and "recordingScope" not in request
