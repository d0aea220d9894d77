"""plugins/filter/cw_alarms.py against the module it stands in front of.

The filter must call an alarm unchanged exactly when amazon.aws.cloudwatch_metric_alarm would: alarms are created
by the module itself (through ``ansible -m``) on the emulator, read back with cloudwatch_metric_alarm_info, and the
filter's verdict is checked against the module's own ``changed`` for the same options.
"""

from __future__ import annotations

import uuid

import pytest
from ansible.errors import AnsibleFilterError
from plugin_loader import load_plugin

alarms = load_plugin("filter", "cw_alarms")
TOPIC = "arn:aws:sns:eu-west-1:123456789012:hybrid-onboard-audit"


def event_alarm(name: str) -> dict:
    return {
        "name": name,
        "description": "hybrid-onboard: root account used",
        "namespace": "HybridOnboard/Audit",
        "metric_name": "root-usage",
        "statistic": "Sum",
        "comparison": "GreaterThanOrEqualToThreshold",
        "threshold": 1.0,
        "period": 300,
        "evaluation_periods": 1,
        "treat_missing_data": "notBreaching",
        "alarm_actions": [TOPIC],
    }


def host_alarm(name: str) -> dict:
    return {
        "name": name,
        "description": "hybrid-onboard: node1 disk / used above 90%",
        "namespace": "CWAgent",
        "metric_name": "disk_used_percent",
        "dimensions": {"device": "vda1", "fstype": "ext4", "host": "node1", "path": "/"},
        "statistic": "Average",
        "comparison": "GreaterThanThreshold",
        "threshold": 90.0,
        "period": 300,
        "evaluation_periods": 3,
        "treat_missing_data": "missing",
        "alarm_actions": [TOPIC],
    }


@pytest.fixture
def prefix() -> str:
    return f"hybrid-test-{uuid.uuid4().hex[:8]}"


def put(run_module, alarm: dict, check: bool = False) -> dict:
    result = run_module("amazon.aws.cloudwatch_metric_alarm", dict(alarm, state="present"), check=check, via="ansible")
    assert not result.get("failed"), result
    return result


def read(run_module, prefix: str) -> list[dict]:
    result = run_module("amazon.aws.cloudwatch_metric_alarm_info", {"alarm_name_prefix": prefix}, via="ansible")
    assert not result.get("failed"), result
    return result["metric_alarms"]


def test_created_alarms_need_nothing_and_missing_ones_are_kept(run_module, prefix):
    wanted = [event_alarm(f"{prefix}-event"), host_alarm(f"{prefix}-host")]
    assert alarms.cw_alarms_to_put(wanted, read(run_module, prefix)) == wanted
    for alarm in wanted:
        assert put(run_module, alarm)["changed"] is True
    found = read(run_module, prefix)
    assert sorted(a["alarm_name"] for a in found) == sorted(a["name"] for a in wanted)
    assert alarms.cw_alarms_to_put(wanted, found) == []
    # ...and the module agrees: unchanged.
    for alarm in wanted:
        assert put(run_module, alarm, check=True)["changed"] is False


CHANGES = [
    {"threshold": 80.0},
    {"period": 60},
    {"evaluation_periods": 2},
    {"description": "hybrid-onboard: node1 disk / used above 80%"},
    {"treat_missing_data": "breaching"},
    {"alarm_actions": []},
    {"dimensions": {"device": "vdb1", "fstype": "ext4", "host": "node1", "path": "/"}},
    {"comparison": "GreaterThanOrEqualToThreshold"},
]


def test_a_changed_option_is_kept_as_the_module_would_change_it(run_module, prefix):
    alarm = host_alarm(f"{prefix}-host")
    put(run_module, alarm)
    found = read(run_module, prefix)
    for change in CHANGES:
        changed = dict(alarm, **change)
        assert alarms.cw_alarms_to_put([changed], found) == [changed], change
        assert put(run_module, changed, check=True)["changed"] is True, change


def test_an_alarm_edited_outside_is_kept(run_module, emulator, prefix):
    alarm = event_alarm(f"{prefix}-event")
    put(run_module, alarm)
    emulator.client("cloudwatch").put_metric_alarm(
        AlarmName=alarm["name"],
        AlarmDescription=alarm["description"],
        Namespace=alarm["namespace"],
        MetricName=alarm["metric_name"],
        Statistic="Sum",
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        Threshold=1.0,
        Period=300,
        EvaluationPeriods=1,
        TreatMissingData="notBreaching",
        AlarmActions=[TOPIC],
        Unit="Count",
    )
    assert alarms.cw_alarms_to_put([alarm], read(run_module, prefix)) == [alarm]
    assert put(run_module, alarm, check=True)["changed"] is True


