"""ssm_resource_data_sync run for real (child process, as Ansible runs it) against the lab emulator.

Four-step idempotency, delete + create when the settings differ (or a failure with recreate=false), check mode
without mutating calls, validation before any AWS call, and the inventory a registered node reports landing in
the bucket under the sync's prefix in AWS's key layout.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime

import boto3
import labconst
import pytest
import yaml
from botocore.exceptions import ClientError
from lab.test_emulator_ssm import Agent
from plugin_loader import load_plugin

MODULE = "ssm_resource_data_sync"
REGION = labconst.REGION
KMS_KEY = f"arn:aws:kms:{REGION}:{labconst.ACCOUNT_ID}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def make_bucket(emulator) -> str:
    name = f"inv-{uuid.uuid4().hex[:10]}"
    emulator.client("s3").create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    return name


def drop_bucket(emulator, name: str) -> None:
    s3 = emulator.client("s3")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket=name, Key=obj["Key"])
    s3.delete_bucket(Bucket=name)


@pytest.fixture
def bucket(emulator):
    name = make_bucket(emulator)
    yield name
    drop_bucket(emulator, name)


@pytest.fixture
def other_bucket(emulator):
    name = make_bucket(emulator)
    yield name
    drop_bucket(emulator, name)


@pytest.fixture
def sync(emulator):
    """A fresh sync name; whatever sync of that name is left is deleted (AWS allows only a few per account)."""
    name = f"sync-{uuid.uuid4().hex[:8]}"
    yield name
    for sync_type in ("SyncToDestination", "SyncFromSource"):
        try:
            emulator.client("ssm").delete_resource_data_sync(SyncName=name, SyncType=sync_type)
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "ResourceDataSyncNotFoundException"


def warnings(result: dict) -> list[str]:
    """The warnings' texts (ansible-core 2.19 returns them as structured events when run directly)."""
    return [w if isinstance(w, str) else w.get("event", {}).get("msg", str(w)) for w in result.get("warnings") or []]


def live(emulator, name: str) -> list[dict]:
    """Every SyncToDestination sync with this name, as AWS lists it."""
    items = emulator.client("ssm").get_paginator("list_resource_data_sync").paginate(SyncType="SyncToDestination")
    return [i for page in items for i in page["ResourceDataSyncItems"] if i["SyncName"] == name]


def test_four_step_then_absent_twice(run_module, emulator, tools, bucket, sync):
    args = {"name": sync, "bucket_name": bucket, "prefix": "inventory"}
    emulator.reset_calls()
    check = run_module(MODULE, args, check=True, diff=True)
    assert check["changed"] is True and check["resource_data_sync"] == {}, check
    assert check["diff"] == {
        "before": {},
        "after": {
            "sync_name": sync,
            "sync_type": "SyncToDestination",
            "s3_destination": {
                "bucket_name": bucket,
                "prefix": "inventory",
                "region": REGION,
                "sync_format": "JsonSerDe",
                "awskms_key_arn": None,
                "destination_data_sharing": None,
            },
        },
    }
    assert tools.mutations(emulator.calls()) == {}
    assert live(emulator, sync) == []

    made = run_module(MODULE, args, diff=True)
    assert made["changed"] is True, made
    assert warnings(made) == []
    got = made["resource_data_sync"]
    assert got["sync_name"] == sync and got["sync_type"] == "SyncToDestination"
    assert got["s3_destination"] == check["diff"]["after"]["s3_destination"]
    assert got["last_status"] == "Successful" and got["sync_created_time"]
    (item,) = live(emulator, sync)
    assert item["S3Destination"] == {
        "BucketName": bucket,
        "Prefix": "inventory",
        "Region": REGION,
        "SyncFormat": "JsonSerDe",
    }

    emulator.reset_calls()
    again_check = run_module(MODULE, args, check=True, diff=True)
    again = run_module(MODULE, args, diff=True)
    for result in (again_check, again):
        assert result["changed"] is False, result
        assert result["diff"] == {"before": {}, "after": {}}
        assert result["resource_data_sync"]["sync_created_time"] == got["sync_created_time"]
    assert tools.mutations(emulator.calls()) == {}

    absent = {"name": sync, "state": "absent"}
    gone_check = run_module(MODULE, absent, check=True, diff=True)
    assert gone_check["changed"] is True
    assert gone_check["diff"]["before"]["s3_destination"]["prefix"] == "inventory"
    assert len(live(emulator, sync)) == 1
    gone = run_module(MODULE, absent)
    assert gone["changed"] is True and gone["resource_data_sync"] == {}
    assert live(emulator, sync) == []
    emulator.reset_calls()
    second = run_module(MODULE, absent)
    assert second["changed"] is False, second
    assert tools.mutations(emulator.calls()) == {}


