"""EC2 fidelity for interface VPC endpoints (and a check of Route 53 Resolver endpoints).

moto 5.2.5 creates interface endpoints with one made-up DNS name, ENIs with random 10.x addresses
outside the subnet, ignores DnsOptions / IpAddressType and private-DNS changes on modify, and
validates nothing. The lab's resolver stand-in answers from exactly these fields, so they must look
like AWS's:

- DnsEntries: regional ``vpce-<id>-<8 random>.<svc>.<region>.vpce.amazonaws.com``, one zonal
  ``vpce-<id>-<8 random>-<az>.…`` per subnet, and with private DNS the service's own names
  (``ssm.<region>.amazonaws.com``; for S3 ``*.s3.…`` style names, wildcard vpce names too).
- One requester-managed ENI per subnet, address taken from the subnet's own pool.
- DnsOptions (DnsRecordIpType, PrivateDnsOnlyForInboundResolverEndpoint) stored and returned.
- ModifyVpcEndpoint: subnets (ENIs follow), security groups, PrivateDnsEnabled, DnsOptions, policy.
- AWS's validation errors: InvalidServiceName, DuplicateSubnetsInSameZone, the S3
  "must have a Gateway endpoint" rule, private DNS needing VPC DNS attributes, and conflicting
  private DNS in one VPC.

moto's Route 53 Resolver already takes inbound endpoint IPs from the subnets' pools, checks them
against the subnet CIDR and requires at least two, so nothing is patched there (tests prove it).
"""

from __future__ import annotations

import hashlib
import logging
import random
import string
from typing import Any

from moto.ec2.exceptions import EC2ClientError, InvalidServiceName
from moto.ec2.models import EC2Backend
from moto.ec2.models.vpcs import VPCEndPoint
from moto.ec2.responses import EC2Response
from moto.ec2.utils import random_vpc_ep_id

log = logging.getLogger(__name__)

_installed = False

# Services offered as both Gateway and Interface endpoints: the only ones that accept
# PrivateDnsOnlyForInboundResolverEndpoint (AWS docs, "Private DNS for S3 interface endpoints").
_GATEWAY_AND_INTERFACE = {"s3", "dynamodb"}
_DNS_RECORD_IP_TYPES = {"ipv4", "dualstack", "ipv6", "service-defined"}
_ALNUM = string.ascii_lowercase + string.digits


class InvalidParameter(EC2ClientError):
    def __init__(self, message: str) -> None:
        super().__init__("InvalidParameter", message)


class InvalidParameterValue(EC2ClientError):
    def __init__(self, message: str) -> None:
        super().__init__("InvalidParameterValue", message)


class DuplicateSubnetsInSameZone(EC2ClientError):
    def __init__(self, subnet_id: str) -> None:
        super().__init__(
            "DuplicateSubnetsInSameZone",
            f"Found another VPC endpoint subnet in the availability zone of {subnet_id}. VPC endpoint "
            "subnets should be in different availability zones supported by the VPC endpoint service.",
        )


def _service_suffix(service_name: str) -> str:
    """'com.amazonaws.eu-west-1.ssm' -> 'ssm'."""
    parts = service_name.split(".")
    return ".".join(parts[3:]) if len(parts) > 3 and parts[0] == "com" else service_name


def _zone_id(seed: str) -> str:
    """A stable Route 53-style hosted zone id (AWS uses one fixed vpce zone id per region)."""
    return "Z" + hashlib.sha256(seed.encode()).hexdigest().upper()[:13]


def _endpoint_dns_entries(endpoint: VPCEndPoint, region: str, zones: list[str]) -> list[dict[str, str]]:
    svc = _service_suffix(endpoint.service_name)
    wildcard = "*." if svc == "s3" else ""  # S3 interface names take the bucket as a further label
    base = f"{svc}.{region}.vpce.amazonaws.com"
    vpce_zone = _zone_id(f"vpce/{region}")
    entries = [
        {"DnsName": f"{wildcard}{endpoint.id}-{endpoint.dns_suffix}.{base}", "HostedZoneId": vpce_zone}
    ]
    entries += [
        {"DnsName": f"{wildcard}{endpoint.id}-{endpoint.dns_suffix}-{zone}.{base}", "HostedZoneId": vpce_zone}
        for zone in zones
    ]
    if endpoint.private_dns_enabled:
        private_zone = _zone_id(f"private/{endpoint.id}")
        names = [f"{svc}.{region}.amazonaws.com"]
        if svc == "s3":
            names.append(f"*.s3.{region}.amazonaws.com")
        entries += [{"DnsName": name, "HostedZoneId": private_zone} for name in names]
    return entries


