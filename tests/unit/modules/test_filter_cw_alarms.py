"""plugins/filter/cw_alarms.py against the module it stands in front of.

The filter must call a metric filter unchanged exactly when amazon.aws.cloudwatchlogs_log_group_metric_filter would:
filters are created by the module itself (through ``ansible -m``) on the emulator, read back with
DescribeMetricFilters, and the filter's verdict is checked against the module's own ``changed`` for the same options.
"""

from __future__ import annotations

import uuid

import pytest
from ansible.errors import AnsibleFilterError
from plugin_loader import load_plugin

alarms = load_plugin("filter", "cw_alarms")


@pytest.fixture
def prefix() -> str:
    return f"hybrid-test-{uuid.uuid4().hex[:8]}"


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
