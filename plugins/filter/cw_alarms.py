# -*- coding: utf-8 -*-
# Copyright: hybrid-onboard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which CloudWatch alarms and CloudWatch Logs metric filters need their amazon.aws module at all.

``wanted | cw_alarms_to_put(found)``: ``wanted`` is a list of alarms in cloudwatch_metric_alarm's own options
(name, description, namespace, metric_name, dimensions, statistic, comparison, threshold, period,
evaluation_periods, treat_missing_data, alarm_actions, ...); ``found`` is cloudwatch_metric_alarm_info's
``metric_alarms`` from ONE DescribeAlarms read. The result is the wanted alarms that are missing or differ.

The comparison is the module's own (amazon.aws 10.x ``create_metric_alarm``): its PutMetricAlarm parameters with
None left out, against the DescribeAlarms entry without the state, ARN, timestamps, ActionsEnabled and Metrics,
an empty Dimensions dropped and a missing TreatMissingData read as ``missing``. So an alarm this filter keeps out
of the loop is exactly one the module would report unchanged, and the role calls the module (two DescribeAlarms
each) only for alarms that need a change: a no-op run costs one read whatever the number of hosts.

``wanted | cwl_metric_filters_to_put(found)``: the same for cloudwatchlogs_log_group_metric_filter. ``wanted`` is
a list of ``{filter_name, filter_pattern, metric_name, metric_namespace, metric_value}``; ``found`` is
DescribeMetricFilters' ``metricFilters`` (camelCase, e.g. from ``aws logs describe-metric-filters``) of the log group.
As the module does, a filter counts as found only when exactly one filter's name starts with its name, and then its
pattern and first metric transformation (name, namespace, value; no default value, unit or dimensions) must match.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

# cloudwatch_metric_alarm option -> (DescribeAlarms field in cloudwatch_metric_alarm_info's snake case, type)
_OPTIONS = {
    "name": ("alarm_name", str),
    "metric_name": ("metric_name", str),
    "namespace": ("namespace", str),
    "statistic": ("statistic", str),
    "comparison": ("comparison_operator", str),
    "threshold": ("threshold", float),
    "period": ("period", int),
    "evaluate_low_sample_count_percentile": ("evaluate_low_sample_count_percentile", str),
    "datapoints_to_alarm": ("datapoints_to_alarm", int),
    "evaluation_periods": ("evaluation_periods", int),
    "unit": ("unit", str),
    "description": ("alarm_description", str),
    "extended_statistic": ("extended_statistic", str),
}
# Lists the module always sends (its defaults are []), and treat_missing_data (default "missing").
_LISTS = {
    "alarm_actions": "alarm_actions",
    "insufficient_data_actions": "insufficient_data_actions",
    "ok_actions": "ok_actions",
}
# What the module leaves out of its comparison.
_IGNORED = {
    "actions_enabled",
    "state_value",
    "state_reason",
    "state_reason_data",
    "state_updated_timestamp",
    "state_transitioned_timestamp",
    "alarm_arn",
    "alarm_configuration_updated_timestamp",
    "metrics",
}


def _as_params(alarm, where):
    """The DescribeAlarms-shaped dict the module would send for ``alarm`` (its options)."""
    if not isinstance(alarm, dict) or not alarm.get("name"):
        raise AnsibleFilterError(f"cw_alarms_to_put: {where} must be a dict with a name, got {alarm!r}")
    unknown = set(alarm) - set(_OPTIONS) - set(_LISTS) - {"dimensions", "treat_missing_data"}
    if unknown:
        raise AnsibleFilterError(
            f"cw_alarms_to_put: {where} ({alarm['name']}) has options this filter does not compare: "
            f"{', '.join(sorted(unknown))}"
        )
    params = {}
    for option, (field, kind) in _OPTIONS.items():
        value = alarm.get(option)
        if value is None or (option in ("unit", "extended_statistic") and not value):
            continue
        try:
            params[field] = kind(value)
        except (TypeError, ValueError) as e:
            raise AnsibleFilterError(f"cw_alarms_to_put: {where} ({alarm['name']}) {option}: {e}") from e
    for option, field in _LISTS.items():
        params[field] = [str(v) for v in (alarm.get(option) or [])]
    params["treat_missing_data"] = str(alarm.get("treat_missing_data") or "missing")
    dimensions = alarm.get("dimensions")
    if dimensions:
        if not isinstance(dimensions, dict):
            raise AnsibleFilterError(f"cw_alarms_to_put: {where} ({alarm['name']}) dimensions must be a dict")
        params["dimensions"] = [{"name": str(k), "value": str(v)} for k, v in dimensions.items()]
    return params


def _as_found(alarm):
    current = {k: v for k, v in alarm.items() if k not in _IGNORED}
    current.setdefault("treat_missing_data", "missing")
    if not current.get("dimensions"):
        current.pop("dimensions", None)
    return current


def cw_alarms_to_put(wanted, found):
    """The alarms of ``wanted`` that are missing from ``found`` or differ from it."""
    if not isinstance(wanted, list):
        raise AnsibleFilterError(f"cw_alarms_to_put: wanted must be a list, got {type(wanted).__name__}")
    if not isinstance(found, list):
        raise AnsibleFilterError(f"cw_alarms_to_put: found must be a list, got {type(found).__name__}")
    current = {}
    for alarm in found:
        if isinstance(alarm, dict) and alarm.get("alarm_name"):
            current[alarm["alarm_name"]] = _as_found(alarm)
    return [
        alarm
        for index, alarm in enumerate(wanted)
        if current.get(alarm.get("name") if isinstance(alarm, dict) else None) != _as_params(alarm, f"wanted[{index}]")
    ]


_FILTER_KEYS = ("filter_name", "filter_pattern", "metric_name", "metric_namespace", "metric_value")


def cwl_metric_filters_to_put(wanted, found):
    """The metric filters of ``wanted`` that cloudwatchlogs_log_group_metric_filter would put (missing or changed)."""
    if not isinstance(wanted, list) or not isinstance(found, list):
        raise AnsibleFilterError("cwl_metric_filters_to_put: wanted and found must be lists")
    keep = []
    for index, item in enumerate(wanted):
        if not isinstance(item, dict) or set(item) != set(_FILTER_KEYS):
            raise AnsibleFilterError(
                f"cwl_metric_filters_to_put: wanted[{index}] must have exactly {', '.join(_FILTER_KEYS)}"
            )
        matches = [f for f in found if isinstance(f, dict) and str(f.get("filterName", "")).startswith(
            item["filter_name"])]
        if len(matches) != 1:
            keep.append(item)
            continue
        current = matches[0]
        transformation = (current.get("metricTransformations") or [{}])[0]
        same = (
            current.get("filterPattern") == item["filter_pattern"]
            and transformation.get("metricName") == item["metric_name"]
            and transformation.get("metricNamespace") == item["metric_namespace"]
            and transformation.get("metricValue") == str(item["metric_value"])
            and all(transformation.get(key) is None for key in ("defaultValue", "unit", "dimensions"))
        )
        if not same:
            keep.append(item)
    return keep


class FilterModule(object):
    def filters(self):
        return {"cw_alarms_to_put": cw_alarms_to_put, "cwl_metric_filters_to_put": cwl_metric_filters_to_put}