def _private_dns_names(service: dict[str, Any]) -> set[str]:
    names = {service.get("PrivateDnsName")} | {
        d.get("PrivateDnsName") for d in service.get("PrivateDnsNames", [])
    }
    return {n for n in names if n}


# --- backend ----------------------------------------------------------------------------------


def _find_service(backend: EC2Backend, service_name: str, endpoint_type: str) -> dict[str, Any]:
    services = backend._collect_default_endpoint_services(backend.account_id, backend.region_name)
    custom = [c.to_dict() for c in getattr(backend, "configurations", {}).values()]
    matches = [s for s in services + custom if s["ServiceName"] == service_name]
    if not matches:
        raise InvalidServiceName(service_name)
    typed = [
        s for s in matches if any(t["ServiceType"].lower() == endpoint_type.lower() for t in s["ServiceType"])
    ]
    if not typed:
        raise InvalidParameter(
            f"The Vpc Endpoint Service '{service_name}' does not support {endpoint_type} endpoints."
        )
    return typed[0]


def _check_subnets(
    backend: EC2Backend, vpc_id: str, subnet_ids: list[str], service: dict[str, Any]
) -> list[Any]:
    subnets, seen_zones = [], set()
    for subnet_id in subnet_ids:
        subnet = backend.get_subnet(subnet_id)
        if subnet.vpc_id != vpc_id:
            raise InvalidParameter(f"The subnet {subnet_id} does not belong to the VPC {vpc_id}.")
        if subnet.availability_zone in seen_zones:
            raise DuplicateSubnetsInSameZone(subnet_id)
        zones = service.get("AvailabilityZones") or []
        if zones and subnet.availability_zone not in zones:
            raise InvalidParameter(
                f"The VPC endpoint service {service['ServiceName']} does not support the availability "
                f"zone of the subnet: {subnet_id}."
            )
        seen_zones.add(subnet.availability_zone)
        subnets.append(subnet)
    return subnets


def _normalise_dns_options(
    backend: EC2Backend,
    vpc_id: str,
    service_name: str,
    private_dns: bool,
    requested: dict[str, Any] | None,
    current: dict[str, Any] | None = None,
) -> dict[str, Any]:
    svc = _service_suffix(service_name)
    options = dict(current or {"DnsRecordIpType": "ipv4"})
    requested = requested or {}
    if "DnsRecordIpType" in requested and requested["DnsRecordIpType"] is not None:
        if requested["DnsRecordIpType"] not in _DNS_RECORD_IP_TYPES:
            raise InvalidParameterValue(f"Invalid DnsRecordIpType: {requested['DnsRecordIpType']}")
        options["DnsRecordIpType"] = requested["DnsRecordIpType"]
    only_inbound = requested.get("PrivateDnsOnlyForInboundResolverEndpoint")
    if only_inbound is not None and svc not in _GATEWAY_AND_INTERFACE:
        raise InvalidParameter(
            "PrivateDnsOnlyForInboundResolverEndpoint is only supported for services that support both "
            f"Gateway and Interface endpoints; {service_name} does not."
        )
    if svc in _GATEWAY_AND_INTERFACE:
        if only_inbound is None:
            # AWS's default for S3 with private DNS is "only for inbound Resolver endpoint" = true;
            # that is why a VPC without the S3 gateway endpoint fails unless the caller sets false.
            only_inbound = options.get("PrivateDnsOnlyForInboundResolverEndpoint", private_dns)
        if not private_dns:
            only_inbound = False
        if only_inbound and not _has_gateway_endpoint(backend, vpc_id, service_name):
            raise InvalidParameter(
                f"To set PrivateDnsOnlyForInboundResolverEndpoint to true, the VPC {vpc_id} must have a "
                "Gateway endpoint for the service."
            )
        options["PrivateDnsOnlyForInboundResolverEndpoint"] = bool(only_inbound)
    return options


def _has_gateway_endpoint(backend: EC2Backend, vpc_id: str, service_name: str) -> bool:
    return any(
        e.vpc_id == vpc_id
        and e.service_name == service_name
        and (e.vpc_endpoint_type or "Gateway").lower() == "gateway"
        and e.state != "deleted"
        for e in backend.vpc_end_points.values()
    )


