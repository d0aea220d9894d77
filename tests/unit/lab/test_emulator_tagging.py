"""The emulator's GetResources for hybrid managed nodes (emulator/tagging_ext.py), over HTTP with boto3."""

from __future__ import annotations

import uuid

import labconst
import pytest
from botocore.exceptions import ClientError
from lab import test_emulator_ssm as base
from lab.test_emulator_ssm import Agent

# test_emulator_ssm's fixtures: the SSM client and a fresh role trusted by ssm.amazonaws.com.
ssm, role = base.ssm, base.role


@pytest.fixture
def nodes(emulator, ssm, role):
    """Three nodes registered as the agent does, with a fresh activation and role."""
    act = ssm.create_activation(IamRole=role, RegistrationLimit=3)
    ids = []
    for _i in range(3):
        agent = Agent(emulator.url)
        assert agent.register(act["ActivationId"], act["ActivationCode"])[0] == 200
        ids.append(agent.instance_id)
    yield ids
    for i in ids:
        ssm.deregister_managed_instance(InstanceId=i)
    ssm.delete_activation(ActivationId=act["ActivationId"])


def _arn(emulator, instance_id):
    account = emulator.client("sts").get_caller_identity()["Account"]
    return f"arn:aws:ssm:{labconst.REGION}:{account}:managed-instance/{instance_id}"


def test_arn_list_answers_tagged_registered_nodes_in_order(emulator, ssm, nodes):
    tagging = emulator.client("resourcegroupstaggingapi")
    first, untagged, third = nodes
    for i, site in ((first, "paris"), (third, "lyon")):
        ssm.add_tags_to_resource(ResourceType="ManagedInstance", ResourceId=i, Tags=[{"Key": "Site", "Value": site}])
    gone = "mi-0123456789abcdef0"
    arns = [_arn(emulator, i) for i in (third, untagged, gone, first)]
    answer = tagging.get_resources(ResourceARNList=arns)["ResourceTagMappingList"]
    assert answer == [
        {"ResourceARN": arns[0], "Tags": [{"Key": "Site", "Value": "lyon"}]},
        {"ResourceARN": arns[3], "Tags": [{"Key": "Site", "Value": "paris"}]},
    ]
    with pytest.raises(ClientError) as exc:
        tagging.get_resources(ResourceARNList=arns, ResourcesPerPage=10)
    assert exc.value.response["Error"]["Code"] == "InvalidParameterException"


def test_type_filter_pages_and_tag_filters(emulator, ssm, nodes):
    tagging = emulator.client("resourcegroupstaggingapi")
    run = uuid.uuid4().hex[:8]
    for n, i in enumerate(nodes):
        ssm.add_tags_to_resource(
            ResourceType="ManagedInstance",
            ResourceId=i,
            Tags=[{"Key": "Run", "Value": run}, {"Key": "N", "Value": str(n)}],
        )
    pages = tagging.get_paginator("get_resources").paginate(
        ResourceTypeFilters=["ssm:managed-instance"], TagFilters=[{"Key": "Run", "Values": [run]}], ResourcesPerPage=2
    )
    listed = [m["ResourceARN"] for page in pages for m in page["ResourceTagMappingList"]]
    assert listed == [_arn(emulator, i) for i in nodes]
    only = tagging.get_resources(
        ResourceTypeFilters=["ssm:managed-instance"],
        TagFilters=[{"Key": "Run", "Values": [run]}, {"Key": "N", "Values": ["1"]}],
    )["ResourceTagMappingList"]
    assert [m["ResourceARN"] for m in only] == [_arn(emulator, nodes[1])]
