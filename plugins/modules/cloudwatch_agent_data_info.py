#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hybrid-onboard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Ansible's module layout: documentation before the imports, botocore optional at import time.

DOCUMENTATION = r"""
---
module: cloudwatch_agent_data_info
short_description: Check from the AWS side that the CloudWatch agent's metrics and log streams of hosts have arrived
description:
  - After the CloudWatch agent starts on on-premises hosts, checks in CloudWatch and CloudWatch Logs that every
    host's metrics and log streams exist, optionally waiting for them.
  - The agent publishes its metrics in a namespace (C(CWAgent) by default) with the dimension C(host) set to the
    host name, and writes each log file to a stream named by its C(log_stream_name), where C({hostname}) stands
    for the host name.
  - The number of API calls does not grow with the number of hosts. Each poll makes one paginated
    C(ListMetrics) call for the namespace, filtered on the dimension name C(host), and one paginated
    C(DescribeLogStreams) call per log group, narrowed to the common prefix of the stream names still missing.
    Metrics and log groups found complete on one poll are not asked for again (during a progress slice, see
    below; a new slice asks again only for the hosts still missing something).
  - >-
    B(Progress.) With O(wait_timeout) above 0 the task's action plugin (same name) waits in slices of a few
    seconds and prints, at least every 15 seconds, the hosts still missing data and what they miss, for example
    "Waiting for CloudWatch data from 2 of 5 hosts (95 s left): web01 (metrics, 1 log stream), web02 (1 log
    stream)", in the normal output of C(ansible-playbook). The result is the one of a single run, RV(waited)
    being the whole wait; AWS is asked as often as O(wait_delay) says.
  - Hosts whose data is missing are returned in RV(missing_metrics_hosts) and RV(missing_logs_hosts). The module
    does not fail because of them, so a play can fail just those hosts.
version_added: 0.1.0
author:
  - hybrid-onboard maintainers (@hybrid-onboard)
options:
  hosts:
    description:
      - Host names as the agent reports them (the C(host) dimension and C({hostname}) in stream names), usually
        C(ansible_facts['hostname']) of each host. Names are compared exactly, case included. Duplicates are
        checked once.
    type: list
    elements: str
    required: true
  namespace:
    description: CloudWatch namespace the agent publishes to (its C(metrics.namespace)).
    type: str
    default: CWAgent
  metric_names:
    description:
      - Metric names every host must have (with its C(host) dimension) to count as having its metrics, for
        example V(mem_used_percent).
      - When omitted, any metric with the host's C(host) dimension in O(namespace) counts.
    type: list
    elements: str
  log_groups:
    description:
      - Log groups in which every host must have a log stream. An empty list checks metrics only.
      - Several entries may name the same log group with different streams.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Log group name, as in the agent's C(log_group_name) (a fixed name, no placeholders).
        type: str
        required: true
      stream:
        description:
          - Stream name as in the agent's C(log_stream_name); C({hostname}) is replaced with each host name.
          - Other agent placeholders (C({instance_id}), C({local_hostname}), C({ip_address})) are not supported
            and fail the module; write those parts literally. A name without C({hostname}) is one stream that
            every host then shares.
        type: str
        default: "{hostname}"
  wait_timeout:
    description:
      - Seconds to wait until every host has its metrics and log streams. V(0) looks once.
      - The wait is bounded. The module does one last poll at the end, after at most O(wait_timeout) seconds.
    type: int
    default: 0
  wait_delay:
    description: Seconds between polls when O(wait_timeout) is above 0.
    type: int
    default: 10
notes:
  - Read-only; supports check mode (the same reads are made).
  - Needs C(cloudwatch:ListMetrics) and C(logs:DescribeLogStreams) on the log groups.
  - AWS documents that a new metric can take up to fifteen minutes to appear in C(ListMetrics). Against real AWS,
    set O(wait_timeout) to match.
  - C(ListMetrics) lists metrics with data points in the last two weeks, and a log stream stays until it is
    deleted. A host that already sent data earlier counts as seen.
  - Throttling is retried with jittered backoff; other AWS errors fail the module, naming the operation.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Wait until every host's metrics and syslog stream have arrived (one batched check for all hosts)
  hybrid.onboard.cloudwatch_agent_data_info:
    hosts: "{{ ansible_play_hosts | map('extract', hostvars, ['ansible_facts', 'hostname']) | list }}"
    metric_names: [mem_used_percent, disk_used_percent]
    log_groups:
      - name: /hybrid-onboard/dc1/syslog
        stream: "{hostname}"
    wait_timeout: 900
    wait_delay: 30
  run_once: true
  delegate_to: localhost
  register: __cw_data

- name: Fail the hosts whose data did not arrive
  ansible.builtin.assert:
    that:
      - ansible_facts['hostname'] not in __cw_data.missing_metrics_hosts
      - ansible_facts['hostname'] not in __cw_data.missing_logs_hosts
    fail_msg: "No CloudWatch data from {{ ansible_facts['hostname'] }} yet: check the agent's log on the host"

- name: Look once, metrics of a custom namespace only
  hybrid.onboard.cloudwatch_agent_data_info:
    hosts: [web01, web02]
    namespace: DC1/Agent
  register: __cw_metrics
"""