def _check_private_dns(
    backend: EC2Backend, vpc_id: str, service: dict[str, Any], endpoint_id: str | None
) -> None:
    vpc = backend.get_vpc(vpc_id)
    if not (vpc.enable_dns_support and vpc.enable_dns_hostnames):
        raise InvalidParameter(
            "Enabling private DNS requires both enableDnsSupport and enableDnsHostnames VPC attributes set "
            f"to true for {vpc_id}"
        )
    names = _private_dns_names(service)
    for other in backend.vpc_end_points.values():
        if (
            other.id != endpoint_id
            and other.vpc_id == vpc_id
            and other.state != "deleted"
            and (other.vpc_endpoint_type or "").lower() == "interface"
            and other.private_dns_enabled
            and other.service_name == service["ServiceName"]
        ):
            name = sorted(names)[0] if names else service["ServiceName"]
            raise InvalidParameter(
                f"private-dns-enabled cannot be set because there is already a conflicting DNS domain for "
                f"{name} in the VPC {vpc_id}"
            )


def _create_eni(backend: EC2Backend, endpoint: VPCEndPoint, subnet: Any) -> str:
    ip = subnet.get_available_subnet_ip(endpoint)
    eni = backend.create_network_interface(
        subnet,
        ip,
        group_ids=endpoint.security_group_ids or None,
        description=f"VPC Endpoint Interface {endpoint.id}",
    )
    eni.interface_type = "vpc_endpoint"
    eni.requester_managed = True
    eni.requester_id = "727180483921"  # AWS's own account, as real endpoint ENIs show
    return eni.id


def _delete_eni(backend: EC2Backend, eni_id: str) -> None:
    eni = backend.enis.pop(eni_id, None)
    if eni is not None and eni.subnet is not None and eni.private_ip_address:
        eni.subnet.del_subnet_ip(eni.private_ip_address)


def _refresh(backend: EC2Backend, endpoint: VPCEndPoint) -> None:
    zones = [backend.get_subnet(s).availability_zone for s in endpoint.subnet_ids or []]
    endpoint.dns_entries = _endpoint_dns_entries(endpoint, backend.region_name, zones)


def create_vpc_endpoint(
    self: EC2Backend,
    vpc_id: str,
    service_name: str,
    endpoint_type: str | None,
    policy_document: str | None,
    route_table_ids: list[str],
    subnet_ids: list[str] | None = None,
    network_interface_ids: list[str] | None = None,
    dns_entries: Any = None,
    client_token: str | None = None,
    security_group_ids: list[str] | None = None,
    tags: dict[str, str] | None = None,
    private_dns_enabled: bool | None = None,
    dns_options: dict[str, Any] | None = None,
    ip_address_type: str | None = None,
) -> VPCEndPoint:
    endpoint_type = endpoint_type or "Gateway"
    if endpoint_type.lower() != "interface":
        # Gateway (and other) endpoints: moto's behaviour is right, but the service must exist.
        self.get_vpc(vpc_id)
        _find_service(self, service_name, endpoint_type)
        endpoint = _original["create_vpc_endpoint"](
            self,
            vpc_id,
            service_name,
            endpoint_type,
            policy_document,
            route_table_ids,
            subnet_ids,
            network_interface_ids,
            None,
            client_token,
            security_group_ids,
            tags,
            False,
        )
        endpoint.dns_options = None
        endpoint.ip_address_type = None
        endpoint.dns_entries = []
        return endpoint

    self.get_vpc(vpc_id)
    service = _find_service(self, service_name, "Interface")
    subnets = _check_subnets(self, vpc_id, subnet_ids or [], service)
    for group_id in security_group_ids or []:
        if self.get_security_group_from_id(group_id) is None:
            raise EC2ClientError(
                "InvalidSecurityGroupId.NotFound", f"The security group '{group_id}' does not exist"
            )
    private_dns = True if private_dns_enabled is None else bool(private_dns_enabled)
    if private_dns:
        _check_private_dns(self, vpc_id, service, None)
    options = _normalise_dns_options(self, vpc_id, service_name, private_dns, dns_options)

    endpoint = VPCEndPoint(
        self,
        random_vpc_ep_id(),
        vpc_id,
        service_name,
        "Interface",
        policy_document,
        [],
        [s.id for s in subnets],
        [],
        dns_entries=[],
        client_token=client_token,
        security_group_ids=list(security_group_ids or []),
        tags=tags,
        private_dns_enabled=private_dns,
    )
    if not endpoint.security_group_ids:
        default_group = self.get_default_security_group(vpc_id)
        if default_group is not None:
            endpoint.security_group_ids = [default_group.id]
    endpoint.dns_suffix = "".join(random.choice(_ALNUM) for _i in range(8))
    endpoint.dns_options = options
    endpoint.ip_address_type = ip_address_type or "ipv4"
    endpoint.requester_managed = False
    endpoint.network_interface_ids = [_create_eni(self, endpoint, s) for s in subnets]
    _refresh(self, endpoint)
    self.vpc_end_points[endpoint.id] = endpoint
    log.info("created interface endpoint %s for %s in %s", endpoint.id, service_name, vpc_id)
    return endpoint


