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
module: route53_resolver_endpoint
short_description: Manage one Route 53 Resolver endpoint, found by name
version_added: 0.1.0
description:
  - Creates, updates in place or deletes a Route 53 Resolver endpoint (C(INBOUND) or C(OUTBOUND)), looked up
    by I(name) with C(ListResolverEndpoints).
  - IP addresses are added and removed in place (C(AssociateResolverEndpointIpAddress) /
    C(DisassociateResolverEndpointIpAddress), new ones first so the endpoint never drops below two);
    tags with C(TagResource) / C(UntagResource); protocols with C(UpdateResolverEndpoint).
  - The direction and the security groups cannot be changed on AWS; a difference fails with a clear message
    instead of recreating the endpoint.
  - I(ip_addresses) are checked before any change; at least 2 and at most the API's maximum (read from the
    botocore model), subnets in one VPC and in at least two availability zones, fixed IPs inside their subnet.
  - The C(CreatorRequestId) is derived from I(name), so a retried create does not make a second endpoint.
author:
  - hybrid-onboard maintainers (@hybrid-onboard)
options:
  name:
    description: Name of the endpoint; the unique key it is found by.
    type: str
    required: true
  direction:
    description: C(INBOUND) (DNS queries from on-prem into the VPC) or C(OUTBOUND). Required to create.
    type: str
    choices: [INBOUND, OUTBOUND]
  security_group_ids:
    description: Security groups of the endpoint's network interfaces. Required to create; cannot change.
    type: list
    elements: str
  ip_addresses:
    description:
      - The endpoint's addresses, one entry per address. Required to create; not set leaves them alone.
      - An entry without C(ip) takes any address of the subnet (an existing one in that subnet is kept).
    type: list
    elements: dict
    suboptions:
      subnet_id:
        description: Subnet of the address.
        type: str
        required: true
      ip:
        description: Fixed IPv4 address inside the subnet.
        type: str
  protocols:
    description:
      - Protocols of the endpoint (C(Do53), C(DoH), C(DoH-FIPS)). Not set leaves them alone.
      - An endpoint that reports no protocols is taken as C(Do53), AWS's default.
    type: list
    elements: str
    choices: [Do53, DoH, DoH-FIPS]
  state:
    description: Whether the endpoint exists.
    type: str
    choices: [present, absent]
    default: present
  wait:
    description: Wait until the endpoint is C(OPERATIONAL) (or gone, with I(state=absent)).
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait with I(wait=true).
    type: int
    default: 600
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.tags
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Create the inbound endpoint on-prem DNS servers forward amazonaws.com to
  hybrid.onboard.route53_resolver_endpoint:
    name: hybrid-onboard-inbound
    direction: INBOUND
    security_group_ids: [sg-0123456789abcdef0]
    ip_addresses:
      - subnet_id: subnet-0c0ffee000000000a
      - subnet_id: subnet-0c0ffee000000000b
    tags:
      Name: hybrid-onboard-inbound
  register: inbound

- name: Show the addresses to forward to
  ansible.builtin.debug:
    msg: "{{ inbound.ip_addresses }}"

- name: Delete it
  hybrid.onboard.route53_resolver_endpoint:
    name: hybrid-onboard-inbound
    state: absent
"""

RETURN = r"""
resolver_endpoint:
  description: The endpoint (empty when absent). In check mode a missing endpoint shows C(status=would be created).
  returned: always
  type: dict
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
    protocols:
      description: Protocols, when AWS reports them.
      type: list
      elements: str
    tags:
      description: Tags.
      type: dict
ip_addresses:
  description: The endpoint's IPv4 addresses, sorted (what on-prem DNS servers forward to).
  returned: always
  type: list
  elements: str
  sample: [10.0.1.53, 10.0.2.53]
