#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hybrid-onboard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Ansible's module layout: documentation before the imports, botocore optional at import time.

DOCUMENTATION = r"""
---
module: cloudwatch_metric_alarms
short_description: Many CloudWatch metric alarms in one task, put only where missing or changed
description:
  - Creates or updates a whole list of CloudWatch metric alarms (C(PutMetricAlarm)) in one module run, so a role that
    alarms every host of a fleet starts one process instead of one per alarm.
  - The existing alarms are read first (C(DescribeAlarms), 100 alarms per call, or by O(alarm_name_prefix)), and
    C(PutMetricAlarm) is called only for the alarms that are missing or differ in an option listed here. A run with
    nothing to change makes only those reads.
  - C(PutMetricAlarm) replaces an alarm's whole definition. An option not given takes the API's default, and an alarm
    that differs is put again with exactly the options given.
  - Every alarm is checked before any AWS call; a bad one fails the task naming it, and nothing is changed.
  - Alarms that are not listed are never touched (deleting is C(amazon.aws.cloudwatch_metric_alarm) with
    C(state=absent)).
version_added: 0.1.0
author:
  - hybrid-onboard maintainers (@hybrid-onboard)
options:
  alarms:
    description:
      - The alarms, in C(amazon.aws.cloudwatch_metric_alarm)'s option names. An empty list does nothing.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Name of the alarm, 1 to 255 characters, unique in the list.
        type: str
        required: true
      description:
        description: The alarm's description (none when empty).
        type: str
        default: ""
      namespace:
        description: Namespace of the metric.
        type: str
        required: true
      metric_name:
        description: Name of the metric.
        type: str
        required: true
      dimensions:
        description: The metric's dimensions, name to value (at most 30).
        type: dict
      statistic:
        description: Statistic of the metric.
        type: str
        required: true
        choices: [SampleCount, Average, Sum, Minimum, Maximum]
      comparison:
        description: How the statistic is compared with O(alarms[].threshold).
        type: str
        required: true
        choices:
          - GreaterThanOrEqualToThreshold
          - GreaterThanThreshold
          - LessThanThreshold
          - LessThanOrEqualToThreshold
      threshold:
        description: The value compared with.
        type: float
        required: true
      period:
        description: Seconds per evaluation period; 10, 20, 30 or a multiple of 60.
        type: int
        required: true
      evaluation_periods:
        description: Number of periods evaluated (at least 1).
        type: int
        required: true
      datapoints_to_alarm:
        description: Breaching data points, out of O(alarms[].evaluation_periods), that set off the alarm.
        type: int
      treat_missing_data:
        description: How missing data points are treated.
        type: str
        default: missing
        choices: [breaching, notBreaching, ignore, missing]
      unit:
        description: Unit of the metric.
        type: str
      alarm_actions:
        description: ARNs notified when the alarm goes to ALARM (at most 5).
        type: list
        elements: str
        default: []
      ok_actions:
        description: ARNs notified when the alarm goes to OK (at most 5).
        type: list
        elements: str
        default: []
      insufficient_data_actions:
        description: ARNs notified when the alarm goes to INSUFFICIENT_DATA (at most 5).
        type: list
        elements: str
        default: []
  alarm_name_prefix:
    description:
      - Read the existing alarms by this name prefix (one paginated C(DescribeAlarms)) instead of by name. Every
        alarm of O(alarms) must start with it.
      - RV(existing) then lists every metric alarm with the prefix, wanted or not, so the caller can delete the ones
        it no longer wants without a read of its own.
    type: str
notes:
  - Supports check mode and diff. In check mode nothing is changed; RV(alarms) shows which alarms would be put.
  - The diff shows, per alarm that changes, the options compared before and after.
  - AWS calls are retried with jittered backoff on throttling.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: CPU alarm of every host of the play, in one task
  hybrid.onboard.cloudwatch_metric_alarms:
    alarm_name_prefix: site-host-
    alarms: >-
      {{ ansible_play_hosts | map('regex_replace', '^(.*)$', '{"name": "site-host-\\1-cpu"}') | map('from_json')
         | map('combine', {'namespace': 'CWAgent', 'metric_name': 'cpu_usage_active', 'statistic': 'Average',
                           'comparison': 'GreaterThanThreshold', 'threshold': 90, 'period': 300,
                           'evaluation_periods': 3, 'alarm_actions': [topic_arn]}) }}
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
alarms:
  description: One entry per alarm of O(alarms), in the same order.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Name of the alarm.
      type: str
    changed:
      description: Whether the alarm was (or in check mode would be) put.
      type: bool
    created:
      description: Whether the alarm did not exist before.
      type: bool
existing:
  description:
    - Names of the metric alarms that carried O(alarm_name_prefix) before this run, sorted. Empty without the prefix.
  returned: always
  type: list
  elements: str
"""


