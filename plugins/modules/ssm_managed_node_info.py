#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hybrid-onboard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Ansible's module layout: documentation before the imports, botocore optional at import time.

DOCUMENTATION = r"""
---
module: ssm_managed_node_info
short_description: List and count hybrid managed nodes (mi-...) of AWS Systems Manager
description:
  - Lists managed nodes from C(DescribeInstanceInformation), by default only hybrid ones
    (C(ResourceType=ManagedInstance)), filtered by IDs, ping status, activation and tags.
  - Used to count the hybrid nodes before choosing the activation tier, to confirm that freshly registered
    nodes are C(Online), and by the report.
  - Unknown IDs in O(instance_ids) are not an error (deregistered nodes simply are not listed).
version_added: 0.1.0
author:
  - hybrid-onboard maintainers (@hybrid-onboard)
options:
  instance_ids:
    description:
      - Only these managed node IDs. Any number; they are asked for in chunks of 50.
    type: list
    elements: str
  ping_status:
    description: Only nodes with one of these ping statuses.
    type: list
    elements: str
    choices: [Online, ConnectionLost, Inactive]
  activation_ids:
    description: Only nodes registered with one of these activations.
    type: list
    elements: str
  tags:
    description: Only nodes carrying every one of these tags (key and value).
    type: dict
  resource_type:
    description: V(ManagedInstance) lists hybrid nodes, V(EC2Instance) EC2 instances, V(all) both.
    type: str
    choices: [ManagedInstance, EC2Instance, all]
    default: ManagedInstance
  wait_ping_status:
    description:
      - Wait until every node of O(instance_ids) has this ping status (or O(wait_timeout) runs out), asking for
        all of them in one query per poll. The nodes that never got there are returned in RV(not_ready); the
        module does not fail because of them, so a play can fail just those hosts.
      - >-
        The task's action plugin (same name) waits in slices of a few seconds and prints, at least every 15 seconds,
        the nodes not there yet, for example "Waiting for 2 of 5 managed nodes to be Online (95 s left):
        mi-0123456789abcdef0 (web02, ConnectionLost), mi-0fedcba9876543210", in the normal output of
        C(ansible-playbook). A node the agent has registered shows its C(computer_name) and ping status. The result
        is the one of a single run, RV(waited) being the whole wait; AWS is asked as often as O(wait_delay) says.
    type: str
    choices: [Online]
  wait_timeout:
    description: Seconds to wait with O(wait_ping_status).
    type: int
    default: 180
  wait_delay:
    description: Seconds between polls with O(wait_ping_status).
    type: int
    default: 5
notes:
  - Read-only; supports check mode.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Count the hybrid nodes of the account and region
  hybrid.onboard.ssm_managed_node_info:
  register: __nodes

- name: Wait until the nodes registered by this run are Online (one query per poll for all of them)
  hybrid.onboard.ssm_managed_node_info:
    instance_ids: "{{ __registered_ids }}"
    wait_ping_status: Online
    wait_timeout: 300
  register: __online

- name: Fail the hosts whose node did not come Online
  ansible.builtin.assert:
    that: __my_id not in __online.not_ready
"""

RETURN = r"""
managed_nodes:
  description: The matching nodes, oldest registration first, keys in snake_case.
  returned: always
  type: list
  elements: dict
  contains:
    instance_id:
      description: Managed node ID.
      type: str
      sample: mi-0123456789abcdef0
    ping_status:
      description: C(Online), C(ConnectionLost) or C(Inactive).
      type: str
    activation_id:
      description: Activation the node registered with.
      type: str
    iam_role:
      description: Role of the node.
      type: str
    name:
      description: Name given at registration.
      type: str
    computer_name:
      description: Host name reported by the agent.
      type: str
    ip_address:
      description: Address reported by the agent.
      type: str
    agent_version:
      description: SSM Agent version.
      type: str
    platform_name:
      description: Operating system.
      type: str
    resource_type:
      description: C(ManagedInstance) for hybrid nodes.
      type: str
    registration_date:
      description: Registration time, ISO 8601.
      type: str
    last_ping_date_time:
      description: Last heartbeat, ISO 8601.
      type: str
count:
  description: Number of matching nodes.
  returned: always
  type: int
counts_by_ping_status:
  description: Number of matching nodes per ping status.
  returned: always
  type: dict
  sample: {Online: 3, ConnectionLost: 1}
not_ready:
  description: With O(wait_ping_status), the IDs of O(instance_ids) that did not reach it in time (unknown IDs too).
  returned: when O(wait_ping_status) is set
  type: list
  elements: str
waited:
  description: With O(wait_ping_status), seconds spent waiting.
  returned: when O(wait_ping_status) is set
  type: float
"""