def test_prefix_change_recreates_the_sync(run_module, emulator, tools, bucket, sync):
    first = run_module(MODULE, {"name": sync, "bucket_name": bucket, "prefix": "old"})
    emulator.reset_calls()
    moved = run_module(MODULE, {"name": sync, "bucket_name": bucket, "prefix": "new"}, diff=True)
    assert moved["changed"] is True, moved
    assert moved["diff"] == {
        "before": {"s3_destination": {"prefix": "old"}},
        "after": {"s3_destination": {"prefix": "new"}},
    }
    assert tools.mutations(emulator.calls()) == {"ssm:DeleteResourceDataSync": 1, "ssm:CreateResourceDataSync": 1}
    (item,) = live(emulator, sync)
    assert item["S3Destination"]["Prefix"] == "new" and item["S3Destination"]["BucketName"] == bucket
    assert moved["resource_data_sync"]["s3_destination"]["prefix"] == "new"
    assert moved["resource_data_sync"]["sync_created_time"] >= first["resource_data_sync"]["sync_created_time"]
    assert run_module(MODULE, {"name": sync, "bucket_name": bucket, "prefix": "new"})["changed"] is False


def test_unset_options_keep_the_found_values_and_empty_removes_them(run_module, emulator, bucket, other_bucket, sync):
    made = run_module(
        MODULE,
        {
            "name": sync,
            "bucket_name": bucket,
            "prefix": "keep",
            "kms_key_arn": KMS_KEY,
            "destination_data_sharing": {"type": "Organization"},
        },
    )
    dest = made["resource_data_sync"]["s3_destination"]
    assert dest["awskms_key_arn"] == KMS_KEY
    assert dest["destination_data_sharing"] == {"destination_data_sharing_type": "Organization"}
    # Options not given are not compared: no change.
    assert run_module(MODULE, {"name": sync, "bucket_name": bucket})["changed"] is False
    # Another bucket forces a recreation; prefix, key and sharing carry over.
    moved = run_module(MODULE, {"name": sync, "bucket_name": other_bucket}, diff=True)
    assert moved["changed"] is True
    assert moved["diff"]["after"] == {"s3_destination": {"bucket_name": other_bucket}}
    (item,) = live(emulator, sync)
    assert item["S3Destination"] == {
        "BucketName": other_bucket,
        "Prefix": "keep",
        "Region": REGION,
        "SyncFormat": "JsonSerDe",
        "AWSKMSKeyARN": KMS_KEY,
        "DestinationDataSharing": {"DestinationDataSharingType": "Organization"},
    }
    # Empty values remove them.
    cleared_args = {
        "name": sync,
        "bucket_name": other_bucket,
        "prefix": "",
        "kms_key_arn": "",
        "destination_data_sharing": {},
    }
    cleared = run_module(MODULE, cleared_args)
    assert cleared["changed"] is True
    assert cleared["resource_data_sync"]["s3_destination"] == {
        "bucket_name": other_bucket,
        "prefix": None,
        "region": REGION,
        "sync_format": "JsonSerDe",
        "awskms_key_arn": None,
        "destination_data_sharing": None,
    }
    (item,) = live(emulator, sync)
    assert set(item["S3Destination"]) == {"BucketName", "Region", "SyncFormat"}
    assert run_module(MODULE, cleared_args)["changed"] is False


def test_recreate_false_fails_naming_the_fields_and_leaves_the_sync(run_module, emulator, tools, bucket, sync):
    run_module(MODULE, {"name": sync, "bucket_name": bucket, "prefix": "old"})
    emulator.reset_calls()
    result = run_module(
        MODULE, {"name": sync, "bucket_name": bucket, "prefix": "new", "bucket_region": "us-east-1", "recreate": False}
    )
    assert result.get("failed") is True, result
    assert "prefix (is 'old', wanted 'new')" in result["msg"]
    assert "bucket_region (is '" + REGION + "', wanted 'us-east-1')" in result["msg"]
    assert "recreate=true" in result["msg"] and "bucket_name (" not in result["msg"]
    assert tools.mutations(emulator.calls()) == {}
    (item,) = live(emulator, sync)
    assert item["S3Destination"]["Prefix"] == "old" and item["S3Destination"]["Region"] == REGION


