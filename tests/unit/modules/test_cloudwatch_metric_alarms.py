"""cloudwatch_metric_alarms run for real against the lab emulator: many alarms in one run, put only where needed."""

from __future__ import annotations

import uuid

import pytest
import yaml
from plugin_loader import load_plugin

MODULE = "cloudwatch_metric_alarms"
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


def host_alarm(name: str, host: str = "node1") -> dict:
    return {
        "name": name,
        "description": f"hybrid-onboard: {host} disk / used above 90%",
        "namespace": "CWAgent",
        "metric_name": "disk_used_percent",
        "dimensions": {"device": "vda1", "fstype": "ext4", "host": host, "path": "/"},
        "statistic": "Average",
        "comparison": "GreaterThanThreshold",
        "threshold": 90,
        "period": 300,
        "evaluation_periods": 3,
        "alarm_actions": [TOPIC],
    }


@pytest.fixture
def prefix() -> str:
    return f"hybrid-test-{uuid.uuid4().hex[:8]}-"


def described(emulator, prefix: str) -> dict:
    pages = emulator.client("cloudwatch").get_paginator("describe_alarms").paginate(AlarmNamePrefix=prefix)
    return {a["AlarmName"]: a for page in pages for a in page["MetricAlarms"]}


def test_four_steps_and_one_read_whatever_the_number_of_alarms(run_module, emulator, tools, prefix):
    few = [event_alarm(f"{prefix}event"), host_alarm(f"{prefix}host-0")]
    many = few + [host_alarm(f"{prefix}host-{n}", f"node{n}") for n in range(1, 150)]
    args = {"alarms": many, "alarm_name_prefix": prefix}

    emulator.reset_calls()
    check = run_module(MODULE, args, check=True, diff=True)
    assert check["changed"] is True and all(a["created"] and a["changed"] for a in check["alarms"]), check.get("msg")
    assert tools.mutations(emulator.calls()) == {} and described(emulator, prefix) == {}
    assert check["diff"]["before"][f"{prefix}event"] == {}
    assert check["diff"]["after"][f"{prefix}host-0"]["Dimensions"][2] == {"Name": "host", "Value": "node1"}

    done = run_module(MODULE, args)
    assert done["changed"] is True and len(done["alarms"]) == 151
    alarms = described(emulator, prefix)
    assert len(alarms) == 151
    event = alarms[f"{prefix}event"]
    assert (event["Statistic"], event["Threshold"], event["TreatMissingData"], event["AlarmActions"]) == (
        "Sum",
        1.0,
        "notBreaching",
        [TOPIC],
    )
    assert alarms[f"{prefix}host-7"]["Dimensions"] == [
        {"Name": "device", "Value": "vda1"},
        {"Name": "fstype", "Value": "ext4"},
        {"Name": "host", "Value": "node7"},
        {"Name": "path", "Value": "/"},
    ]

    counts = []
    for wanted in (few, many):
        emulator.reset_calls()
        again = run_module(MODULE, {"alarms": wanted, "alarm_name_prefix": prefix}, diff=True)
        assert again["changed"] is False and again["diff"] == {"before": {}, "after": {}}
        assert again["existing"] == sorted(alarms)
        counts.append(emulator.calls())
    assert tools.mutations(counts[1]) == {}
    # The prefix's alarms listed page by page: as many reads for 2 wanted alarms as for 151, and nothing else.
    assert counts[0] == counts[1] and set(counts[1]) == {"monitoring"}, counts
    assert set(counts[1]["monitoring"]) == {"DescribeAlarms"}, counts
    again_check = run_module(MODULE, args, check=True)
    assert again_check["changed"] is False


CHANGES = [
    {"threshold": 80.0},
    {"period": 60},
    {"evaluation_periods": 2},
    {"description": "hybrid-onboard: node1 disk / used above 80%"},
    {"description": ""},
    {"treat_missing_data": "breaching"},
    {"alarm_actions": []},
    {"ok_actions": [TOPIC]},
    {"dimensions": {"device": "vdb1", "fstype": "ext4", "host": "node1", "path": "/"}},
    {"comparison": "GreaterThanOrEqualToThreshold"},
    {"datapoints_to_alarm": 2},
    {"unit": "Percent"},
]