def test_state_and_timestamps_are_not_compared():
    alarm = event_alarm("a")
    found = {
        "alarm_name": "a",
        "alarm_description": alarm["description"],
        "namespace": alarm["namespace"],
        "metric_name": alarm["metric_name"],
        "statistic": "Sum",
        "comparison_operator": "GreaterThanOrEqualToThreshold",
        "threshold": 1.0,
        "period": 300,
        "evaluation_periods": 1,
        "treat_missing_data": "notBreaching",
        "alarm_actions": [TOPIC],
        "ok_actions": [],
        "insufficient_data_actions": [],
        "dimensions": [],
        "state_value": "ALARM",
        "state_reason": "Threshold crossed",
        "actions_enabled": False,
        "alarm_arn": "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:a",
        "alarm_configuration_updated_timestamp": "2026-11-22T00:00:00Z",
    }
    assert alarms.cw_alarms_to_put([alarm], [found]) == []
    assert alarms.cw_alarms_to_put([alarm], [dict(found, ok_actions=[TOPIC])]) == [alarm]


@pytest.mark.parametrize(
    "wanted, found, message",
    [
        ("x", [], "wanted must be a list"),
        ([], {}, "found must be a list"),
        ([{"description": "no name"}], [], "must be a dict with a name"),
        ([{"name": "a", "metrics": []}], [], "does not compare: metrics"),
        ([{"name": "a", "threshold": "high"}], [], "threshold"),
        ([{"name": "a", "dimensions": ["host"]}], [], "dimensions must be a dict"),
    ],
)
def test_bad_input_is_named(wanted, found, message):
    with pytest.raises(AnsibleFilterError, match=message):
        alarms.cw_alarms_to_put(wanted, found)


# --- cwl_metric_filters_to_put: the same question for cloudwatchlogs_log_group_metric_filter ---


def metric_filter(prefix: str, name: str, pattern: str = '{ ($.eventName = "DeleteActivation") }') -> dict:
    return {
        "filter_name": f"{prefix}-{name}",
        "filter_pattern": pattern,
        "metric_name": name,
        "metric_namespace": "HybridOnboard/Audit",
        "metric_value": "1",
    }


def put_filter(run_module, group: str, item: dict, check: bool = False) -> dict:
    args = {
        "log_group_name": group,
        "filter_name": item["filter_name"],
        "filter_pattern": item["filter_pattern"],
        "state": "present",
        "metric_transformation": {k: item[k] for k in ("metric_name", "metric_namespace", "metric_value")},
    }
    result = run_module("amazon.aws.cloudwatchlogs_log_group_metric_filter", args, check=check, via="ansible")
    assert not result.get("failed"), result
    return result


def test_metric_filters_the_module_would_leave_alone_are_left_out(run_module, emulator, prefix):
    logs = emulator.client("logs")
    group = f"/{prefix}/cloudtrail"
    logs.create_log_group(logGroupName=group)
    wanted = [metric_filter(prefix, "DeleteActivation"), metric_filter(prefix, "CreateActivation")]

    def found():  # as `aws logs describe-metric-filters` prints them
        return logs.describe_metric_filters(logGroupName=group, filterNamePrefix=f"{prefix}-")["metricFilters"]

    assert alarms.cwl_metric_filters_to_put(wanted, found()) == wanted
    for item in wanted:
        assert put_filter(run_module, group, item)["changed"] is True
    assert alarms.cwl_metric_filters_to_put(wanted, found()) == []
    assert put_filter(run_module, group, wanted[0], check=True)["changed"] is False

    changed = dict(wanted[0], filter_pattern='{ ($.eventName = "DeleteActivation") && ($.readOnly IS FALSE) }')
    assert alarms.cwl_metric_filters_to_put([changed], found()) == [changed]
    assert put_filter(run_module, group, changed, check=True)["changed"] is True

    renamed_metric = dict(wanted[0], metric_name="Other")
    assert alarms.cwl_metric_filters_to_put([renamed_metric], found()) == [renamed_metric]
    assert put_filter(run_module, group, renamed_metric, check=True)["changed"] is True

    # A second filter whose name starts with the wanted one: the module sees "not exactly one" and puts again.
    logs.put_metric_filter(logGroupName=group, filterName=f"{prefix}-DeleteActivationOld",
                           filterPattern="{ $.x = 1 }", metricTransformations=[
                               {"metricName": "Old", "metricNamespace": "HybridOnboard/Audit", "metricValue": "1"}])
    assert alarms.cwl_metric_filters_to_put([wanted[0]], found()) == [wanted[0]]
    assert put_filter(run_module, group, wanted[0], check=True)["changed"] is True


def test_metric_filter_input_is_checked():
    with pytest.raises(AnsibleFilterError, match="wanted and found must be lists"):
        alarms.cwl_metric_filters_to_put({}, [])
    with pytest.raises(AnsibleFilterError, match=r"wanted\[0\] must have exactly"):
        alarms.cwl_metric_filters_to_put([{"filter_name": "x"}], [])