def test_check_mode_never_mutates(run_module, emulator, tools, bucket, sync):
    made = run_module(MODULE, {"name": sync, "bucket_name": bucket, "prefix": "old"})
    emulator.reset_calls()
    would = run_module(MODULE, {"name": sync, "bucket_name": bucket, "prefix": "new"}, check=True, diff=True)
    assert would["changed"] is True
    assert would["diff"]["after"] == {"s3_destination": {"prefix": "new"}}
    assert would["resource_data_sync"] == made["resource_data_sync"]
    assert run_module(MODULE, {"name": sync, "state": "absent"}, check=True)["changed"] is True
    assert tools.mutations(emulator.calls()) == {}
    (item,) = live(emulator, sync)
    assert item["S3Destination"]["Prefix"] == "old"


def test_returned_keys_match_return_doc(run_module, tools, bucket, sync):
    documented = yaml.safe_load(load_plugin("modules", MODULE).RETURN)
    made = run_module(MODULE, {"name": sync, "bucket_name": bucket})
    assert set(made) - tools.STANDARD_KEYS == tools.return_keys(MODULE)
    contains = documented["resource_data_sync"]["contains"]
    assert set(made["resource_data_sync"]) == set(contains)
    assert set(made["resource_data_sync"]["s3_destination"]) == set(contains["s3_destination"]["contains"])
    for key in ("last_sync_time", "last_successful_sync_time", "sync_created_time", "sync_last_modified_time"):
        assert datetime.fromisoformat(made["resource_data_sync"][key]).tzinfo is not None, key
    gone = run_module(MODULE, {"name": sync, "state": "absent"})
    assert set(gone) - tools.STANDARD_KEYS == tools.return_keys(MODULE)


def test_missing_bucket_warns_with_the_sync_status(run_module, sync):
    missing = f"missing-{uuid.uuid4().hex[:8]}"
    made = run_module(MODULE, {"name": sync, "bucket_name": missing})
    assert made["changed"] is True and made["resource_data_sync"]["last_status"] == "Failed"
    assert made["resource_data_sync"]["last_sync_status_message"]
    assert any(missing in w and "Failed" in w for w in warnings(made)), made.get("warnings")


def test_a_sync_of_another_type_is_never_touched(run_module, emulator, bucket, sync):
    ssm = emulator.client("ssm")
    ssm.create_resource_data_sync(
        SyncName=sync,
        SyncType="SyncFromSource",
        SyncSource={"SourceType": "SingleAccountMultiRegions", "SourceRegions": [REGION]},
    )
    made = run_module(MODULE, {"name": sync, "bucket_name": bucket})
    assert made.get("failed") is True
    assert "Failed to create resource data sync" in made["msg"] and "SyncFromSource" in made["msg"]
    assert run_module(MODULE, {"name": sync, "state": "absent"})["changed"] is False
    others = ssm.list_resource_data_sync(SyncType="SyncFromSource")["ResourceDataSyncItems"]
    assert [i["SyncName"] for i in others if i["SyncName"] == sync] == [sync]


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"name": "has space"}, "name must be"),
        ({"name": "x" * 65}, "name must be"),
        ({"bucket_name": None}, "bucket_name is required"),
        ({"bucket_name": "s3://inv-bucket/inventory"}, "use 'inv-bucket'"),
        ({"bucket_name": "arn:aws:s3:::inv-bucket"}, "use 'inv-bucket'"),
        ({"bucket_name": "x"}, "bucket_name 'x' is not a valid"),
        ({"prefix": "p" * 257}, "prefix must be at most 256"),
        ({"bucket_region": "Ireland"}, "bucket_region must be a region"),
        ({"kms_key_arn": "1234abcd-12ab-34cd-56ef-1234567890ab"}, "kms_key_arn must be the ARN"),
        ({"kms_key_arn": KMS_KEY.replace(REGION, "us-west-2")}, "kms_key_arn must be a key in the bucket's region"),
        ({"sync_format": "Csv"}, "sync_format"),
        ({"destination_data_sharing": {"type": "Account"}}, "type"),
    ],
)
def test_validation_fails_before_any_call(run_module, emulator, tools, extra, named):
    emulator.reset_calls()
    args = {"name": f"sync-{uuid.uuid4().hex[:8]}", "bucket_name": "inv-bucket", **extra}
    args = {k: v for k, v in args.items() if v is not None}
    result = run_module(MODULE, args)
    assert result.get("failed") is True, result
    assert named in result["msg"], result["msg"]
    assert tools.total_calls(emulator.calls()) == 0