import time
from datetime import datetime

try:
    import botocore
except ImportError:
    pass  # Handled by AnsibleAWSModule

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict
from ansible_collections.hybrid.onboard.plugins.module_utils.hybrid_aws import AnsibleAWSModule, aws_client, paginate
from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code


# Values per InstanceIds filter in one DescribeInstanceInformation call.
ID_CHUNK = 50


def _filters(p, ids=None):
    filters = []
    if ids:
        filters.append({"Key": "InstanceIds", "Values": ids})
    if p["ping_status"]:
        filters.append({"Key": "PingStatus", "Values": p["ping_status"]})
    if p["activation_ids"]:
        filters.append({"Key": "ActivationIds", "Values": p["activation_ids"]})
    if p["resource_type"] != "all":
        filters.append({"Key": "ResourceType", "Values": [p["resource_type"]]})
    for key, value in (p["tags"] or {}).items():
        filters.append({"Key": f"tag:{key}", "Values": [str(value)]})
    return filters


def _snake(node):
    out = camel_dict_to_snake_dict(node)
    for key, value in out.items():
        if isinstance(value, datetime):
            out[key] = value.isoformat()
    return out


def _describe(client, p, ids):
    """Nodes matching the filters; with ``ids`` only those (unknown ones are skipped, not an error)."""
    if not ids:
        return paginate(client, "describe_instance_information", "InstanceInformationList", Filters=_filters(p))
    nodes = []
    for start in range(0, len(ids), ID_CHUNK):
        chunk = ids[start:start + ID_CHUNK]
        try:
            nodes += paginate(client, "describe_instance_information", "InstanceInformationList",
                              Filters=_filters(p, chunk))
        except is_boto3_error_code("InvalidInstanceId"):
            # Some IDs are not registered (any more): list without that filter and keep the known ones.
            wanted = set(chunk)
            nodes += [n for n in paginate(client, "describe_instance_information", "InstanceInformationList",
                                          Filters=_filters(p)) if n.get("InstanceId") in wanted]
    return nodes


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            instance_ids=dict(type="list", elements="str"),
            ping_status=dict(type="list", elements="str", choices=["Online", "ConnectionLost", "Inactive"]),
            activation_ids=dict(type="list", elements="str"),
            tags=dict(type="dict"),
            resource_type=dict(type="str", choices=["ManagedInstance", "EC2Instance", "all"],
                               default="ManagedInstance"),
            wait_ping_status=dict(type="str", choices=["Online"]),
            wait_timeout=dict(type="int", default=180),
            wait_delay=dict(type="int", default=5),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if p["instance_ids"] is not None and not p["instance_ids"]:
        module.fail_json(msg="instance_ids must hold at least one ID when given (omit it to list every node)")
    for option in ("activation_ids", "ping_status"):
        if p[option] is not None and not 1 <= len(p[option]) <= 100:
            module.fail_json(msg=f"{option} must hold 1 to 100 values (got {len(p[option])})")
    if p["wait_ping_status"] and not p["instance_ids"]:
        module.fail_json(msg="wait_ping_status needs instance_ids (the nodes to wait for)")
    if p["wait_timeout"] < 0 or p["wait_delay"] < 1:
        module.fail_json(msg=f"wait_timeout must be >= 0 and wait_delay >= 1 (got {p['wait_timeout']}, "
                             f"{p['wait_delay']})")
    ids = list(dict.fromkeys(p["instance_ids"] or []))
    client = aws_client(module, "ssm")
    started = time.monotonic()
    result = {}
    try:
        while True:
            nodes = _describe(client, p, ids)
            if not p["wait_ping_status"]:
                break
            ready = {n["InstanceId"] for n in nodes if n.get("PingStatus") == p["wait_ping_status"]}
            not_ready = [i for i in ids if i not in ready]
            if not not_ready or time.monotonic() - started >= p["wait_timeout"]:
                result = {"not_ready": not_ready, "waited": round(time.monotonic() - started, 1)}
                break
            time.sleep(p["wait_delay"])
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg="Failed to describe instance information")
    managed = [_snake(n) for n in nodes]
    counts = {}
    for node in managed:
        counts[node.get("ping_status", "Unknown")] = counts.get(node.get("ping_status", "Unknown"), 0) + 1
    module.exit_json(changed=False, managed_nodes=managed, count=len(managed), counts_by_ping_status=counts, **result)


if __name__ == "__main__":
    main()
