"""CloudWatch identity of a metric, as AWS has it: namespace, name and the *set* of its dimensions.

moto 5.2.5's ``are_dimensions_same`` compares every dimension of one metric with every dimension of the
other, so two data points of the same metric with two or more dimensions never count as the same metric:
ListMetrics then lists the metric once per data point (found by the aws_audit role on the lab, where the
CloudWatch agent stand-in sends cpu_usage_idle with {cpu, host} every interval). AWS lists each metric once,
whatever the order its dimensions were sent in.

moto also finds the metrics by comparing every data point with every metric found so far: quadratic in the data
the agents have sent. On a 50-host lab after 35 minutes a ListMetrics took minutes and timed out the controller
(the bench's no-op rerun at N=50). ``filtered_metrics`` keeps one entry per metric identity (the set of its
dimensions, so their order does not matter) in a dict.
"""

from __future__ import annotations


def filtered_metrics(backend, metric_name, namespace, dimensions):
    """ListMetrics' metrics: the first data point of each metric identity, in the order they arrived, that has
    the namespace, the name and every dimension asked for (a dimension asked without a value: any value)."""
    wanted = [(d["Name"], d.get("Value")) for d in dimensions or ()]
    found = {}
    for datum in backend.get_all_metrics():
        if (namespace and datum.namespace != namespace) or (metric_name and datum.name != metric_name):
            continue
        pairs = frozenset((d.name, d.value) for d in datum.dimensions)
        identity = (datum.namespace, datum.name, pairs)
        if identity in found:
            continue
        names = {name for name, _value in pairs}
        if all((name, value) in pairs if value is not None else name in names for name, value in wanted):
            found[identity] = datum
    return list(found.values())


def install() -> None:
    """Replace moto's metric search (idempotent): the backend's method is patched on its class. moto's dimension
    comparison is used only by that search, so it needs no patch of its own any more."""
    from moto.cloudwatch import models

    models.CloudWatchBackend.get_filtered_metrics = filtered_metrics