def modify_vpc_endpoint(
    self: EC2Backend,
    vpc_id: str,
    policy_doc: str | None,
    add_subnets: list[str] | None,
    remove_subnets: list[str] | None,
    remove_route_tables: list[str] | None,
    add_route_tables: list[str] | None,
    add_security_groups: list[str] | None,
    remove_security_groups: list[str] | None,
    private_dns_enabled: bool | None = None,
    dns_options: dict[str, Any] | None = None,
    reset_policy: bool = False,
    ip_address_type: str | None = None,
) -> None:
    # moto names the endpoint id parameter vpc_id; keep its signature.
    endpoint = self.get_vpc_end_point(vpc_id)
    if (endpoint.vpc_endpoint_type or "").lower() != "interface":
        _original["modify_vpc_endpoint"](
            self,
            vpc_id,
            policy_doc,
            add_subnets,
            remove_subnets,
            remove_route_tables,
            add_route_tables,
            add_security_groups,
            remove_security_groups,
        )
        if reset_policy:
            endpoint.policy_document = VPCEndPoint.DEFAULT_POLICY_JSON
        return

    service = _find_service(self, endpoint.service_name, "Interface")
    remove = set(remove_subnets or [])
    kept = [s for s in endpoint.subnet_ids or [] if s not in remove]
    added = [s for s in add_subnets or [] if s not in kept]
    new_subnets = _check_subnets(self, endpoint.vpc_id, kept + added, service)
    private_dns = endpoint.private_dns_enabled if private_dns_enabled is None else bool(private_dns_enabled)
    if private_dns and not endpoint.private_dns_enabled:
        _check_private_dns(self, endpoint.vpc_id, service, endpoint.id)
    options = _normalise_dns_options(
        self, endpoint.vpc_id, endpoint.service_name, private_dns, dns_options, endpoint.dns_options
    )
    for group_id in add_security_groups or []:
        if self.get_security_group_from_id(group_id) is None:
            raise EC2ClientError(
                "InvalidSecurityGroupId.NotFound", f"The security group '{group_id}' does not exist"
            )

    # Validation passed: apply. ENIs follow the subnets, one per subnet.
    eni_by_subnet = {self.enis[e].subnet.id: e for e in endpoint.network_interface_ids if e in self.enis}
    for subnet_id in remove:
        if subnet_id in eni_by_subnet:
            _delete_eni(self, eni_by_subnet.pop(subnet_id))
    endpoint.subnet_ids = [s.id for s in new_subnets]
    if add_security_groups or remove_security_groups:
        endpoint.modify(None, None, None, None, None, add_security_groups, remove_security_groups)
        for eni_id in eni_by_subnet.values():
            eni = self.enis[eni_id]
            eni._group_set = [
                g for g in (self.get_security_group_from_id(i) for i in endpoint.security_group_ids) if g
            ]
    for subnet in new_subnets:
        if subnet.id not in eni_by_subnet:
            eni_by_subnet[subnet.id] = _create_eni(self, endpoint, subnet)
    endpoint.network_interface_ids = [eni_by_subnet[s.id] for s in new_subnets]
    if policy_doc:
        endpoint.policy_document = policy_doc
    if reset_policy:
        endpoint.policy_document = VPCEndPoint.DEFAULT_POLICY_JSON
    if ip_address_type:
        endpoint.ip_address_type = ip_address_type
    endpoint.private_dns_enabled = private_dns
    endpoint.dns_options = options
    _refresh(self, endpoint)


def delete_vpc_endpoints(self: EC2Backend, vpce_ids: list[str] | None = None) -> None:
    for vpce_id in vpce_ids or []:
        endpoint = self.vpc_end_points.get(vpce_id)
        if endpoint is not None and (endpoint.vpc_endpoint_type or "").lower() == "interface":
            for eni_id in endpoint.network_interface_ids:
                _delete_eni(self, eni_id)
            endpoint.network_interface_ids = []
    _original["delete_vpc_endpoints"](self, vpce_ids)


