"""Unit tests for plugins/module_utils/hybrid_aws.py: the describe->diff->act base of our modules."""

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


class FakeModule:
    """Only what Converger reads from a module: its check_mode flag."""

    def __init__(self, check_mode):
        self.check_mode = check_mode


class Store:
    """An in-memory resource standing in for one AWS resource, recording what was done to it."""

    def __init__(self, resource=None):
        self.resource = resource
        self.actions = []

    def describe(self):
        return None if self.resource is None else dict(self.resource)

    def create(self, wanted):
        self.actions.append("create")
        self.resource = {k: v for k, v in wanted.items() if v is not None}

    def update(self, current, changes):
        self.actions.append(("update", sorted(changes)))
        self.resource.update(changes)

    def delete(self, current):
        self.actions.append("delete")
        self.resource = None

    def converger(self, check_mode, **kw):
        return hybrid_aws.Converger(
            FakeModule(check_mode), self.describe, self.create, self.update, self.delete, **kw
        )


def test_converger_four_step_pattern():
    store = Store()
    wanted = {"Name": "n", "Limit": 5, "Unset": None}
    changed, after, diff = store.converger(True).run("present", wanted)
    assert changed and after is None and store.actions == []
    assert diff["after"] == {"Name": "n", "Limit": 5}
    changed, after, _ = store.converger(False).run("present", wanted)
    assert changed and after == {"Name": "n", "Limit": 5} and store.actions == ["create"]
    changed, after, _ = store.converger(True).run("present", wanted)
    assert not changed
    changed, after, _ = store.converger(False).run("present", wanted)
    assert not changed and store.actions == ["create"]


def test_converger_update_reports_only_changed_fields_and_hides_secrets():
    store = Store({"Name": "n", "Limit": 5, "Code": "old"})
    conv = store.converger(False, secret_keys=("Code",))
    changed, after, diff = conv.run("present", {"Name": "n", "Limit": 7, "Code": "new"})
    assert changed and after["Limit"] == 7
    assert diff == {"before": {"Limit": 5}, "after": {"Limit": 7}}
    assert store.actions == [("update", ["Code", "Limit"])]


def test_converger_absent():
    store = Store({"Name": "n"})
    changed, after, _ = store.converger(True).run("absent", {})
    assert changed and store.resource is not None
    changed, after, _ = store.converger(False).run("absent", {})
    assert changed and after is None and store.resource is None
    changed, _, _ = store.converger(False).run("absent", {})
    assert not changed and store.actions == ["delete"]


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
