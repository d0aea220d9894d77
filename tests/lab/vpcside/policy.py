"""Security-group decisions for traffic arriving at VPC-side addresses, as AWS makes them: a packet to
an ENI is admitted when any security group attached to the ENI has an ingress rule matching its
protocol, destination port and source address.

Rules that name a source security group or prefix list never match here: on-prem clients are
not members of any security group, and prefix lists name AWS services, not on-prem networks.
"""

from __future__ import annotations

import ipaddress

from vpcside.state import IngressRule, Snapshot


def rule_allows(rule: IngressRule, protocol: str, port: int, client_ip: str) -> bool:
    if rule.protocol not in ("-1", "all", protocol):
        return False
    if rule.protocol not in ("-1", "all"):
        low = rule.from_port if rule.from_port is not None else 0
        high = rule.to_port if rule.to_port is not None else 65535
        if low == -1 and high == -1:  # icmp-style "all ports"
            low, high = 0, 65535
        if not low <= port <= high:
            return False
    address = ipaddress.ip_address(client_ip)
    for cidr in rule.cidrs:
        network = ipaddress.ip_network(cidr, strict=False)
        if network.version == address.version and address in network:
            return True
    return False


def groups_allow(snapshot: Snapshot, group_ids: list[str], protocol: str, port: int, client_ip: str) -> bool:
    """True when one of `group_ids` admits `protocol`/`port` from `client_ip`. An ENI without any
    group admits nothing (AWS always attaches at least the default group, which the snapshot
    then lists)."""
    for group_id in group_ids:
        group = snapshot.security_groups.get(group_id)
        if group is None:
            continue
        if any(rule_allows(rule, protocol, port, client_ip) for rule in group.ingress):
            return True
    return False


def https_allowed(snapshot: Snapshot, local_ip: str, client_ip: str, port: int = 443) -> bool:
    """May `client_ip` open TCP 443 on the interface endpoint ENI `local_ip`? False when `local_ip`
    is no endpoint ENI at all (nothing listens there in AWS either)."""
    endpoint = snapshot.endpoint_for_ip(local_ip)
    if endpoint is None:
        return False
    return groups_allow(snapshot, endpoint.security_group_ids, "tcp", port, client_ip)


def dns_allowed(snapshot: Snapshot, local_ip: str, client_ip: str, protocol: str, port: int = 53) -> bool:
    """May `client_ip` send DNS over `protocol` ("udp"/"tcp") to the inbound resolver IP `local_ip`?"""
    resolver = snapshot.inbound_resolver_for_ip(local_ip)
    if resolver is None:
        return False
    return groups_allow(snapshot, resolver.security_group_ids, protocol, port, client_ip)
