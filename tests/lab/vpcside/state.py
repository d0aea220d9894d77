"""Snapshot of the emulator's VPC state that the VPC side serves: interface and gateway endpoints,
Resolver endpoints, security groups, and private hosted zones associated with the VPC.

`read_snapshot()` is the only function here that talks to the emulator; everything that decides
an answer (DNS, security groups, Host rewrites) takes a `Snapshot`, so it is testable without a
network from hand-built snapshots.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import boto3
import labconst
from botocore.config import Config

log = logging.getLogger(__name__)

INTERNAL_HEADER = "X-Hybrid-Lab-Internal"
# Endpoints in these states have no ENIs serving traffic (moto keeps deleted ones, state "deleted").
_GONE_STATES = {"deleted", "deleting", "failed", "rejected", "expired"}


@dataclass(frozen=True)
class Eni:
    eni_id: str
    ip: str
    az: str
    subnet_id: str = ""


@dataclass(frozen=True)
class DnsEntry:
    dns_name: str  # lower case, no trailing dot; may start with "*." (S3 endpoints)
    hosted_zone_id: str = ""


@dataclass
class InterfaceEndpoint:
    endpoint_id: str
    service_name: str  # com.amazonaws.<region>.<svc>
    dns_entries: list[DnsEntry] = field(default_factory=list)
    private_dns_enabled: bool = False
    dns_options: dict = field(default_factory=dict)
    enis: list[Eni] = field(default_factory=list)
    security_group_ids: list[str] = field(default_factory=list)
    state: str = "available"

    @property
    def service(self) -> str:
        """Short service name: `ssm`, `s3`, `ec2messages`, ..."""
        return service_short_name(self.service_name)

    @property
    def ips(self) -> list[str]:
        return [eni.ip for eni in self.enis]


@dataclass
class GatewayEndpoint:
    endpoint_id: str
    service_name: str
    state: str = "available"


@dataclass
class ResolverEndpoint:
    endpoint_id: str
    direction: str  # INBOUND | OUTBOUND
    ips: list[str] = field(default_factory=list)
    security_group_ids: list[str] = field(default_factory=list)
    status: str = "OPERATIONAL"


@dataclass(frozen=True)
class IngressRule:
    protocol: str  # "tcp", "udp", "icmp" or "-1" (all)
    from_port: int | None  # None with protocol "-1"
    to_port: int | None
    cidrs: tuple[str, ...]  # IPv4 and IPv6 CIDRs; source security groups never match on-prem clients


@dataclass
class SecurityGroup:
    group_id: str
    ingress: list[IngressRule] = field(default_factory=list)


@dataclass(frozen=True)
class RecordSet:
    name: str  # lower case, no trailing dot; wildcard as "*.zone"
    rtype: str
    values: tuple[str, ...] = ()
    alias_target: str | None = None  # alias DNSName, lower case, no trailing dot


@dataclass
class HostedZone:
    zone_id: str
    name: str  # lower case, no trailing dot
    records: list[RecordSet] = field(default_factory=list)


@dataclass
class Snapshot:
    region: str = labconst.REGION
    vpc_id: str = labconst.VPC_ID
    interface_endpoints: list[InterfaceEndpoint] = field(default_factory=list)
    gateway_endpoints: list[GatewayEndpoint] = field(default_factory=list)
    resolver_endpoints: list[ResolverEndpoint] = field(default_factory=list)
    security_groups: dict[str, SecurityGroup] = field(default_factory=dict)
    hosted_zones: list[HostedZone] = field(default_factory=list)
    taken_at: float = 0.0

    def endpoint_for_ip(self, ip: str) -> InterfaceEndpoint | None:
        for endpoint in self.interface_endpoints:
            if ip in endpoint.ips:
                return endpoint
        return None

    def inbound_resolver_for_ip(self, ip: str) -> ResolverEndpoint | None:
        for resolver in self.inbound_resolvers():
            if ip in resolver.ips:
                return resolver
        return None

    def inbound_resolvers(self) -> list[ResolverEndpoint]:
        return [r for r in self.resolver_endpoints if r.direction.upper() == "INBOUND"]

    def endpoint_ips(self) -> set[str]:
        return {ip for endpoint in self.interface_endpoints for ip in endpoint.ips}

    def inbound_resolver_ips(self) -> set[str]:
        return {ip for resolver in self.inbound_resolvers() for ip in resolver.ips}


def service_short_name(service_name: str) -> str:
    """`com.amazonaws.eu-west-1.ssm` → `ssm`; anything else is returned as its last label."""
    return service_name.rsplit(".", 1)[-1]


def normalise_name(name: str) -> str:
    # Route 53 returns "\052" for a leading "*" in record names.
    return name.replace("\\052", "*").rstrip(".").lower()


def _add_internal_header(request, **_kwargs) -> None:
    # The emulator neither counts nor faults calls carrying this header: the lab's own polling
    # must not show up in benchmarks or trip injected throttling.
    request.headers[INTERNAL_HEADER] = "1"


def make_session_clients(endpoint_url: str, region: str) -> dict:
    session = boto3.session.Session(
        aws_access_key_id=labconst.ACCESS_KEY,
        aws_secret_access_key=labconst.SECRET_KEY,
        region_name=region,
    )
    # Short timeouts and no retries: the follower polls again in a second anyway.
    config = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1})
    clients = {}
    for service in ("ec2", "route53resolver", "route53"):
        client = session.client(service, endpoint_url=endpoint_url, config=config)
        client.meta.events.register("before-sign", _add_internal_header)
        clients[service] = client
    return clients


def _paginate(client, operation: str, key: str, **kwargs) -> list:
    items: list = []
    for page in client.get_paginator(operation).paginate(**kwargs):
        items.extend(page.get(key, []))
    return items


def _rule_from_permission(perm: dict) -> IngressRule:
    protocol = str(perm.get("IpProtocol", "-1")).lower()
    protocol = {"6": "tcp", "17": "udp", "1": "icmp"}.get(protocol, protocol)
    cidrs = tuple(r["CidrIp"] for r in perm.get("IpRanges", []) if "CidrIp" in r) + tuple(
        r["CidrIpv6"] for r in perm.get("Ipv6Ranges", []) if "CidrIpv6" in r
    )
    from_port = perm.get("FromPort")
    to_port = perm.get("ToPort")
    return IngressRule(
        protocol=protocol,
        from_port=None if from_port is None else int(from_port),
        to_port=None if to_port is None else int(to_port),
        cidrs=cidrs,
    )


def read_snapshot(
    endpoint_url: str | None = None,
    region: str | None = None,
    vpc_id: str | None = None,
    clients: dict | None = None,
) -> Snapshot:
    """Read the VPC-side state of `vpc_id` from the emulator (defaults from `labconst`)."""
    region = region or labconst.REGION
    vpc_id = vpc_id or labconst.VPC_ID
    clients = clients or make_session_clients(endpoint_url or labconst.EMULATOR_URL, region)
    ec2, r53r, r53 = clients["ec2"], clients["route53resolver"], clients["route53"]
    snap = Snapshot(region=region, vpc_id=vpc_id, taken_at=time.time())
    vpc_filter = [{"Name": "vpc-id", "Values": [vpc_id]}]

    enis = {
        eni["NetworkInterfaceId"]: eni
        for eni in _paginate(ec2, "describe_network_interfaces", "NetworkInterfaces")
    }
    for ep in _paginate(ec2, "describe_vpc_endpoints", "VpcEndpoints", Filters=vpc_filter):
        state = str(ep.get("State", "available")).lower()
        if ep.get("VpcId") != vpc_id or state in _GONE_STATES:
            continue
        kind = str(ep.get("VpcEndpointType", "Gateway")).lower()
        if kind == "gateway":
            snap.gateway_endpoints.append(GatewayEndpoint(ep["VpcEndpointId"], ep["ServiceName"], state))
            continue
        if kind != "interface":
            continue  # GatewayLoadBalancer / Resource / ServiceNetwork endpoints serve nothing here
        endpoint_enis = []
        for eni_id in ep.get("NetworkInterfaceIds", []):
            eni = enis.get(eni_id)
            if eni is None or not eni.get("PrivateIpAddress"):
                log.debug("endpoint %s: ENI %s not (yet) described", ep["VpcEndpointId"], eni_id)
                continue
            endpoint_enis.append(
                Eni(eni_id, eni["PrivateIpAddress"], eni.get("AvailabilityZone", ""), eni.get("SubnetId", ""))
            )
        snap.interface_endpoints.append(
            InterfaceEndpoint(
                endpoint_id=ep["VpcEndpointId"],
                service_name=ep["ServiceName"],
                dns_entries=[
                    DnsEntry(normalise_name(d["DnsName"]), d.get("HostedZoneId", ""))
                    for d in ep.get("DnsEntries", [])
                    if d.get("DnsName")
                ],
                private_dns_enabled=bool(ep.get("PrivateDnsEnabled", False)),
                dns_options=dict(ep.get("DnsOptions") or {}),
                enis=endpoint_enis,
                security_group_ids=[g["GroupId"] for g in ep.get("Groups", [])],
                state=state,
            )
        )

    for res in _paginate(r53r, "list_resolver_endpoints", "ResolverEndpoints"):
        if res.get("HostVPCId") != vpc_id or res.get("Status") == "DELETING":
            continue
        ips = _paginate(
            r53r, "list_resolver_endpoint_ip_addresses", "IpAddresses", ResolverEndpointId=res["Id"]
        )
        snap.resolver_endpoints.append(
            ResolverEndpoint(
                endpoint_id=res["Id"],
                direction=res.get("Direction", ""),
                ips=[a["Ip"] for a in ips if a.get("Ip") and a.get("Status") != "DELETING"],
                security_group_ids=list(res.get("SecurityGroupIds", [])),
                status=res.get("Status", ""),
            )
        )

    for sg in _paginate(ec2, "describe_security_groups", "SecurityGroups", Filters=vpc_filter):
        snap.security_groups[sg["GroupId"]] = SecurityGroup(
            sg["GroupId"], [_rule_from_permission(p) for p in sg.get("IpPermissions", [])]
        )

    summaries = r53.list_hosted_zones_by_vpc(VPCId=vpc_id, VPCRegion=region).get("HostedZoneSummaries", [])
    for summary in summaries:
        zone_id = summary["HostedZoneId"].rsplit("/", 1)[-1]
        zone = HostedZone(zone_id, normalise_name(summary["Name"]))
        for rrset in _paginate(r53, "list_resource_record_sets", "ResourceRecordSets", HostedZoneId=zone_id):
            alias = rrset.get("AliasTarget")
            zone.records.append(
                RecordSet(
                    name=normalise_name(rrset["Name"]),
                    rtype=rrset["Type"],
                    values=tuple(r["Value"] for r in rrset.get("ResourceRecords", [])),
                    alias_target=normalise_name(alias["DNSName"]) if alias else None,
                )
            )
        snap.hosted_zones.append(zone)
    return snap