# --- responses (parse what moto's handlers drop) ----------------------------------------------


def _resp_create_vpc_endpoint(self: EC2Response) -> Any:
    from moto.core.responses import ActionResult
    from moto.ec2.utils import add_tag_specification

    endpoint = self.ec2_backend.create_vpc_endpoint(
        vpc_id=self._get_param("VpcId"),
        service_name=self._get_param("ServiceName"),
        endpoint_type=self._get_param("VpcEndpointType"),
        policy_document=self._get_param("PolicyDocument"),
        route_table_ids=self._get_param("RouteTableIds", []),
        subnet_ids=self._get_param("SubnetIds", []),
        client_token=self._get_param("ClientToken"),
        security_group_ids=self._get_param("SecurityGroupIds", []),
        tags=add_tag_specification(self._get_param("TagSpecifications", [])),
        private_dns_enabled=self._get_param("PrivateDnsEnabled"),
        dns_options=self._get_param("DnsOptions"),
        ip_address_type=self._get_param("IpAddressType"),
    )
    return ActionResult({"VpcEndpoint": endpoint, "ClientToken": self._get_param("ClientToken")})


def _resp_modify_vpc_endpoint(self: EC2Response) -> Any:
    from moto.core.responses import ActionResult

    self.ec2_backend.modify_vpc_endpoint(
        vpc_id=self._get_param("VpcEndpointId"),
        policy_doc=self._get_param("PolicyDocument"),
        add_subnets=self._get_param("AddSubnetIds", []),
        remove_subnets=self._get_param("RemoveSubnetIds", []),
        remove_route_tables=self._get_param("RemoveRouteTableIds", []),
        add_route_tables=self._get_param("AddRouteTableIds", []),
        add_security_groups=self._get_param("AddSecurityGroupIds", []),
        remove_security_groups=self._get_param("RemoveSecurityGroupIds", []),
        private_dns_enabled=self._get_param("PrivateDnsEnabled"),
        dns_options=self._get_param("DnsOptions"),
        reset_policy=bool(self._get_param("ResetPolicy", False)),
        ip_address_type=self._get_param("IpAddressType"),
    )
    return ActionResult({"Return": True})


def _endpoint_filter_value(self: VPCEndPoint, filter_name: str, method_name: str | None = None) -> Any:
    simple = {
        "vpc-endpoint-id": self.id,
        "vpc-id": self.vpc_id,
        "service-name": self.service_name,
        "vpc-endpoint-type": self.vpc_endpoint_type,
        "vpc-endpoint-state": self.state,
        "ip-address-type": getattr(self, "ip_address_type", None),
    }
    if filter_name in simple:
        return simple[filter_name]
    return _original["endpoint_filter_value"](self, filter_name, method_name)


_original: dict[str, Any] = {}


def install() -> None:
    """Patch moto's EC2 backend and responses in-process. Idempotent."""
    global _installed
    if _installed:
        return
    _original["create_vpc_endpoint"] = EC2Backend.create_vpc_endpoint
    _original["modify_vpc_endpoint"] = EC2Backend.modify_vpc_endpoint
    _original["delete_vpc_endpoints"] = EC2Backend.delete_vpc_endpoints
    _original["endpoint_filter_value"] = VPCEndPoint.get_filter_value
    EC2Backend.create_vpc_endpoint = create_vpc_endpoint
    EC2Backend.modify_vpc_endpoint = modify_vpc_endpoint
    EC2Backend.delete_vpc_endpoints = delete_vpc_endpoints
    EC2Response.create_vpc_endpoint = _resp_create_vpc_endpoint
    EC2Response.modify_vpc_endpoint = _resp_modify_vpc_endpoint
    VPCEndPoint.get_filter_value = _endpoint_filter_value
    # Defaults so endpoints created before install (or Gateway ones) serialise cleanly.
    VPCEndPoint.dns_options = None
    VPCEndPoint.ip_address_type = None
    VPCEndPoint.dns_suffix = ""
    VPCEndPoint.requester_managed = False
    import json

    VPCEndPoint.DEFAULT_POLICY_JSON = json.dumps(VPCEndPoint.DEFAULT_POLICY)
    _installed = True
    log.debug("ec2_ext installed")