RETURN = r"""
hosts:
  description: One entry per host of O(hosts), in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    host:
      description: Host name.
      type: str
      sample: web01
    metrics_seen:
      description:
        - Whether the host has its metrics, meaning every name of O(metric_names), or any metric when
          O(metric_names) is omitted.
      type: bool
      sample: true
    metric_names:
      description:
        - Sorted names of all metrics in O(namespace) with this host's C(host) dimension, including metrics not
          in O(metric_names). Comes from the last poll that listed metrics.
      type: list
      elements: str
      sample: [disk_used_percent, mem_used_percent]
    log_streams_seen:
      description: Whether every expected log stream of the host exists (true when O(log_groups) is empty).
      type: bool
      sample: false
    missing_log_streams:
      description: The host's expected streams that do not exist, as C(group/stream).
      type: list
      elements: str
      sample: [/hybrid-onboard/dc1/syslog/web01]
missing_metrics_hosts:
  description: Hosts whose metrics were not seen, in the order of O(hosts).
  returned: always
  type: list
  elements: str
  sample: [web02]
missing_logs_hosts:
  description: Hosts with at least one missing log stream, in the order of O(hosts).
  returned: always
  type: list
  elements: str
  sample: [web01]
ready:
  description: Whether every host has its metrics and all its log streams.
  returned: always
  type: bool
  sample: false
waited:
  description:
    - Seconds from the start of the first look to the end of the last one, AWS calls included (with
      O(wait_timeout=0), the time the one look took).
  returned: always
  type: float
  sample: 42.3
"""

import os
import re
import time

try:
    import botocore
except ImportError:
    pass  # Handled by AnsibleAWSModule

from ansible_collections.hybrid.onboard.plugins.module_utils.hybrid_aws import AnsibleAWSModule, aws_client, paginate
from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code

HOST_DIMENSION = "host"
HOST_PLACEHOLDER = "{hostname}"
PLACEHOLDER_RE = re.compile(r"\{[^{}]*\}")
# CloudWatch Logs' own rule for log group names.
LOG_GROUP_RE = re.compile(r"^[.\-_/#A-Za-z0-9]{1,512}$")
# DescribeLogStreams returns at most 50 streams a page.
STREAMS_PAGE = 50


def _validate(module):
    """Every input error, before any AWS call."""
    p = module.params
    if not p["hosts"]:
        module.fail_json(msg="hosts must name at least one host")
    for index, host in enumerate(p["hosts"], 1):
        if not host or not host.strip() or host != host.strip():
            module.fail_json(msg=f"hosts[{index}] must be a host name without surrounding spaces (got {host!r})")
    if not p["namespace"] or not 1 <= len(p["namespace"]) <= 255:
        module.fail_json(msg="namespace must be 1 to 255 characters (the agent's metrics.namespace, e.g. CWAgent)")
    if p["metric_names"] is not None:
        if not p["metric_names"]:
            module.fail_json(msg="metric_names must name at least one metric when given (omit it to accept any)")
        for index, name in enumerate(p["metric_names"], 1):
            if not name:
                module.fail_json(msg=f"metric_names[{index}] is empty")
    for index, group in enumerate(p["log_groups"], 1):
        where = f"log_groups[{index}]"
        if not LOG_GROUP_RE.match(group["name"] or ""):
            hint = " (a log group per host is not supported)" if "{" in (group["name"] or "") else ""
            module.fail_json(
                msg=f"{where}.name must be a log group name of 1 to 512 characters from A-Z a-z 0-9 . - _ / #"
                f"{hint} (got {group['name']!r})"
            )
        stream = group["stream"]
        if not stream:
            module.fail_json(msg=f"{where}.stream must not be empty (default: {HOST_PLACEHOLDER})")
        others = sorted({m for m in PLACEHOLDER_RE.findall(stream) if m != HOST_PLACEHOLDER})
        if others:
            module.fail_json(
                msg=f"{where}.stream uses {', '.join(others)}; only {HOST_PLACEHOLDER} is supported. Write the "
                f"other parts of the stream name literally (got {stream!r})"
            )
        if ":" in stream or "*" in stream:
            module.fail_json(msg=f"{where}.stream must not contain ':' or '*' (got {stream!r})")
    if p["wait_timeout"] < 0 or p["wait_delay"] < 1:
        module.fail_json(
            msg=f"wait_timeout must be >= 0 and wait_delay >= 1 (got {p['wait_timeout']}, {p['wait_delay']})"
        )