try:
    import botocore
except ImportError:
    pass  # Handled by AnsibleAWSModule

from ansible_collections.hybrid.onboard.plugins.module_utils.hybrid_aws import AnsibleAWSModule, aws_client, paginate

# DescribeAlarms takes at most 100 names per call.
CHUNK = 100
MAX_NAME = 255
MAX_DIMENSIONS = 30
MAX_ACTIONS = 5
_ACTIONS = {
    "alarm_actions": "AlarmActions",
    "ok_actions": "OKActions",
    "insufficient_data_actions": "InsufficientDataActions",
}


def validate(module):
    """Every rule PutMetricAlarm enforces on our input, checked before any call, naming the alarm and option."""
    problems, seen = [], set()
    prefix = module.params["alarm_name_prefix"]
    for index, alarm in enumerate(module.params["alarms"]):
        name = alarm["name"]
        where = f"alarms[{index}] ({name})"
        if not 1 <= len(name) <= MAX_NAME:
            problems.append(f"alarms[{index}].name must be 1 to {MAX_NAME} characters")
        elif name in seen:
            problems.append(f"{where}.name is listed more than once; list each alarm once")
        seen.add(name)
        if prefix is not None and not name.startswith(prefix):
            problems.append(f"{where}.name does not start with alarm_name_prefix {prefix!r}")
        period = alarm["period"]
        if period not in (10, 20, 30) and (period < 60 or period % 60):
            problems.append(f"{where}.period must be 10, 20, 30 or a multiple of 60 (got {period})")
        if alarm["evaluation_periods"] < 1:
            problems.append(f"{where}.evaluation_periods must be at least 1")
        points = alarm["datapoints_to_alarm"]
        if points is not None and not 1 <= points <= alarm["evaluation_periods"]:
            problems.append(
                f"{where}.datapoints_to_alarm must be 1 to evaluation_periods ({alarm['evaluation_periods']})"
            )
        if len(alarm["dimensions"] or {}) > MAX_DIMENSIONS:
            problems.append(f"{where}.dimensions: at most {MAX_DIMENSIONS}")
        for option in _ACTIONS:
            if len(alarm[option]) > MAX_ACTIONS:
                problems.append(f"{where}.{option}: at most {MAX_ACTIONS} ARNs")
    if problems:
        module.fail_json(msg="Invalid options: " + "; ".join(problems))


def wanted_params(alarm):
    """The PutMetricAlarm parameters of ``alarm``: also what its DescribeAlarms entry must hold to be unchanged."""
    params = {
        "AlarmName": alarm["name"],
        "AlarmDescription": alarm["description"] or "",
        "Namespace": alarm["namespace"],
        "MetricName": alarm["metric_name"],
        "Dimensions": sorted(
            ({"Name": str(k), "Value": str(v)} for k, v in (alarm["dimensions"] or {}).items()), key=lambda d: d["Name"]
        ),
        "Statistic": alarm["statistic"],
        "ComparisonOperator": alarm["comparison"],
        "Threshold": float(alarm["threshold"]),
        "Period": alarm["period"],
        "EvaluationPeriods": alarm["evaluation_periods"],
        "TreatMissingData": alarm["treat_missing_data"],
        "ActionsEnabled": True,
    }
    for option, key in _ACTIONS.items():
        params[key] = [str(arn) for arn in alarm[option]]
    # Compared even when not given: an alarm that has one and should not is put again (without it).
    params["DatapointsToAlarm"] = alarm["datapoints_to_alarm"]
    params["Unit"] = alarm["unit"] or None
    return params


