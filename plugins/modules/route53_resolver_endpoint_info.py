#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hybrid-onboard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Ansible's module layout: documentation before the imports, botocore optional at import time.
# ruff: noqa: E402, SIM105

DOCUMENTATION = r"""
---
module: route53_resolver_endpoint_info
short_description: Look up Route 53 Resolver endpoints with their IP addresses
version_added: 0.1.0
description:
  - Lists Route 53 Resolver endpoints matching every given criterion (any combination), each with its
    IP addresses and tags. Without criteria, lists all endpoints of the region.
  - Read-only; never reports C(changed) and runs the same in check mode.
author:
  - hybrid-onboard maintainers (@hybrid-onboard)
options:
  name:
    description: Endpoint name.
    type: str
  resolver_endpoint_id:
    description: Endpoint id (C(rslvr-in-...), C(rslvr-out-...)).
    type: str
  direction:
    description: C(INBOUND) or C(OUTBOUND).
    type: str
    choices: [INBOUND, OUTBOUND]
  vpc_id:
    description: VPC the endpoint is in.
    type: str
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Find the inbound endpoint of the VPC
  hybrid.onboard.route53_resolver_endpoint_info:
    direction: INBOUND
    vpc_id: vpc-0c0ffee0000000001
  register: inbound

- name: Forward to its addresses
  ansible.builtin.debug:
    msg: "{{ inbound.resolver_endpoints[0].ip_addresses | map(attribute='ip') | list }}"
"""

RETURN = r"""
resolver_endpoints:
  description: Matching endpoints, sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Endpoint id.
      type: str
      sample: rslvr-in-0123456789abcdef0
    arn:
      description: Endpoint ARN.
      type: str
    name:
      description: Name.
      type: str
    direction:
      description: C(INBOUND) or C(OUTBOUND).
      type: str
    status:
      description: Status (C(OPERATIONAL), C(CREATING), ...).
      type: str
    host_vpc_id:
      description: VPC of the endpoint.
      type: str
    security_group_ids:
      description: Security groups.
      type: list
      elements: str
    ip_addresses:
      description: Addresses (C(ip), C(subnet_id), C(ip_id), C(status)).
      type: list
      elements: dict
    ip_address_count:
      description: Number of addresses.
      type: int
    tags:
      description: Tags.
      type: dict
"""

from ansible_collections.hybrid.onboard.plugins.module_utils.hybrid_aws import AnsibleAWSModule, aws_client
from ansible_collections.hybrid.onboard.plugins.module_utils.hybrid_route53resolver import Resolver


def main():
    argument_spec = dict(
        name=dict(type="str"),
        resolver_endpoint_id=dict(type="str"),
        direction=dict(type="str", choices=["INBOUND", "OUTBOUND"]),
        vpc_id=dict(type="str"),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    resolver = Resolver(module, aws_client(module, "route53resolver"))
    criteria = (("name", "Name", "Name"), ("direction", "Direction", "Direction"), ("vpc_id", "HostVPCId", "HostVPCId"))
    if params["resolver_endpoint_id"]:
        endpoint = resolver.get(params["resolver_endpoint_id"])
        endpoints = [endpoint] if endpoint else []
    else:
        filters = [{"Name": f, "Values": [params[o]]} for o, f, _k in criteria if params[o]]
        endpoints = resolver.list(filters)
    # The filters are applied again here: with an id they were not sent, and they must all hold.
    endpoints = [e for e in endpoints if all(not params[o] or e.get(k) == params[o] for o, _f, k in criteria)]
    results = [resolver.result(e) for e in sorted(endpoints, key=lambda e: (e.get("Name") or "", e["Id"]))]
    module.exit_json(changed=False, resolver_endpoints=results)


if __name__ == "__main__":
    main()