@pytest.mark.parametrize("change", CHANGES, ids=lambda c: next(iter(c)))
def test_a_changed_option_puts_that_alarm_only(run_module, emulator, tools, prefix, change):
    first, second = host_alarm(f"{prefix}a"), host_alarm(f"{prefix}b", "node2")
    assert run_module(MODULE, {"alarms": [first, second]})["changed"] is True
    emulator.reset_calls()
    result = run_module(MODULE, {"alarms": [dict(first, **change), second]})
    assert [a["changed"] for a in result["alarms"]] == [True, False], change
    assert tools.mutations(emulator.calls()) == {"monitoring:PutMetricAlarm": 1}
    assert run_module(MODULE, {"alarms": [dict(first, **change), second]})["changed"] is False, change


def test_an_alarm_edited_outside_is_put_back(run_module, emulator, prefix):
    alarm = event_alarm(f"{prefix}event")
    run_module(MODULE, {"alarms": [alarm]})
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
    result = run_module(MODULE, {"alarms": [alarm]}, diff=True)
    assert result["changed"] is True
    assert result["diff"]["before"][alarm["name"]]["Unit"] == "Count"
    assert "Unit" not in described(emulator, prefix)[alarm["name"]]


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"period": 45}, "alarms[1] (P-b).period must be 10, 20, 30 or a multiple of 60 (got 45)"),
        ({"evaluation_periods": 0}, "alarms[1] (P-b).evaluation_periods must be at least 1"),
        ({"datapoints_to_alarm": 4}, "datapoints_to_alarm must be 1 to evaluation_periods (3)"),
        ({"name": "P-a"}, "alarms[1] (P-a).name is listed more than once"),
        ({"name": "other-b"}, "does not start with alarm_name_prefix 'P-'"),
        ({"name": ""}, "alarms[1].name must be 1 to 255 characters"),
        ({"alarm_actions": [TOPIC] * 6}, "alarm_actions: at most 5 ARNs"),
        ({"statistic": "Median"}, "statistic"),
    ],
)
def test_bad_input_fails_before_any_call(run_module, emulator, tools, change, fragment):
    alarms = [host_alarm("P-a"), dict(host_alarm("P-b"), **change)]
    emulator.reset_calls()
    result = run_module(MODULE, {"alarms": alarms, "alarm_name_prefix": "P-"})
    assert result.get("failed") is True and fragment in result["msg"], result.get("msg")
    assert tools.total_calls(emulator.calls()) == 0


def test_empty_list_does_nothing(run_module, emulator, tools):
    emulator.reset_calls()
    result = run_module(MODULE, {"alarms": []})
    assert result["changed"] is False and result["alarms"] == [] and result["existing"] == []
    assert tools.total_calls(emulator.calls()) == 0


def test_returned_keys_match_return_doc(run_module, tools, prefix):
    result = run_module(MODULE, {"alarms": [event_alarm(f"{prefix}e")], "alarm_name_prefix": prefix}, check=True)
    assert set(result) - tools.STANDARD_KEYS == tools.return_keys(MODULE)
    documented = set(yaml.safe_load(load_plugin("modules", MODULE).RETURN)["alarms"]["contains"])
    assert set(result["alarms"][0]) == documented


def test_through_ansible_with_check_and_diff(run_module, emulator, tools, prefix):
    emulator.reset_calls()
    result = run_module(MODULE, {"alarms": [event_alarm(f"{prefix}e")]}, check=True, diff=True, via="ansible")
    assert result["changed"] is True, result
    assert list(result["diff"]["after"]) == [f"{prefix}e"]
    assert tools.mutations(emulator.calls()) == {}


def test_retries_on_throttling(run_module, emulator, tools, prefix):
    args = {"alarms": [event_alarm(f"{prefix}e"), host_alarm(f"{prefix}h")], "alarm_name_prefix": prefix}
    emulator.reset_calls()
    with emulator.faults(throttle_rate=0.5, seed=3):
        result = run_module(MODULE, args)
    assert result.get("failed") is not True, result
    assert tools.total_calls(emulator.calls()) > 3, "the seed threw no throttling error: the test proves nothing"
    assert sorted(described(emulator, prefix)) == [f"{prefix}e", f"{prefix}h"]