def _expected_streams(hosts, log_groups):
    """{group: {stream: [hosts expecting it]}}; several entries for one group are merged (one listing)."""
    expected = {}
    for group in log_groups:
        streams = expected.setdefault(group["name"], {})
        for host in hosts:
            stream = group["stream"].replace(HOST_PLACEHOLDER, host)
            streams.setdefault(stream, [])
            if host not in streams[stream]:
                streams[stream].append(host)
    return expected


def _metric_names_by_host(client, namespace, hosts):
    """{host: {metric names}} for the wanted hosts, from one paginated listing of the namespace."""
    wanted = set(hosts)
    found = {host: set() for host in hosts}
    metrics = paginate(client, "list_metrics", "Metrics", Namespace=namespace, Dimensions=[{"Name": HOST_DIMENSION}])
    for metric in metrics:
        for dimension in metric.get("Dimensions", []):
            if dimension.get("Name") == HOST_DIMENSION and dimension.get("Value") in wanted:
                found[dimension["Value"]].add(metric["MetricName"])
    return found


def _existing_streams(client, group, names):
    """Which of ``names`` exist in ``group``; a missing group has none."""
    prefix = os.path.commonprefix(sorted(names))
    kwargs = {"logGroupName": group, "limit": STREAMS_PAGE}
    if prefix:
        kwargs["logStreamNamePrefix"] = prefix
    try:
        streams = paginate(client, "describe_log_streams", "logStreams", **kwargs)
    except is_boto3_error_code("ResourceNotFoundException"):
        return set()
    return {s["logStreamName"] for s in streams} & set(names)


class DataCheck:
    """What has been seen so far; each poll asks only for what is still missing."""

    def __init__(self, module, hosts):
        p = module.params
        self.module = module
        self.hosts = hosts
        self.namespace = p["namespace"]
        self.metric_names = set(p["metric_names"] or [])
        self.expected = _expected_streams(hosts, p["log_groups"])
        self.names_by_host = {host: set() for host in hosts}
        self.metrics_seen = set()
        self.streams_seen = {group: set() for group in self.expected}
        self.cloudwatch = aws_client(module, "cloudwatch")
        self.logs = aws_client(module, "logs") if self.expected else None

    def _has_metrics(self, host):
        names = self.names_by_host[host]
        return self.metric_names <= names if self.metric_names else bool(names)

    def poll(self):
        if len(self.metrics_seen) < len(self.hosts):
            try:
                self.names_by_host = _metric_names_by_host(self.cloudwatch, self.namespace, self.hosts)
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
                self.module.fail_json_aws(e, msg=f"Failed to list metrics in namespace {self.namespace}")
            self.metrics_seen = {host for host in self.hosts if self._has_metrics(host)}
        for group, streams in self.expected.items():
            missing = [name for name in streams if name not in self.streams_seen[group]]
            if not missing:
                continue
            try:
                self.streams_seen[group] |= _existing_streams(self.logs, group, missing)
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
                self.module.fail_json_aws(e, msg=f"Failed to describe log streams of log group {group}")

    def missing_streams(self):
        missing = {host: [] for host in self.hosts}
        for group, streams in self.expected.items():
            for name, hosts in streams.items():
                if name not in self.streams_seen[group]:
                    for host in hosts:
                        missing[host].append(f"{group}/{name}")
        return missing

    def ready(self):
        return len(self.metrics_seen) == len(self.hosts) and not any(self.missing_streams().values())

    def report(self):
        missing = self.missing_streams()
        return [
            {
                "host": host,
                "metrics_seen": host in self.metrics_seen,
                "metric_names": sorted(self.names_by_host[host]),
                "log_streams_seen": not missing[host],
                "missing_log_streams": missing[host],
            }
            for host in self.hosts
        ]


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            hosts=dict(type="list", elements="str", required=True),
            namespace=dict(type="str", default="CWAgent"),
            metric_names=dict(type="list", elements="str"),
            log_groups=dict(
                type="list",
                elements="dict",
                default=[],
                options=dict(
                    name=dict(type="str", required=True),
                    stream=dict(type="str", default=HOST_PLACEHOLDER),
                ),
            ),
            wait_timeout=dict(type="int", default=0),
            wait_delay=dict(type="int", default=10),
        ),
        supports_check_mode=True,
    )
    _validate(module)
    p = module.params
    check = DataCheck(module, list(dict.fromkeys(p["hosts"])))
    started = time.monotonic()
    while True:
        check.poll()
        elapsed = time.monotonic() - started
        if check.ready() or elapsed >= p["wait_timeout"]:
            break
        time.sleep(min(p["wait_delay"], p["wait_timeout"] - elapsed))
    hosts = check.report()
    module.exit_json(
        changed=False,
        hosts=hosts,
        missing_metrics_hosts=[h["host"] for h in hosts if not h["metrics_seen"]],
        missing_logs_hosts=[h["host"] for h in hosts if not h["log_streams_seen"]],
        ready=check.ready(),
        waited=round(time.monotonic() - started, 1),
    )


if __name__ == "__main__":
    main()
