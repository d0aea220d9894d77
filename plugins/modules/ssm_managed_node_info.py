#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hybrid-onboard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Imports come before the documentation blocks so that ruff's E402 holds; ansible-doc reads them anyway.
import contextlib
from datetime import datetime

with contextlib.suppress(ImportError):  # a missing botocore is reported by AnsibleAWSModule
    import botocore

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict
from ansible.module_utils.hybrid_aws import AnsibleAWSModule, aws_client, paginate
from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code

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
  - hybrid-onboard contributors
options:
  instance_ids:
    description: Only these managed node IDs.
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
notes:
  - Read-only; supports check mode.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Count the hybrid nodes of the account and region
  ssm_managed_node_info:
  register: __nodes

- name: Wait until the nodes registered by this run are Online
  ssm_managed_node_info:
    instance_ids: "{{ __registered_ids }}"
    ping_status: [Online]
  register: __online
  until: __online.count == __registered_ids | length
  retries: 30
  delay: 10
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
"""


def _filters(p, with_ids=True):
    filters = []
    if with_ids and p["instance_ids"]:
        filters.append({"Key": "InstanceIds", "Values": p["instance_ids"]})
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


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            instance_ids=dict(type="list", elements="str"),
            ping_status=dict(type="list", elements="str", choices=["Online", "ConnectionLost", "Inactive"]),
            activation_ids=dict(type="list", elements="str"),
            tags=dict(type="dict"),
            resource_type=dict(type="str", choices=["ManagedInstance", "EC2Instance", "all"],
                               default="ManagedInstance"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    for option in ("instance_ids", "activation_ids", "ping_status"):
        if p[option] is not None and not 1 <= len(p[option]) <= 100:
            module.fail_json(msg=f"{option} must hold 1 to 100 values (got {len(p[option])})")
    client = aws_client(module, "ssm")
    try:
        try:
            nodes = paginate(client, "describe_instance_information", "InstanceInformationList",
                             Filters=_filters(p))
        except is_boto3_error_code("InvalidInstanceId"):
            # Some IDs are not registered (any more): list without that filter and keep the known ones.
            wanted = set(p["instance_ids"] or [])
            nodes = [n for n in paginate(client, "describe_instance_information", "InstanceInformationList",
                                         Filters=_filters(p, with_ids=False)) if n.get("InstanceId") in wanted]
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:  # pylint: disable=duplicate-except
        module.fail_json_aws(e, msg="Failed to describe instance information")
    managed = [_snake(n) for n in nodes]
    counts = {}
    for node in managed:
        counts[node.get("ping_status", "Unknown")] = counts.get(node.get("ping_status", "Unknown"), 0) + 1
    module.exit_json(changed=False, managed_nodes=managed, count=len(managed), counts_by_ping_status=counts)


if __name__ == "__main__":
    main()
