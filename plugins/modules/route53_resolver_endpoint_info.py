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
  - hybrid-onboard contributors
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
  route53_resolver_endpoint_info:
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

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible.module_utils.hybrid_aws import AnsibleAWSModule, aws_client, paginate, snake_result, tags_from_boto3
from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code

BOTOCORE_ERRORS = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)


class Resolver:
    """Resolver endpoints with their addresses and tags.

    Kept identical in route53_resolver_endpoint and route53_resolver_endpoint_info.
    """

    def __init__(self, module, client):
        self.module = module
        self.client = client

    def call(self, msg, method, **kwargs):
        try:
            return getattr(self.client, method)(aws_retry=True, **kwargs)
        except BOTOCORE_ERRORS as e:
            self.module.fail_json_aws(e, msg=msg)

    def list(self, filters):
        try:
            return paginate(self.client, "list_resolver_endpoints", "ResolverEndpoints", Filters=filters)
        except BOTOCORE_ERRORS as e:
            self.module.fail_json_aws(e, msg="Failed to list resolver endpoints")

    def find_by_name(self, name):
        matches = [e for e in self.list([{"Name": "Name", "Values": [name]}]) if e.get("Name") == name]
        if len(matches) > 1:
            self.module.fail_json(
                msg="name: %d resolver endpoints are called %s (%s); names must be unique for this module"
                % (len(matches), name, ", ".join(e["Id"] for e in matches))
            )
        return matches[0] if matches else None

    def get(self, endpoint_id):
        try:
            return self.client.get_resolver_endpoint(aws_retry=True, ResolverEndpointId=endpoint_id)["ResolverEndpoint"]
        except is_boto3_error_code("ResourceNotFoundException"):
            return None
        except BOTOCORE_ERRORS as e:  # pylint: disable=duplicate-except
            self.module.fail_json_aws(e, msg="Failed to get resolver endpoint %s" % endpoint_id)

    def ip_addresses(self, endpoint_id):
        try:
            return paginate(
                self.client,
                "list_resolver_endpoint_ip_addresses",
                "IpAddresses",
                ResolverEndpointId=endpoint_id,
            )
        except BOTOCORE_ERRORS as e:
            self.module.fail_json_aws(e, msg="Failed to list the addresses of resolver endpoint %s" % endpoint_id)

    def tags(self, arn):
        try:
            return tags_from_boto3(paginate(self.client, "list_tags_for_resource", "Tags", ResourceArn=arn))
        except BOTOCORE_ERRORS as e:
            self.module.fail_json_aws(e, msg="Failed to list the tags of %s" % arn)

    def result(self, endpoint, ips=None, tags=None):
        """snake_case endpoint with its addresses and tags; ``ips``/``tags`` are looked up when not given."""
        if ips is None:
            ips = self.ip_addresses(endpoint["Id"])
        if tags is None:
            tags = self.tags(endpoint["Arn"])
        result = snake_result(endpoint)
        result["ip_addresses"] = [
            {"ip": ip.get("Ip"), "subnet_id": ip.get("SubnetId"), "ip_id": ip.get("IpId"), "status": ip.get("Status")}
            for ip in ips
        ]
        result["tags"] = tags
        return result


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