def current_params(found, wanted):
    """The fields of a DescribeAlarms entry that ``wanted`` sets, read with the API's defaults for absent ones."""
    current = {key: found.get(key) for key in wanted}
    current["AlarmDescription"] = found.get("AlarmDescription") or ""
    current["Dimensions"] = sorted(found.get("Dimensions") or [], key=lambda d: d["Name"])
    current["TreatMissingData"] = found.get("TreatMissingData") or "missing"
    current["ActionsEnabled"] = found.get("ActionsEnabled", True)
    for key in _ACTIONS.values():
        current[key] = list(found.get(key) or [])
    if found.get("Threshold") is not None:
        current["Threshold"] = float(found["Threshold"])
    return current


def read_alarms(module, client, names):
    """``{name: DescribeAlarms entry}`` of the existing metric alarms: by prefix, or by name 100 at a time."""
    prefix = module.params["alarm_name_prefix"]
    try:
        if prefix is not None:
            found = paginate(
                client, "describe_alarms", "MetricAlarms", AlarmNamePrefix=prefix, AlarmTypes=["MetricAlarm"]
            )
        else:
            found = []
            for start in range(0, len(names), CHUNK):
                found += paginate(
                    client,
                    "describe_alarms",
                    "MetricAlarms",
                    AlarmNames=names[start : start + CHUNK],
                    AlarmTypes=["MetricAlarm"],
                )
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg="Failed to read the alarms (DescribeAlarms)")
    return {alarm["AlarmName"]: alarm for alarm in found}


def main():
    alarm_options = dict(
        name=dict(type="str", required=True),
        description=dict(type="str", default=""),
        namespace=dict(type="str", required=True),
        metric_name=dict(type="str", required=True),
        dimensions=dict(type="dict"),
        statistic=dict(type="str", required=True, choices=["SampleCount", "Average", "Sum", "Minimum", "Maximum"]),
        comparison=dict(
            type="str",
            required=True,
            choices=[
                "GreaterThanOrEqualToThreshold",
                "GreaterThanThreshold",
                "LessThanThreshold",
                "LessThanOrEqualToThreshold",
            ],
        ),
        threshold=dict(type="float", required=True),
        period=dict(type="int", required=True),
        evaluation_periods=dict(type="int", required=True),
        datapoints_to_alarm=dict(type="int"),
        treat_missing_data=dict(
            type="str", default="missing", choices=["breaching", "notBreaching", "ignore", "missing"]
        ),
        unit=dict(type="str"),
        alarm_actions=dict(type="list", elements="str", default=[]),
        ok_actions=dict(type="list", elements="str", default=[]),
        insufficient_data_actions=dict(type="list", elements="str", default=[]),
    )
    module = AnsibleAWSModule(
        argument_spec=dict(
            alarms=dict(type="list", elements="dict", required=True, options=alarm_options),
            alarm_name_prefix=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    validate(module)
    alarms = module.params["alarms"]
    if not alarms and module.params["alarm_name_prefix"] is None:
        module.exit_json(
            changed=False, alarms=[], existing=[], **({"diff": {"before": {}, "after": {}}} if module._diff else {})
        )
    client = aws_client(module, "cloudwatch")
    found = read_alarms(module, client, [a["name"] for a in alarms])
    existing = sorted(found) if module.params["alarm_name_prefix"] is not None else []

    plans = []
    for alarm in alarms:
        wanted = wanted_params(alarm)
        current = found.get(alarm["name"])
        before = current_params(current, wanted) if current is not None else None
        plans.append((alarm["name"], wanted, before))

    results, diff, done = [], {"before": {}, "after": {}}, []
    for name, wanted, before in plans:
        changed = before != wanted
        if changed:
            diff["before"][name] = before or {}
            diff["after"][name] = wanted
            if not module.check_mode:
                put = {k: v for k, v in wanted.items() if v is not None and (k != "AlarmDescription" or v)}
                try:
                    client.put_metric_alarm(aws_retry=True, **put)
                except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
                    already = (
                        f"already put before this failure: {', '.join(done)}" if done else "no alarm was put before it"
                    )
                    module.fail_json_aws(e, msg=f"Failed to put alarm {name} (PutMetricAlarm); {already}")
                done.append(name)
        results.append(dict(name=name, changed=changed, created=before is None))
    result = dict(changed=any(r["changed"] for r in results), alarms=results, existing=existing)
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
