# -*- coding: utf-8 -*-
# Copyright: hybrid-onboard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which CloudWatch Logs metric filters need their amazon.aws module at all.

``wanted | cwl_metric_filters_to_put(found)``: ``wanted`` is a list of ``{filter_name, filter_pattern, metric_name,
metric_namespace, metric_value}``; ``found`` is DescribeMetricFilters' ``metricFilters`` (camelCase, e.g. from
``aws logs describe-metric-filters``) of the log group, read once. The result is the filters that
cloudwatchlogs_log_group_metric_filter would put (missing or changed), so the role runs that module only for them.
As the module does, a filter counts as found only when exactly one filter's name starts with its name, and then its
pattern and first metric transformation (name, namespace, value; no default value, unit or dimensions) must match.

(The alarms' counterpart is the module cloudwatch_metric_alarms, which reads, compares and puts in one run.)
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

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
        return {"cwl_metric_filters_to_put": cwl_metric_filters_to_put}
