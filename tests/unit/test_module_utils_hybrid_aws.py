"""Unit tests for plugins/module_utils/hybrid_aws.py: the shared pieces of our AWS modules."""

from __future__ import annotations

import botocore.exceptions
import pytest
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.hybrid.onboard.plugins.module_utils import hybrid_aws


def test_base_is_amazon_aws_module_not_a_copy():
    assert hybrid_aws.AnsibleAWSModule is AnsibleAWSModule


def test_changed_fields_ignores_unset_parameters():
    current = {"A": 1, "B": "x"}
    assert hybrid_aws.changed_fields(current, {"A": None, "B": "x"}) == {}
    assert hybrid_aws.changed_fields(current, {"A": 2, "B": None}) == {"A": 2}


def test_changed_fields_unordered_lists_compare_as_sets():
    current = {"SubnetIds": ["b", "a"], "Order": [1, 2]}
    assert hybrid_aws.changed_fields(current, {"SubnetIds": ["a", "b"]}, unordered_keys=("SubnetIds",)) == {}
    assert hybrid_aws.changed_fields(current, {"SubnetIds": ["a", "b"]}) == {"SubnetIds": ["a", "b"]}
    assert hybrid_aws.changed_fields(current, {"Order": [2, 1]}) == {"Order": [2, 1]}


def test_changed_fields_missing_current_key_is_a_change():
    assert hybrid_aws.changed_fields({}, {"Description": "d"}) == {"Description": "d"}


def test_tag_changes_semantics():
    current = {"Name": "a", "aws:cloudformation:stack": "s", "old": "1"}
    assert hybrid_aws.tag_changes(current, None) == ({}, [])
    to_set, to_unset = hybrid_aws.tag_changes(current, {"Name": "b"})
    assert to_set == {"Name": "b"}
    assert to_unset == ["old"]  # aws: keys are never purged
    to_set, to_unset = hybrid_aws.tag_changes(current, {"Name": "a"}, purge_tags=False)
    assert (to_set, to_unset) == ({}, [])


def test_tags_round_trip():
    tags = {"Name": "lab", "Site": "dc1"}
    assert hybrid_aws.tags_from_boto3(hybrid_aws.tags_to_boto3(tags)) == tags
    assert hybrid_aws.tags_from_boto3(None) == {}


def test_snake_result_converts_keys_keeps_tag_values_and_drops_secrets():
    resource = {
        "ActivationId": "abc",
        "ActivationCode": "SECRET",
        "DnsEntries": [{"DnsName": "x", "HostedZoneId": "Z"}],
        "Tags": [{"Key": "MixedCase", "Value": "Keep"}],
    }
    result = hybrid_aws.snake_result(resource, secret_keys=("ActivationCode",))
    assert result == {
        "activation_id": "abc",
        "dns_entries": [{"dns_name": "x", "hosted_zone_id": "Z"}],
        "tags": {"MixedCase": "Keep"},
    }
    assert "SECRET" not in repr(result)
    assert resource["ActivationCode"] == "SECRET"  # the input is not modified


def test_redact_is_deep():
    data = {"a": [{"Secret": 1, "b": 2}], "Secret": 3}
    assert hybrid_aws.redact(data, {"Secret"}) == {"a": [{"b": 2}]}


def test_retry_decorator_retries_throttling_then_succeeds():
    calls = []

    @hybrid_aws.retry_decorator(retries=3, delay=0, max_delay=0)
    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise botocore.exceptions.ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "DescribeThings"
            )
        return "ok"

    assert flaky() == "ok"
    assert len(calls) == 3


def test_retry_decorator_does_not_retry_client_errors():
    calls = []

    @hybrid_aws.retry_decorator(retries=3, delay=0, max_delay=0)
    def broken():
        calls.append(1)
        raise botocore.exceptions.ClientError(
            {"Error": {"Code": "ValidationException", "Message": "bad"}}, "CreateThing"
        )

    with pytest.raises(botocore.exceptions.ClientError):
        broken()
    assert len(calls) == 1
