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
module: vpc_interface_endpoints
short_description: Manage the set of interface VPC endpoints of one VPC, with private DNS and DNS options
version_added: 0.1.0
description:
  - Creates, modifies in place or deletes the interface VPC endpoints of a list of AWS services in one VPC,
    and optionally the gateway endpoints some of them need (the S3 gateway endpoint required by S3's
    I(private DNS only for inbound Resolver endpoint) mode).
  - The whole set is read with one C(DescribeVpcEndpoints) (paginated) and one C(DescribeNetworkInterfaces),
    so a run that changes nothing makes a small constant number of API calls whatever the number of services.
  - What can be modified (subnets, security groups, private DNS, DNS options, policy, tags) is modified with
    C(ModifyVpcEndpoint), C(CreateTags) and C(DeleteTags); an endpoint is never recreated.
    A parameter that is not set is never changed.
  - Every input is checked before the first change (service names offered in the region, subnets in the VPC
    and at most one per availability zone, security groups in the VPC, the S3 gateway endpoint rule).
  - Unlike M(amazon.aws.ec2_vpc_endpoint), this module sets C(DnsOptions) (amazon.aws issue 1719).
author:
  - hybrid-onboard maintainers (@hybrid-onboard)
options:
  vpc_id:
    description: The VPC holding the endpoints.
    type: str
    required: true
  services:
    description:
      - Services to have an interface endpoint for, as short names (C(ssm)) or full service names
        (C(com.amazonaws.eu-west-1.ssm)). Short names are expanded with the module's region.
      - A name the region does not offer as an interface endpoint service fails before any change, listing
        what C(DescribeVpcEndpointServices) offers.
      - With I(state=absent), the interface endpoints of these services in the VPC are deleted.
    type: list
    elements: str
    default: []
  subnet_ids:
    description:
      - Subnets for the endpoint network interfaces, all in I(vpc_id), at most one per availability zone.
      - Required with I(state=present). Subnets are added to and removed from existing endpoints in place.
    type: list
    elements: str
  security_group_ids:
    description:
      - Security groups of the endpoint network interfaces (all in I(vpc_id)).
      - Not set leaves existing endpoints' groups alone; new endpoints then get the VPC's default group.
    type: list
    elements: str
  private_dns_enabled:
    description: Whether the endpoints have private DNS (the service's own names resolve to the endpoint).
    type: bool
    default: true
  private_dns_overrides:
    description:
      - "Per-service exception to I(private_dns_enabled), for example C({s3: false}). Keys as in I(services)."
    type: dict
  dns_options:
    description:
      - Per-service C(DnsOptions), keyed as in I(services). Each value is a dict with
        C(dns_record_ip_type) (one of C(ipv4), C(dualstack), C(ipv6), C(service-defined)) and/or
        C(private_dns_only_for_inbound_resolver_endpoint) (bool; services offered as both gateway and
        interface endpoints only, such as C(s3)). Sub-keys that are not set are left alone.
      - C(private_dns_only_for_inbound_resolver_endpoint=true) needs a gateway endpoint of the same service
        in the VPC (see I(gateway_endpoints)). AWS defaults it to true for S3 with private DNS, so an S3
        interface endpoint with private DNS and no S3 gateway endpoint fails before any change unless it is
        set to false.
    type: dict
  policy:
    description:
      - Endpoint policy (dict or JSON) applied to every interface endpoint of I(services).
        Not set leaves policies alone.
    type: json
  gateway_endpoints:
    description:
      - Gateway endpoints managed with the set; created before the interface endpoints that need them.
      - With I(state=absent) the gateway endpoints of these services are deleted (after the interface ones).
    type: list
    elements: dict
    suboptions:
      service:
        description: Service, short or full name (C(s3), C(dynamodb)).
        type: str
        required: true
      route_table_ids:
        description: Route tables of the gateway endpoint. Not set leaves an existing endpoint's tables alone.
        type: list
        elements: str
      policy:
        description: Policy of this gateway endpoint (dict or JSON). Not set leaves it alone.
        type: json
  state:
    description: Whether the endpoints of I(services) (and I(gateway_endpoints)) exist.
    type: str
    choices: [present, absent]
    default: present
  wait:
    description: Wait until changed endpoints are C(available) (or gone, with I(state=absent)).
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait with I(wait=true).
    type: int
    default: 600
notes:
  - I(tags) are applied to every endpoint of the set (interface and gateway).
  - When several live interface endpoints of one service exist in the VPC, the oldest is managed and a
    warning names the others.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.tags
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Create the endpoints an on-prem SSM and CloudWatch agent needs
  hybrid.onboard.vpc_interface_endpoints:
    vpc_id: vpc-0c0ffee0000000001
    services: [ssm, ssmmessages, ec2messages, kms, logs, monitoring, s3]
    subnet_ids: [subnet-0c0ffee000000000a, subnet-0c0ffee000000000b]
    security_group_ids: [sg-0123456789abcdef0]
    private_dns_overrides:
      s3: false  # S3 names come from a private hosted zone instead
    tags:
      Name: hybrid-onboard
  register: endpoints

- name: S3 private DNS only for queries through the Resolver inbound endpoint (needs the S3 gateway endpoint)
  hybrid.onboard.vpc_interface_endpoints:
    vpc_id: vpc-0c0ffee0000000001
    services: [s3]
    subnet_ids: [subnet-0c0ffee000000000a, subnet-0c0ffee000000000b]
    dns_options:
      s3:
        private_dns_only_for_inbound_resolver_endpoint: true
    gateway_endpoints:
      - service: s3
        route_table_ids: [rtb-0123456789abcdef0]

- name: Remove the endpoints
  hybrid.onboard.vpc_interface_endpoints:
    vpc_id: vpc-0c0ffee0000000001
    services: [ssm, ssmmessages, ec2messages, kms, logs, monitoring, s3]
    gateway_endpoints:
      - service: s3
    state: absent
"""

RETURN = r"""
endpoints:
  description:
    - One entry per service of I(services), in that order. In check mode a missing endpoint shows
      C(state=would be created); with I(state=absent) the list holds what is left (in check mode, the
      endpoints that would be deleted with C(state=would be deleted)).
  returned: always
  type: list
  elements: dict
  contains:
    vpc_endpoint_id:
      description: Endpoint id.
      type: str
      sample: vpce-0123456789abcdef0
    service_name:
      description: Full service name.
      type: str
      sample: com.amazonaws.eu-west-1.ssm
    service:
      description: Short service name (as in I(services) when given short).
      type: str
      sample: ssm
    state:
      description: Endpoint state (C(available), C(pending), ...).
      type: str
      sample: available
    private_dns_enabled:
      description: Whether private DNS is on.
      type: bool
    dns_options:
      description: DNS options (C(dns_record_ip_type), C(private_dns_only_for_inbound_resolver_endpoint)).
      type: dict
    dns_entries:
      description: DNS names of the endpoint (regional first, then zonal, then private names).
      type: list
      elements: dict
      sample: [{dns_name: vpce-0123-abcd.ssm.eu-west-1.vpce.amazonaws.com, hosted_zone_id: Z7HUB22UULQXV}]
    network_interface_ids:
      description: Endpoint network interfaces.
      type: list
      elements: str
    ip_addresses:
      description: Private IPv4 addresses of the endpoint network interfaces.
      type: list
      elements: str
      sample: [10.0.1.10, 10.0.2.10]
    subnet_ids:
      description: Subnets of the endpoint.
      type: list
      elements: str
    groups:
      description: Security groups (C(group_id), C(group_name)).
      type: list
      elements: dict
    tags:
      description: Tags.
      type: dict
    policy_document:
      description: Endpoint policy, parsed.
      type: dict
endpoints_by_service:
  description: The entries of I(endpoints) keyed by short service name.
  returned: always
  type: dict
  sample: {ssm: {vpc_endpoint_id: vpce-0123456789abcdef0, state: available}}
gateway_endpoints:
  description:
    - The gateway endpoints of I(gateway_endpoints) (C(vpc_endpoint_id), C(service_name), C(service), C(state),
      C(route_table_ids), C(tags), C(policy_document)).
  returned: always
  type: list
  elements: dict
"""

import json
import time
import uuid

try:
    import botocore
except ImportError:
    pass  # Handled by AnsibleAWSModule

from ansible.module_utils.common.validation import check_type_bool
from ansible_collections.hybrid.onboard.plugins.module_utils.hybrid_aws import (
    AnsibleAWSModule,
    aws_client,
    paginate,
    snake_result,
    tag_changes,
    tags_from_boto3,
    tags_to_boto3,
)
from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.policy import compare_policies

# Endpoints in these states are history, not the endpoint of a service.
DEAD_STATES = ("deleted", "deleting", "failed", "rejected", "expired")
DNS_RECORD_IP_TYPES = ("ipv4", "dualstack", "ipv6", "service-defined")
DNS_OPTION_KEYS = {
    "dns_record_ip_type": "DnsRecordIpType",
    "private_dns_only_for_inbound_resolver_endpoint": "PrivateDnsOnlyForInboundResolverEndpoint",
}


class Names:
    """Short <-> full service names in one region (``ssm`` <-> ``com.amazonaws.<region>.ssm``)."""

    def __init__(self, region):
        self.prefix = "com.amazonaws.%s." % region

    def full(self, name):
        return name if "." in name and name.split(".")[0] in ("com", "aws", "cn") else self.prefix + name

    def short(self, full_name):
        return full_name[len(self.prefix) :] if full_name.startswith(self.prefix) else full_name


class EndpointSet:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.ec2 = aws_client(module, "ec2")
        self.names = Names(module.region)
        self.vpc_id = module.params["vpc_id"]
        self.warnings = []

    # --- describe ---------------------------------------------------------------------------------

    def call(self, msg, method, **kwargs):
        try:
            return getattr(self.ec2, method)(aws_retry=True, **kwargs)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            self.module.fail_json_aws(e, msg=msg)

    def offered_services(self, full_names):
        """ServiceDetails of the named services; unknown names fail, listing what the region offers."""
        if not full_names:
            return []
        try:
            return paginate(
                self.ec2, "describe_vpc_endpoint_services", "ServiceDetails", ServiceNames=sorted(set(full_names))
            )
        except is_boto3_error_code("InvalidServiceName"):
            pass
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:  # pylint: disable=duplicate-except
            self.module.fail_json_aws(e, msg="Failed to describe VPC endpoint services")
        try:
            return paginate(self.ec2, "describe_vpc_endpoint_services", "ServiceDetails")
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            self.module.fail_json_aws(e, msg="Failed to describe VPC endpoint services")

    def describe_endpoints(self, endpoint_ids=None):
        filters = [{"Name": "vpc-id", "Values": [self.vpc_id]}]
        if endpoint_ids:
            filters.append({"Name": "vpc-endpoint-id", "Values": list(endpoint_ids)})
        try:
            return paginate(self.ec2, "describe_vpc_endpoints", "VpcEndpoints", Filters=filters)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            self.module.fail_json_aws(e, msg="Failed to describe VPC endpoints of %s" % self.vpc_id)

    def live(self, endpoints, endpoint_type):
        """``{service_name: endpoint}`` of live endpoints of one type (the oldest when there are several)."""
        by_service = {}
        for endpoint in sorted(endpoints, key=lambda e: str(e.get("CreationTimestamp", ""))):
            if endpoint.get("State", "").lower() in DEAD_STATES:
                continue
            if (endpoint.get("VpcEndpointType") or "").lower() != endpoint_type:
                continue
            name = endpoint["ServiceName"]
            if name in by_service:
                self.warnings.append(
                    "%s has several %s endpoints for %s; managing %s, not %s"
                    % (self.vpc_id, endpoint_type, name, by_service[name]["VpcEndpointId"], endpoint["VpcEndpointId"])
                )
                continue
            by_service[name] = endpoint
        return by_service

    def ip_addresses(self, endpoints):
        eni_ids = sorted({eni for e in endpoints for eni in e.get("NetworkInterfaceIds") or []})
        if not eni_ids:
            return {}
        try:
            enis = paginate(
                self.ec2,
                "describe_network_interfaces",
                "NetworkInterfaces",
                Filters=[{"Name": "network-interface-id", "Values": eni_ids}],
            )
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            self.module.fail_json_aws(e, msg="Failed to describe the endpoint network interfaces")
        return {eni["NetworkInterfaceId"]: eni.get("PrivateIpAddress") for eni in enis}

    # --- validate (no API mutation before all of this passed) -------------------------------------

    def fail(self, msg):
        self.module.fail_json(msg=msg)

    def per_service_option(self, option, interface_names):
        """An option keyed by service (short or full) -> ``{full_name: value}``; unknown keys fail."""
        value = self.params.get(option) or {}
        result = {}
        for key, item in value.items():
            full = self.names.full(key)
            if full not in interface_names:
                self.fail(
                    "%s: %r is not one of services (%s)"
                    % (option, key, ", ".join(self.names.short(n) for n in interface_names))
                )
            result[full] = item
        return result

    def wanted_dns_options(self, interface_names):
        wanted = {}
        for full, options in self.per_service_option("dns_options", interface_names).items():
            short = self.names.short(full)
            if not isinstance(options, dict):
                self.fail("dns_options.%s must be a dict with %s" % (short, " and/or ".join(DNS_OPTION_KEYS)))
            unknown = set(options) - set(DNS_OPTION_KEYS)
            if unknown:
                self.fail(
                    "dns_options.%s: unknown key(s) %s; allowed: %s"
                    % (short, ", ".join(sorted(unknown)), ", ".join(DNS_OPTION_KEYS))
                )
            boto = {}
            ip_type = options.get("dns_record_ip_type")
            if ip_type is not None:
                if ip_type not in DNS_RECORD_IP_TYPES:
                    self.fail(
                        "dns_options.%s.dns_record_ip_type must be one of %s, got %r"
                        % (short, ", ".join(DNS_RECORD_IP_TYPES), ip_type)
                    )
                boto["DnsRecordIpType"] = ip_type
            inbound = options.get("private_dns_only_for_inbound_resolver_endpoint")
            if inbound is not None:
                try:
                    boto["PrivateDnsOnlyForInboundResolverEndpoint"] = check_type_bool(inbound)
                except TypeError:
                    self.fail("dns_options.%s.private_dns_only_for_inbound_resolver_endpoint must be a bool" % short)
            if boto:
                wanted[full] = boto
        return wanted

    def check_services(self, interface_names, gateway_names):
        details = self.offered_services(interface_names + gateway_names)
        types = {}
        for detail in details:
            for service_type in detail.get("ServiceType") or []:
                types.setdefault(detail["ServiceName"], {})[service_type["ServiceType"].lower()] = detail
        for option, names, endpoint_type in (
            ("services", interface_names, "interface"),
            ("gateway_endpoints", gateway_names, "gateway"),
        ):
            unknown = [n for n in names if endpoint_type not in types.get(n, {})]
            if unknown:
                offered = sorted(self.names.short(n) for n, t in types.items() if endpoint_type in t)
                self.fail(
                    "%s: %s not offered as %s endpoint service(s) in %s. DescribeVpcEndpointServices offers: %s"
                    % (
                        option,
                        ", ".join(self.names.short(n) for n in unknown),
                        endpoint_type,
                        self.module.region,
                        ", ".join(offered),
                    )
                )
        return {name: t.get("interface") for name, t in types.items()}

    def check_subnets(self, interface_details, interface_names):
        subnet_ids = self.params["subnet_ids"]
        if len(set(subnet_ids)) != len(subnet_ids):
            self.fail("subnet_ids: %s lists a subnet twice" % ", ".join(subnet_ids))
        try:
            subnets = self.ec2.describe_subnets(aws_retry=True, SubnetIds=subnet_ids)["Subnets"]
        except is_boto3_error_code("InvalidSubnetID.NotFound") as e:
            self.fail("subnet_ids: %s" % e.response["Error"]["Message"])
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:  # pylint: disable=duplicate-except
            self.module.fail_json_aws(e, msg="Failed to describe subnets")
        zones = {}
        for subnet in subnets:
            if subnet["VpcId"] != self.vpc_id:
                self.fail("subnet_ids: %s is in %s, not in %s" % (subnet["SubnetId"], subnet["VpcId"], self.vpc_id))
            zone = subnet["AvailabilityZone"]
            if zone in zones:
                self.fail(
                    "subnet_ids: %s and %s are both in %s; an endpoint takes at most one subnet per availability "
                    "zone" % (zones[zone], subnet["SubnetId"], zone)
                )
            zones[zone] = subnet["SubnetId"]
        for name in interface_names:
            supported = (interface_details.get(name) or {}).get("AvailabilityZones")
            missing = sorted(z for z in zones if supported and z not in supported)
            if missing:
                self.fail(
                    "subnet_ids: %s is not offered in %s (subnets %s); it is offered in %s"
                    % (
                        self.names.short(name),
                        ", ".join(missing),
                        ", ".join(zones[z] for z in missing),
                        ", ".join(supported),
                    )
                )

    def check_security_groups(self):
        group_ids = self.params["security_group_ids"]
        if not group_ids:
            return
        try:
            groups = self.ec2.describe_security_groups(aws_retry=True, GroupIds=group_ids)["SecurityGroups"]
        except is_boto3_error_code("InvalidGroup.NotFound") as e:
            self.fail("security_group_ids: %s" % e.response["Error"]["Message"])
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:  # pylint: disable=duplicate-except
            self.module.fail_json_aws(e, msg="Failed to describe security groups")
        for group in groups:
            if group.get("VpcId") != self.vpc_id:
                self.fail(
                    "security_group_ids: %s is in %s, not in %s" % (group["GroupId"], group.get("VpcId"), self.vpc_id)
                )

    # --- plan ----------------------------------------------------------------------------------------

    def wanted_private_dns(self, interface_names):
        overrides = self.per_service_option("private_dns_overrides", interface_names)
        wanted = {}
        for name in interface_names:
            value = overrides.get(name, self.params["private_dns_enabled"])
            try:
                wanted[name] = check_type_bool(value)
            except TypeError:
                self.fail("private_dns_overrides.%s must be a bool" % self.names.short(name))
        return wanted

    def plan_interface(self, name, current, private_dns, dns_options, policy):
        """``(create_kwargs | None, modify_kwargs, before, after)`` for one interface service."""
        subnet_ids = self.params["subnet_ids"]
        group_ids = self.params["security_group_ids"]
        if current is None:
            create = {
                "VpcEndpointType": "Interface",
                "VpcId": self.vpc_id,
                "ServiceName": name,
                "SubnetIds": subnet_ids,
                "PrivateDnsEnabled": private_dns,
            }
            if group_ids:
                create["SecurityGroupIds"] = group_ids
            if dns_options:
                create["DnsOptions"] = dns_options
            if policy is not None:
                create["PolicyDocument"] = policy
            after = {"subnet_ids": subnet_ids, "private_dns_enabled": private_dns}
            if group_ids:
                after["security_group_ids"] = group_ids
            if dns_options:
                after["dns_options"] = dns_options
            if policy is not None:
                after["policy_document"] = json.loads(policy)
            return create, {}, {}, after
        modify, before, after = {}, {}, {}
        current_subnets = current.get("SubnetIds") or []
        if set(current_subnets) != set(subnet_ids):
            modify["AddSubnetIds"] = [s for s in subnet_ids if s not in current_subnets]
            modify["RemoveSubnetIds"] = [s for s in current_subnets if s not in subnet_ids]
            before["subnet_ids"], after["subnet_ids"] = sorted(current_subnets), sorted(subnet_ids)
        if group_ids is not None:
            current_groups = [g["GroupId"] for g in current.get("Groups") or []]
            if set(current_groups) != set(group_ids):
                modify["AddSecurityGroupIds"] = [g for g in group_ids if g not in current_groups]
                modify["RemoveSecurityGroupIds"] = [g for g in current_groups if g not in group_ids]
                before["security_group_ids"], after["security_group_ids"] = sorted(current_groups), sorted(group_ids)
        if bool(current.get("PrivateDnsEnabled")) != private_dns:
            modify["PrivateDnsEnabled"] = private_dns
            before["private_dns_enabled"], after["private_dns_enabled"] = (
                bool(current.get("PrivateDnsEnabled")),
                private_dns,
            )
        if dns_options:
            current_options = current.get("DnsOptions") or {}
            changed = {k: v for k, v in dns_options.items() if current_options.get(k) != v}
            if changed:
                modify["DnsOptions"] = changed
                before["dns_options"] = {k: current_options.get(k) for k in changed}
                after["dns_options"] = changed
        if policy is not None:
            current_policy = _parse_policy(current.get("PolicyDocument"))
            if current_policy is None or compare_policies(current_policy, json.loads(policy)):
                modify["PolicyDocument"] = policy
                before["policy_document"], after["policy_document"] = current_policy, json.loads(policy)
        return None, modify, before, after

    def plan_gateway(self, name, spec, current):
        route_tables = spec.get("route_table_ids")
        policy = spec.get("policy")
        if current is None:
            create = {"VpcEndpointType": "Gateway", "VpcId": self.vpc_id, "ServiceName": name}
            after = {}
            if route_tables is not None:
                create["RouteTableIds"] = after["route_table_ids"] = route_tables
            if policy is not None:
                create["PolicyDocument"] = policy
                after["policy_document"] = json.loads(policy)
            return create, {}, {}, after
        modify, before, after = {}, {}, {}
        current_tables = current.get("RouteTableIds") or []
        if route_tables is not None and set(current_tables) != set(route_tables):
            modify["AddRouteTableIds"] = [r for r in route_tables if r not in current_tables]
            modify["RemoveRouteTableIds"] = [r for r in current_tables if r not in route_tables]
            before["route_table_ids"], after["route_table_ids"] = sorted(current_tables), sorted(route_tables)
        if policy is not None:
            current_policy = _parse_policy(current.get("PolicyDocument"))
            if current_policy is None or compare_policies(current_policy, json.loads(policy)):
                modify["PolicyDocument"] = policy
                before["policy_document"], after["policy_document"] = current_policy, json.loads(policy)
        return None, modify, before, after

    def check_inbound_only(self, creates, modifies, private_dns, dns_options, gateways_current, gateway_names):
        """S3's inbound-only private DNS needs the service's gateway endpoint: fail before any change."""
        for name, kwargs in list(creates.items()) + list(modifies.items()):
            short = self.names.short(name)
            if name in creates:
                requested = (dns_options.get(name) or {}).get("PrivateDnsOnlyForInboundResolverEndpoint")
                # AWS turns it on by default for services with both endpoint types when private DNS is on.
                needs = private_dns[name] and (requested if requested is not None else short in ("s3", "dynamodb"))
            else:
                needs = bool((kwargs.get("DnsOptions") or {}).get("PrivateDnsOnlyForInboundResolverEndpoint"))
            if requested_true_without_private_dns(name, private_dns, dns_options):
                self.fail(
                    "dns_options.%s.private_dns_only_for_inbound_resolver_endpoint=true needs private DNS on "
                    "(private_dns_enabled / private_dns_overrides.%s)" % (short, short)
                )
            if needs and name not in gateways_current and name not in gateway_names:
                self.fail(
                    "services: the %s interface endpoint with private DNS only for inbound Resolver endpoints "
                    "needs a %s gateway endpoint in %s. Add it to gateway_endpoints, or set "
                    "dns_options.%s.private_dns_only_for_inbound_resolver_endpoint: false, or "
                    "private_dns_overrides.%s: false" % (short, short, self.vpc_id, short, short)
                )

    # --- act -------------------------------------------------------------------------------------------

    def create(self, kwargs, tags):
        kwargs = dict(kwargs, ClientToken=str(uuid.uuid4()))
        if tags:
            kwargs["TagSpecifications"] = [{"ResourceType": "vpc-endpoint", "Tags": tags_to_boto3(tags)}]
        short = self.names.short(kwargs["ServiceName"])
        endpoint = self.call(
            "Failed to create %s endpoint for %s" % (kwargs["VpcEndpointType"].lower(), short),
            "create_vpc_endpoint",
            **kwargs,
        )
        return endpoint["VpcEndpoint"]

    def modify(self, endpoint, kwargs):
        short = self.names.short(endpoint["ServiceName"])
        self.call(
            "Failed to modify endpoint %s (%s)" % (endpoint["VpcEndpointId"], short),
            "modify_vpc_endpoint",
            VpcEndpointId=endpoint["VpcEndpointId"],
            **kwargs,
        )

    def apply_tags(self, endpoints):
        """Tags on existing endpoints, batched: one CreateTags/DeleteTags per distinct change."""
        if self.params["tags"] is None:
            return {}
        to_set_groups, to_unset_groups, changes = {}, {}, {}
        for endpoint in endpoints:
            current = tags_from_boto3(endpoint.get("Tags"))
            to_set, to_unset = tag_changes(current, self.params["tags"], self.params["purge_tags"])
            if to_set or to_unset:
                changes[endpoint["VpcEndpointId"]] = (current, to_set, to_unset)
            if to_set:
                to_set_groups.setdefault(json.dumps(to_set, sort_keys=True), []).append(endpoint["VpcEndpointId"])
            if to_unset:
                to_unset_groups.setdefault(json.dumps(sorted(to_unset)), []).append(endpoint["VpcEndpointId"])
        if not self.module.check_mode:
            for key, ids in to_set_groups.items():
                self.call(
                    "Failed to tag endpoints %s" % ", ".join(ids),
                    "create_tags",
                    Resources=ids,
                    Tags=tags_to_boto3(json.loads(key)),
                )
            for key, ids in to_unset_groups.items():
                self.call(
                    "Failed to untag endpoints %s" % ", ".join(ids),
                    "delete_tags",
                    Resources=ids,
                    Tags=[{"Key": k} for k in json.loads(key)],
                )
        return changes

    def wait_for(self, endpoint_ids, gone=False):
        """Poll (one describe per round for all) until every endpoint is available, or gone."""
        endpoint_ids = set(endpoint_ids)
        deadline = time.time() + self.params["wait_timeout"]
        delay = 2
        while True:
            endpoints = self.describe_endpoints(sorted(endpoint_ids))
            states = {e["VpcEndpointId"]: e.get("State", "").lower() for e in endpoints}
            if gone:
                pending = {i: s for i, s in states.items() if s not in ("deleted",)}
            else:
                failed = {i: s for i, s in states.items() if s in ("failed", "rejected")}
                if failed:
                    self.fail("Endpoints failed: %s" % ", ".join("%s (%s)" % kv for kv in sorted(failed.items())))
                pending = {i: states.get(i, "missing") for i in endpoint_ids if states.get(i) != "available"}
            if not pending:
                return endpoints
            if time.time() + delay > deadline:
                self.fail(
                    "Timed out after %ss waiting for endpoints to be %s: %s"
                    % (
                        self.params["wait_timeout"],
                        "deleted" if gone else "available",
                        ", ".join("%s (%s)" % kv for kv in sorted(pending.items())),
                    )
                )
            time.sleep(delay)
            delay = min(delay * 2, 15)

    def delete(self, endpoints, what):
        if not endpoints:
            return
        ids = [e["VpcEndpointId"] for e in endpoints]
        result = self.call(
            "Failed to delete %s endpoints %s" % (what, ", ".join(ids)), "delete_vpc_endpoints", VpcEndpointIds=ids
        )
        unsuccessful = result.get("Unsuccessful") or []
        if unsuccessful:
            self.fail(
                "Failed to delete %s endpoints: %s"
                % (
                    what,
                    "; ".join(
                        "%s: %s" % (u.get("ResourceId"), (u.get("Error") or {}).get("Message")) for u in unsuccessful
                    ),
                )
            )
        if self.params["wait"]:
            self.wait_for(ids, gone=True)

    # --- results ---------------------------------------------------------------------------------------

    def result_of(self, endpoint, ips):
        result = snake_result(endpoint)
        result["service"] = self.names.short(endpoint["ServiceName"])
        result.setdefault("tags", {})
        result["policy_document"] = _parse_policy(endpoint.get("PolicyDocument"))
        if (endpoint.get("VpcEndpointType") or "").lower() == "interface":
            result.setdefault("dns_options", {})
            result.setdefault("dns_entries", [])
            result.setdefault("groups", [])
            result.setdefault("subnet_ids", [])
            result.setdefault("network_interface_ids", [])
            result["ip_addresses"] = [ips[i] for i in result["network_interface_ids"] if ips.get(i)]
        return result

    # --- run ---------------------------------------------------------------------------------------------

    def run(self):
        params = self.params
        state = params["state"]
        interface_names = _unique(self.names.full(s) for s in params["services"])
        gateway_specs = {}
        for spec in params["gateway_endpoints"] or []:
            gateway_specs[self.names.full(spec["service"])] = spec
        gateway_names = list(gateway_specs)

        interface_details = self.check_services(interface_names, gateway_names)
        if state == "present":
            if interface_names and not params["subnet_ids"]:
                self.fail("subnet_ids is required with state=present")
            private_dns = self.wanted_private_dns(interface_names)
            dns_options = self.wanted_dns_options(interface_names)
            if interface_names:
                self.check_subnets(interface_details, interface_names)
            self.check_security_groups()
        current = self.describe_endpoints()
        interfaces = self.live(current, "interface")
        gateways = self.live(current, "gateway")

        if state == "absent":
            return self.run_absent(interface_names, gateway_names, interfaces, gateways)
        return self.run_present(interface_names, gateway_specs, interfaces, gateways, private_dns, dns_options)

    def run_absent(self, interface_names, gateway_names, interfaces, gateways):
        doomed_interfaces = [interfaces[n] for n in interface_names if n in interfaces]
        doomed_gateways = [gateways[n] for n in gateway_names if n in gateways]
        diff = {"before": {}, "after": {}}
        for endpoint in doomed_interfaces + doomed_gateways:
            diff["before"][self.names.short(endpoint["ServiceName"]) + _kind_suffix(endpoint)] = {
                "vpc_endpoint_id": endpoint["VpcEndpointId"],
                "state": endpoint.get("State"),
            }
        changed = bool(doomed_interfaces or doomed_gateways)
        if self.module.check_mode:
            ips = self.ip_addresses(doomed_interfaces)
            results = [dict(self.result_of(e, ips), state="would be deleted") for e in doomed_interfaces]
            gw = [dict(self.result_of(e, ips), state="would be deleted") for e in doomed_gateways]
            return self.exit(changed, results, gw, diff)
        # Interface endpoints first: S3's inbound-only private DNS depends on the gateway endpoint.
        self.delete(doomed_interfaces, "interface")
        self.delete(doomed_gateways, "gateway")
        return self.exit(changed, [], [], diff)

    def run_present(self, interface_names, gateway_specs, interfaces, gateways, private_dns, dns_options):
        policy = self.params["policy"]
        tags = self.params["tags"]
        check = self.module.check_mode
        diff = {"before": {}, "after": {}}
        changed = False

        gateway_creates, gateway_modifies = {}, {}
        for name, spec in gateway_specs.items():
            create, modify, before, after = self.plan_gateway(name, spec, gateways.get(name))
            key = self.names.short(name) + " (gateway)"
            if create:
                gateway_creates[name] = create
            elif modify:
                gateway_modifies[name] = modify
            if before or after:
                diff["before"][key], diff["after"][key] = before, after
        creates, modifies = {}, {}
        for name in interface_names:
            create, modify, before, after = self.plan_interface(
                name, interfaces.get(name), private_dns[name], dns_options.get(name), policy
            )
            key = self.names.short(name)
            if create:
                creates[name] = create
            elif modify:
                modifies[name] = modify
            if before or after:
                diff["before"][key], diff["after"][key] = before, after
        self.check_inbound_only(creates, modifies, private_dns, dns_options, gateways, list(gateway_specs))

        existing = [interfaces[n] for n in interface_names if n in interfaces]
        existing += [gateways[n] for n in gateway_specs if n in gateways]
        if check:
            tag_diff = self.apply_tags(existing)
        changed = bool(gateway_creates or gateway_modifies or creates or modifies)
        if tags:
            for name in list(gateway_creates) + list(creates):
                key = self.names.short(name) + (" (gateway)" if name in gateway_creates else "")
                diff["after"].setdefault(key, {})["tags"] = tags

        if check:
            changed = changed or bool(tag_diff)
            self.add_tag_diff(diff, tag_diff, existing)
            ips = self.ip_addresses(existing)
            results = []
            for name in interface_names:
                if name in interfaces:
                    results.append(self.result_of(interfaces[name], ips))
                else:
                    results.append(self.would_be_created(name, creates[name], tags))
            gw = []
            for name in gateway_specs:
                if name in gateways:
                    gw.append(self.result_of(gateways[name], ips))
                else:
                    gw.append(self.would_be_created(name, gateway_creates[name], tags))
            return self.exit(changed, results, gw, diff)

        touched = []
        # Gateway endpoints first: an S3 interface endpoint with inbound-only private DNS needs one.
        for kwargs in gateway_creates.values():
            touched.append(self.create(kwargs, tags)["VpcEndpointId"])
        for name, kwargs in gateway_modifies.items():
            self.modify(gateways[name], kwargs)
            touched.append(gateways[name]["VpcEndpointId"])
        if touched and creates and self.params["wait"]:
            self.wait_for(touched)
        for kwargs in creates.values():
            touched.append(self.create(kwargs, tags)["VpcEndpointId"])
        for name, kwargs in modifies.items():
            self.modify(interfaces[name], kwargs)
            touched.append(interfaces[name]["VpcEndpointId"])
        tag_diff = self.apply_tags(existing)
        self.add_tag_diff(diff, tag_diff, existing)
        changed = changed or bool(tag_diff)

        if touched and self.params["wait"]:
            self.wait_for(touched)
        if changed:
            after = self.describe_endpoints()
            interfaces = self.live(after, "interface")
            gateways = self.live(after, "gateway")
        final = [interfaces[n] for n in interface_names if n in interfaces]
        final_gw = [gateways[n] for n in gateway_specs if n in gateways]
        ips = self.ip_addresses(final)
        return self.exit(
            changed, [self.result_of(e, ips) for e in final], [self.result_of(e, ips) for e in final_gw], diff
        )

    def add_tag_diff(self, diff, tag_diff, endpoints):
        by_id = {e["VpcEndpointId"]: e for e in endpoints}
        for endpoint_id, (current, to_set, to_unset) in tag_diff.items():
            endpoint = by_id[endpoint_id]
            key = self.names.short(endpoint["ServiceName"]) + _kind_suffix(endpoint)
            new = dict((k, v) for k, v in current.items() if k not in to_unset)
            new.update(to_set)
            diff["before"].setdefault(key, {})["tags"] = current
            diff["after"].setdefault(key, {})["tags"] = new

    def would_be_created(self, name, kwargs, tags):
        result = {
            "service": self.names.short(name),
            "service_name": name,
            "state": "would be created",
            "vpc_endpoint_type": kwargs["VpcEndpointType"],
            "tags": tags or {},
        }
        if kwargs["VpcEndpointType"] == "Interface":
            result.update(
                subnet_ids=kwargs["SubnetIds"],
                private_dns_enabled=kwargs["PrivateDnsEnabled"],
                dns_options={_snake_option(k): v for k, v in (kwargs.get("DnsOptions") or {}).items()},
            )
        else:
            result["route_table_ids"] = kwargs.get("RouteTableIds", [])
        if kwargs.get("PolicyDocument"):
            result["policy_document"] = json.loads(kwargs["PolicyDocument"])
        return result

    def exit(self, changed, endpoints, gateway_endpoints, diff):
        for warning in self.warnings:
            self.module.warn(warning)
        by_service = {e["service"]: e for e in endpoints}
        kwargs = dict(
            changed=changed, endpoints=endpoints, endpoints_by_service=by_service, gateway_endpoints=gateway_endpoints
        )
        if self.module._diff:
            kwargs["diff"] = diff
        self.module.exit_json(**kwargs)


def requested_true_without_private_dns(name, private_dns, dns_options):
    return (dns_options.get(name) or {}).get("PrivateDnsOnlyForInboundResolverEndpoint") is True and not private_dns[
        name
    ]


def _snake_option(key):
    return {v: k for k, v in DNS_OPTION_KEYS.items()}[key]


def _kind_suffix(endpoint):
    return " (gateway)" if (endpoint.get("VpcEndpointType") or "").lower() == "gateway" else ""


def _parse_policy(document):
    if not document:
        return None
    try:
        return json.loads(document)
    except ValueError:
        return None


def _unique(items):
    seen = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def main():
    argument_spec = dict(
        vpc_id=dict(type="str", required=True),
        services=dict(type="list", elements="str", default=[]),
        subnet_ids=dict(type="list", elements="str"),
        security_group_ids=dict(type="list", elements="str"),
        private_dns_enabled=dict(type="bool", default=True),
        private_dns_overrides=dict(type="dict"),
        dns_options=dict(type="dict"),
        policy=dict(type="json"),
        gateway_endpoints=dict(
            type="list",
            elements="dict",
            options=dict(
                service=dict(type="str", required=True),
                route_table_ids=dict(type="list", elements="str"),
                policy=dict(type="json"),
            ),
        ),
        tags=dict(type="dict", aliases=["resource_tags"]),
        purge_tags=dict(type="bool", default=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=600),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    if not module.region:
        module.fail_json(msg="region must be set (region option, AWS_REGION or a profile's region)")
    EndpointSet(module).run()


if __name__ == "__main__":
    main()