@pytest.fixture
def node(emulator):
    """A registered, online hybrid node (simulated agent); deregistered afterwards."""
    role = f"rds-role-{uuid.uuid4().hex[:8]}"
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ssm.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
    emulator.client("iam").create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
    ssm = emulator.client("ssm")
    activation = ssm.create_activation(IamRole=role)
    agent = Agent(emulator.url)
    for step in (
        lambda: agent.register(activation["ActivationId"], activation["ActivationCode"]),
        agent.role_token,
        agent.heartbeat,
    ):
        status, answer = step()
        assert status == 200, answer
    yield agent
    ssm.deregister_managed_instance(InstanceId=agent.instance_id)
    ssm.delete_activation(ActivationId=activation["ActivationId"])


def test_inventory_of_a_node_lands_in_the_bucket_under_the_prefix(run_module, emulator, bucket, sync, node):
    prefix = "inventory/site1"
    made = run_module(MODULE, {"name": sync, "bucket_name": bucket, "prefix": prefix})
    assert made["changed"] is True and made["resource_data_sync"]["last_status"] == "Successful"

    # The node reports its software with its own credentials, as AWS-GatherSoftwareInventory does.
    node_ssm = boto3.client(
        "ssm",
        endpoint_url=emulator.url,
        region_name=REGION,
        aws_access_key_id=node.creds["AccessKeyId"],
        aws_secret_access_key=node.creds["SecretAccessKey"],
        aws_session_token=node.creds["SessionToken"],
    )
    node_ssm.put_inventory(
        InstanceId=node.instance_id,
        Items=[
            {
                "TypeName": "AWS:Application",
                "SchemaVersion": "1.1",
                "CaptureTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "Content": [{"Name": "amazon-ssm-agent", "Version": "3.3.1142.0"}, {"Name": "curl", "Version": "7.88"}],
            }
        ],
    )

    s3 = emulator.client("s3")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    keys = [obj["Key"] for page in pages for obj in page.get("Contents", [])]
    layout = re.compile(
        rf"^{re.escape(prefix)}/(AWS|Custom):[A-Za-z]+/accountid={labconst.ACCOUNT_ID}/region={REGION}/"
        r"resourcetype=ManagedInstanceInventory/mi-[0-9a-f]{17}\.json$"
    )
    assert keys and all(layout.match(k) for k in keys), keys
    tail = (
        f"accountid={labconst.ACCOUNT_ID}/region={REGION}/resourcetype=ManagedInstanceInventory/{node.instance_id}.json"
    )
    apps_key = f"{prefix}/AWS:Application/{tail}"
    info_key = f"{prefix}/AWS:InstanceInformation/{tail}"
    assert {apps_key, info_key} <= set(keys)
    rows = [json.loads(line) for line in s3.get_object(Bucket=bucket, Key=apps_key)["Body"].read().splitlines()]
    assert {r["Name"] for r in rows} == {"amazon-ssm-agent", "curl"}
    assert {r["resourceId"] for r in rows} == {node.instance_id}
    (info,) = [json.loads(line) for line in s3.get_object(Bucket=bucket, Key=info_key)["Body"].read().splitlines()]
    assert info["InstanceId"] == node.instance_id and info["PlatformName"] == "Debian GNU/Linux"

    status = run_module(MODULE, {"name": sync, "bucket_name": bucket, "prefix": prefix})
    assert status["changed"] is False
    assert status["resource_data_sync"]["last_successful_sync_time"] >= made["resource_data_sync"]["last_sync_time"]


def test_through_ansible_check_mode_and_diff(run_module, emulator, tools, bucket, sync):
    args = {"name": sync, "bucket_name": bucket, "destination_data_sharing": {"type": "Organization"}}
    emulator.reset_calls()
    would = run_module(MODULE, args, check=True, diff=True, via="ansible")
    assert would["changed"] is True, would
    assert tools.mutations(emulator.calls()) == {}
    assert live(emulator, sync) == []
    made = run_module(MODULE, args, via="ansible")
    assert made["changed"] is True, made
    (item,) = live(emulator, sync)
    assert item["S3Destination"]["DestinationDataSharing"] == {"DestinationDataSharingType": "Organization"}
    assert run_module(MODULE, args, via="ansible")["changed"] is False
