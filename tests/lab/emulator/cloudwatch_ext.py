"""CloudWatch identity of a metric, as AWS has it: namespace, name and the *set* of its dimensions.

moto 5.2.5's ``are_dimensions_same`` compares every dimension of one metric with every dimension of the
other, so two data points of the same metric with two or more dimensions never count as the same metric:
ListMetrics then lists the metric once per data point (found by the aws_audit role on the lab, where the
CloudWatch agent stand-in sends cpu_usage_idle with {cpu, host} every interval). AWS lists each metric once,
whatever the order its dimensions were sent in.
"""

from __future__ import annotations


def same_dimensions(metric_dimensions, dimensions) -> bool:
    """Same metric identity: the same (name, value) pairs, in any order."""
    return {(d.name, d.value) for d in metric_dimensions} == {(d.name, d.value) for d in dimensions} and len(
        metric_dimensions
    ) == len(dimensions)


def install() -> None:
    """Replace moto's comparison (idempotent): MetricDatumBase.filter looks it up in the module at call time."""
    from moto.cloudwatch import models

    models.are_dimensions_same = same_dimensions