"""

import hashlib
import ipaddress
import time

try:
    import botocore
except ImportError:
    pass  # Handled by AnsibleAWSModule

from ansible_collections.hybrid.onboard.plugins.module_utils.hybrid_aws import (
    AnsibleAWSModule,
    aws_client,
    tag_changes,
    tags_to_boto3,
)
from ansible_collections.hybrid.onboard.plugins.module_utils.hybrid_route53resolver import Resolver
from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code

# What AWS applies when an endpoint is created without Protocols (and what older endpoints report as none).
DEFAULT_PROTOCOLS = ["Do53"]


def creator_request_id(name):
    """Stable per name: a create retried after a lost response finds the first one instead of a twin."""
    return "hybrid-onboard-" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:32]


class Endpoint:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.client = aws_client(module, "route53resolver")
        self.resolver = Resolver(module, self.client)

    def fail(self, msg):
        self.module.fail_json(msg=msg)

    # --- validate (before any change) --------------------------------------------------------------

    def max_ip_addresses(self):
        shape = self.client.meta.service_model.operation_model("CreateResolverEndpoint").input_shape
        return shape.members["IpAddresses"].metadata.get("max", 20)

    def check_ip_addresses(self):
        wanted = self.params["ip_addresses"]
        if wanted is None:
            return
        maximum = self.max_ip_addresses()
        if not 2 <= len(wanted) <= maximum:
            self.fail("ip_addresses: a Resolver endpoint needs 2 to %d addresses, got %d" % (maximum, len(wanted)))
        fixed = [e["ip"] for e in wanted if e.get("ip")]
        if len(set(fixed)) != len(fixed):
            self.fail("ip_addresses: an ip is listed twice")
        subnet_ids = sorted({e["subnet_id"] for e in wanted})
        ec2 = aws_client(self.module, "ec2")
        try:
            subnets = ec2.describe_subnets(aws_retry=True, SubnetIds=subnet_ids)["Subnets"]
        except is_boto3_error_code("InvalidSubnetID.NotFound") as e:
            self.fail("ip_addresses: %s" % e.response["Error"]["Message"])
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:  # pylint: disable=duplicate-except
            self.module.fail_json_aws(e, msg="Failed to describe the subnets of ip_addresses")
        by_id = {s["SubnetId"]: s for s in subnets}
        vpcs = sorted({s["VpcId"] for s in subnets})
        if len(vpcs) > 1:
            self.fail("ip_addresses: the subnets are in several VPCs (%s); an endpoint lives in one" % ", ".join(vpcs))
        zones = sorted({by_id[e["subnet_id"]]["AvailabilityZone"] for e in wanted})
        if len(zones) < 2:
            self.fail(
                "ip_addresses: all addresses are in %s; a Resolver endpoint needs addresses in at least two "
                "availability zones" % ", ".join(zones)
            )
        for entry in wanted:
            if entry.get("ip"):
                subnet = by_id[entry["subnet_id"]]
                try:
                    inside = ipaddress.ip_address(entry["ip"]) in ipaddress.ip_network(subnet["CidrBlock"])
                except ValueError:
                    inside = False
                if not inside:
                    self.fail(
                        "ip_addresses: %s is not an address of %s (%s)"
                        % (entry["ip"], entry["subnet_id"], subnet["CidrBlock"])
                    )
        return vpcs[0] if vpcs else None

    # --- plan --------------------------------------------------------------------------------------

    def plan_ips(self, current_ips):
        """``(to_add, to_remove)``: fixed ips match exactly, subnet-only entries take any address there."""
        wanted = self.params["ip_addresses"]
        unmatched = list(current_ips)
        to_add = []
        for entry in sorted(wanted, key=lambda e: not e.get("ip")):  # fixed addresses claim theirs first
            match = None
            for ip in unmatched:
                if ip["SubnetId"] == entry["subnet_id"] and (not entry.get("ip") or ip.get("Ip") == entry["ip"]):
                    match = ip
                    break
            if match is None:
                to_add.append({"SubnetId": entry["subnet_id"], **({"Ip": entry["ip"]} if entry.get("ip") else {})})
            else:
                unmatched.remove(match)
        return to_add, unmatched

    def run(self):
        params = self.params
        check = self.module.check_mode
        name = params["name"]
        if params["state"] == "present":
            self.check_ip_addresses()
        current = self.resolver.find_by_name(name)

        if params["state"] == "absent":
            if current is None:
                return self.exit(False, None, {"before": {}, "after": {}})
            diff = {"before": self.resolver.result(current), "after": {}}
            if not check:
                self.resolver.call(
                    "Failed to delete resolver endpoint %s" % current["Id"],
                    "delete_resolver_endpoint",
                    ResolverEndpointId=current["Id"],
                )
                if params["wait"]:
                    self.wait(current["Id"], gone=True)
            return self.exit(True, None, diff)

        if current is None:
            return self.create()
        return self.update(current)

    def create(self):
        params = self.params
        missing = [o for o in ("direction", "security_group_ids", "ip_addresses") if not params[o]]
        if missing:
            self.fail("%s required to create resolver endpoint %s" % (", ".join(missing), params["name"]))
        kwargs = {
            "CreatorRequestId": creator_request_id(params["name"]),
            "Name": params["name"],
            "Direction": params["direction"],
            "SecurityGroupIds": params["security_group_ids"],
            "IpAddresses": [
                dict({"SubnetId": e["subnet_id"]}, **({"Ip": e["ip"]} if e.get("ip") else {}))
                for e in params["ip_addresses"]
            ],
        }
        if params["protocols"]:
            kwargs["Protocols"] = params["protocols"]
        if params["tags"]:
            kwargs["Tags"] = tags_to_boto3(params["tags"])
        after = {
            "name": params["name"],
            "direction": params["direction"],
            "security_group_ids": params["security_group_ids"],
            "ip_addresses": params["ip_addresses"],
            "tags": params["tags"] or {},
        }
        if params["protocols"]:
            after["protocols"] = params["protocols"]
        diff = {"before": {}, "after": after}
        if self.module.check_mode:
            return self.exit(True, dict(after, status="would be created"), diff, raw=False)
        try:
            endpoint = self.client.create_resolver_endpoint(aws_retry=True, **kwargs)["ResolverEndpoint"]
        except is_boto3_error_code("ResourceExistsException"):
            # Same CreatorRequestId: an earlier create of ours landed (e.g. the response was lost).
            endpoint = self.resolver.find_by_name(params["name"])
            if endpoint is None:
                self.fail(
                    "Failed to create resolver endpoint %s: AWS still holds its creator request id %s from an "
                    "earlier one; retry later" % (params["name"], kwargs["CreatorRequestId"])
                )
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:  # pylint: disable=duplicate-except
            self.module.fail_json_aws(e, msg="Failed to create resolver endpoint %s" % params["name"])
        if params["wait"]:
            self.wait(endpoint["Id"])
        return self.exit(True, self.resolver.get(endpoint["Id"]), diff)

    def update(self, current):
        params = self.params
        endpoint_id = current["Id"]
        if params["direction"] and params["direction"] != current["Direction"]:
            self.fail(
                "direction: resolver endpoint %s (%s) is %s; the direction cannot change. Delete it (state=absent) "
                "or use another name" % (params["name"], endpoint_id, current["Direction"])
            )
        groups = params["security_group_ids"]
        if groups is not None and set(groups) != set(current.get("SecurityGroupIds") or []):
            self.fail(
                "security_group_ids: resolver endpoint %s (%s) has %s; AWS cannot change the security groups of a "
                "Resolver endpoint. Change the rules of the existing groups, or delete and recreate the endpoint"
                % (params["name"], endpoint_id, ", ".join(current.get("SecurityGroupIds") or []))
            )
        before, after = {}, {}
        current_ips = self.resolver.ip_addresses(endpoint_id)
        to_add, to_remove = [], []
        if params["ip_addresses"] is not None:
            to_add, to_remove = self.plan_ips(current_ips)
            if to_add or to_remove:
                before["ip_addresses"] = sorted(ip["Ip"] for ip in current_ips)
                after["ip_addresses"] = sorted(
                    [ip["Ip"] for ip in current_ips if ip not in to_remove]
                    + [a.get("Ip", "(any in %s)" % a["SubnetId"]) for a in to_add]
                )
        protocols = params["protocols"]
        current_protocols = current.get("Protocols") or DEFAULT_PROTOCOLS
        if protocols is not None and set(protocols) != set(current_protocols):
            before["protocols"], after["protocols"] = current_protocols, protocols
        else:
            protocols = None
        current_tags = self.resolver.tags(current["Arn"])
        to_set, to_unset = tag_changes(current_tags, params["tags"], params["purge_tags"])
        if to_set or to_unset:
            before["tags"] = current_tags
            after["tags"] = dict((k, v) for k, v in current_tags.items() if k not in to_unset)
            after["tags"].update(to_set)
        changed = bool(before or after)
        diff = {"before": before, "after": after}
        if not changed or self.module.check_mode:
            return self.exit(changed, self.resolver.result(current, current_ips, current_tags), diff, raw=False)

        # Add first, then remove: the endpoint never has fewer than two addresses.
        for address in to_add:
            self.resolver.call(
                "Failed to add an address to resolver endpoint %s" % endpoint_id,
                "associate_resolver_endpoint_ip_address",
                ResolverEndpointId=endpoint_id,
                IpAddress=address,
            )
            if params["wait"]:
                self.wait(endpoint_id)
        for ip in to_remove:
            self.resolver.call(
                "Failed to remove address %s from resolver endpoint %s" % (ip["Ip"], endpoint_id),
                "disassociate_resolver_endpoint_ip_address",
                ResolverEndpointId=endpoint_id,
                IpAddress={"IpId": ip["IpId"], "SubnetId": ip["SubnetId"], "Ip": ip["Ip"]},
            )
            if params["wait"]:
                self.wait(endpoint_id)
        if protocols is not None:
            self.resolver.call(
                "Failed to update the protocols of resolver endpoint %s" % endpoint_id,
                "update_resolver_endpoint",
                ResolverEndpointId=endpoint_id,
                Protocols=protocols,
            )
        if to_unset:
            self.resolver.call(
                "Failed to untag resolver endpoint %s" % endpoint_id,
                "untag_resource",
                ResourceArn=current["Arn"],
                TagKeys=to_unset,
            )
        if to_set:
            self.resolver.call(
                "Failed to tag resolver endpoint %s" % endpoint_id,
                "tag_resource",
                ResourceArn=current["Arn"],
                Tags=tags_to_boto3(to_set),
            )
        if params["wait"]:
            self.wait(endpoint_id)
        return self.exit(True, self.resolver.get(endpoint_id), diff)

    def wait(self, endpoint_id, gone=False):
        deadline = time.time() + self.params["wait_timeout"]
        delay = 2
        while True:
            try:
                status = self.client.get_resolver_endpoint(aws_retry=True, ResolverEndpointId=endpoint_id)[
                    "ResolverEndpoint"
                ]["Status"]
            except is_boto3_error_code("ResourceNotFoundException"):
                if gone:
                    return
                status = "missing"
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:  # pylint: disable=duplicate-except
                self.module.fail_json_aws(e, msg="Failed to get resolver endpoint %s" % endpoint_id)
            if not gone and status == "OPERATIONAL":
                return
            if not gone and status == "ACTION_NEEDED":
                self.fail(
                    "Resolver endpoint %s needs action (status ACTION_NEEDED); see its StatusMessage" % endpoint_id
                )
            if time.time() + delay > deadline:
                self.fail(
                    "Timed out after %ss waiting for resolver endpoint %s to be %s (status %s)"
                    % (self.params["wait_timeout"], endpoint_id, "deleted" if gone else "OPERATIONAL", status)
                )
            time.sleep(delay)
            delay = min(delay * 2, 15)

    def exit(self, changed, endpoint, diff, raw=True):
        if endpoint is None:
            result = {}
        elif raw:
            result = self.resolver.result(endpoint)
        else:
            result = endpoint
        ips = sorted(
            (a.get("ip") for a in result.get("ip_addresses") or [] if a.get("ip")),
            key=_ip_key,
        )
        kwargs = dict(changed=changed, resolver_endpoint=result, ip_addresses=ips)
        if self.module._diff:
            kwargs["diff"] = diff
        self.module.exit_json(**kwargs)


def _ip_key(ip):
    try:
        return (0, ipaddress.ip_address(ip))
    except ValueError:
        return (1, ip)


def main():
    argument_spec = dict(
        name=dict(type="str", required=True),
        direction=dict(type="str", choices=["INBOUND", "OUTBOUND"]),
        security_group_ids=dict(type="list", elements="str"),
        ip_addresses=dict(
            type="list",
            elements="dict",
            options=dict(subnet_id=dict(type="str", required=True), ip=dict(type="str")),
        ),
        protocols=dict(type="list", elements="str", choices=["Do53", "DoH", "DoH-FIPS"]),
        tags=dict(type="dict", aliases=["resource_tags"]),
        purge_tags=dict(type="bool", default=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=600),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    Endpoint(module).run()


if __name__ == "__main__":
    main()
