"""Tests of the Route 53 Resolver inbound stand-in (tests/lab/vpcside/resolver.py): every kind of
answer from hand-built snapshots, the wire format, security groups, and real UDP/TCP queries
with dnspython against the server on 127.0.0.1."""

from __future__ import annotations

import ipaddress
import socket

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import labconst
import pytest
from vpcside import resolver
from vpcside.resolver import resolve
from vpcside.state import (
    DnsEntry,
    Eni,
    HostedZone,
    IngressRule,
    InterfaceEndpoint,
    RecordSet,
    ResolverEndpoint,
    SecurityGroup,
    Snapshot,
)

R = "eu-west-1"
SSM_REGIONAL = f"vpce-0aaa1111bbbb2222c-k2l3m4n5.ssm.{R}.vpce.amazonaws.com"
S3_REGIONAL = f"vpce-0ccc3333dddd4444e-x9y8z7w6.s3.{R}.vpce.amazonaws.com"


def _ssm(private_dns: bool = True) -> InterfaceEndpoint:
    return InterfaceEndpoint(
        endpoint_id="vpce-0aaa1111bbbb2222c",
        service_name=f"com.amazonaws.{R}.ssm",
        dns_entries=[
            DnsEntry(SSM_REGIONAL),
            DnsEntry(f"vpce-0aaa1111bbbb2222c-k2l3m4n5-{R}a.ssm.{R}.vpce.amazonaws.com"),
            DnsEntry(f"vpce-0aaa1111bbbb2222c-k2l3m4n5-{R}b.ssm.{R}.vpce.amazonaws.com"),
            DnsEntry(f"ssm.{R}.amazonaws.com"),
        ],
        private_dns_enabled=private_dns,
        enis=[Eni("eni-1", "10.0.1.11", f"{R}a"), Eni("eni-2", "10.0.2.11", f"{R}b")],
        security_group_ids=["sg-endpoints"],
    )


def _s3(private_dns: bool = False) -> InterfaceEndpoint:
    return InterfaceEndpoint(
        endpoint_id="vpce-0ccc3333dddd4444e",
        service_name=f"com.amazonaws.{R}.s3",
        # AWS lists S3 interface endpoint names with a leading "*."
        dns_entries=[
            DnsEntry("*." + S3_REGIONAL),
            DnsEntry(f"*.vpce-0ccc3333dddd4444e-x9y8z7w6-{R}a.s3.{R}.vpce.amazonaws.com"),
        ],
        private_dns_enabled=private_dns,
        dns_options={"DnsRecordIpType": "ipv4", "PrivateDnsOnlyForInboundResolverEndpoint": private_dns},
        enis=[Eni("eni-3", "10.0.1.22", f"{R}a"), Eni("eni-4", "10.0.2.22", f"{R}b")],
        security_group_ids=["sg-endpoints"],
    )


def _s3_zone() -> HostedZone:
    """AWS's published closed-network S3 setup: PHZ s3.<region>.amazonaws.com, alias apex and *."""
    apex = f"s3.{R}.amazonaws.com"
    return HostedZone(
        "Z0S3",
        apex,
        [
            RecordSet(apex, "NS", ("ns-1.awsdns-00.com.",)),
            RecordSet(apex, "A", alias_target=S3_REGIONAL),
            RecordSet("*." + apex, "A", alias_target="*." + S3_REGIONAL),
        ],
    )


def _corp_zones() -> list[HostedZone]:
    return [
        HostedZone(
            "Z0CORP",
            "corp.example",
            [
                RecordSet("app.corp.example", "A", ("10.0.5.5", "10.0.5.6")),
                RecordSet("*.svc.corp.example", "A", ("10.0.6.6",)),
                RecordSet("www.corp.example", "CNAME", ("app.corp.example.",)),
                RecordSet("ssm-alias.corp.example", "A", alias_target=SSM_REGIONAL),
                RecordSet("txt.corp.example", "TXT", ('"hello"',)),
                RecordSet("dangling.corp.example", "CNAME", ("missing.corp.example.",)),
                RecordSet("loop1.corp.example", "CNAME", ("loop2.corp.example.",)),
                RecordSet("loop2.corp.example", "CNAME", ("loop1.corp.example.",)),
            ],
        ),
        HostedZone("Z0SUB", "sub.corp.example", [RecordSet("app.sub.corp.example", "A", ("10.0.7.7",))]),
    ]


def snapshot(*, s3_zone: bool = True, s3_private_dns: bool = False, ssm_private_dns: bool = True) -> Snapshot:
    return Snapshot(
        region=R,
        interface_endpoints=[_ssm(ssm_private_dns), _s3(s3_private_dns)],
        resolver_endpoints=[
            ResolverEndpoint("rslvr-in-1", "INBOUND", ["10.0.1.53", "10.0.2.53"], ["sg-resolver"]),
            ResolverEndpoint("rslvr-out-1", "OUTBOUND", ["10.0.1.99"], ["sg-resolver"]),
        ],
        security_groups={
            "sg-resolver": SecurityGroup(
                "sg-resolver",
                [
                    IngressRule("udp", 53, 53, (labconst.ONPREM_CIDR,)),
                    IngressRule("tcp", 53, 53, (f"{labconst.DNS_HOST_IP}/32",)),
                ],
            ),
            "sg-endpoints": SecurityGroup(
                "sg-endpoints", [IngressRule("tcp", 443, 443, (labconst.ONPREM_CIDR,))]
            ),
        },
        hosted_zones=([_s3_zone()] if s3_zone else []) + _corp_zones(),
    )


def ips(name: str, snap: Snapshot | None = None) -> list[str]:
    answer = resolve(snap or snapshot(), name)
    assert answer.rcode == dns.rcode.NOERROR, (name, answer)
    return sorted(answer.addresses)


# (a) private hosted zones associated with the VPC


def test_phz_a_record_and_most_specific_zone_wins() -> None:
    assert ips("app.corp.example") == ["10.0.5.5", "10.0.5.6"]
    assert ips("APP.Corp.Example.") == ["10.0.5.5", "10.0.5.6"]  # case and trailing dot do not matter
    assert ips("app.sub.corp.example") == ["10.0.7.7"]
    # sub.corp.example is its own zone: a name missing there is NXDOMAIN even if corp.example had it
    assert resolve(snapshot(), "other.sub.corp.example").rcode == dns.rcode.NXDOMAIN


def test_phz_wildcard_missing_name_and_other_types() -> None:
    assert ips("api.svc.corp.example") == ["10.0.6.6"]
    assert ips("a.b.svc.corp.example") == ["10.0.6.6"]  # Route 53 wildcards match deeper names too
    assert resolve(snapshot(), "nothing.corp.example").rcode == dns.rcode.NXDOMAIN
    txt = resolve(snapshot(), "txt.corp.example")
    assert (txt.rcode, txt.addresses) == (dns.rcode.NOERROR, [])


def test_phz_cname_is_followed_and_shown() -> None:
    answer = resolve(snapshot(), "www.corp.example")
    assert answer.cnames == [("www.corp.example", "app.corp.example")]
    assert sorted(answer.addresses) == ["10.0.5.5", "10.0.5.6"]
    assert resolve(snapshot(), "dangling.corp.example").rcode == dns.rcode.NXDOMAIN
    assert resolve(snapshot(), "loop1.corp.example").rcode == dns.rcode.SERVFAIL


def test_phz_alias_to_endpoint_names() -> None:
    assert ips("ssm-alias.corp.example") == ["10.0.1.11", "10.0.2.11"]
    # S3 closed-network setup: apex (path-style) and any bucket (virtual-hosted) go to the S3 ENIs
    assert ips(f"s3.{R}.amazonaws.com") == ["10.0.1.22", "10.0.2.22"]
    assert ips(f"{labconst.SSM_AGENT_BUCKET}.s3.{R}.amazonaws.com") == ["10.0.1.22", "10.0.2.22"]
    answer = resolve(snapshot(), f"s3.{R}.amazonaws.com")
    assert answer.cnames == [], "an alias answers with A records only, no CNAME"


# (b) endpoint DNS names


def test_endpoint_regional_and_zonal_names() -> None:
    assert ips(SSM_REGIONAL) == ["10.0.1.11", "10.0.2.11"]
    assert ips(f"vpce-0aaa1111bbbb2222c-k2l3m4n5-{R}a.ssm.{R}.vpce.amazonaws.com") == ["10.0.1.11"]
    assert ips(f"vpce-0aaa1111bbbb2222c-k2l3m4n5-{R}b.ssm.{R}.vpce.amazonaws.com") == ["10.0.2.11"]


def test_s3_endpoint_names_cover_bucket_subdomains() -> None:
    assert ips("bucket." + S3_REGIONAL) == ["10.0.1.22", "10.0.2.22"]
    assert ips(S3_REGIONAL) == ["10.0.1.22", "10.0.2.22"]
    assert ips(f"bucket.vpce-0ccc3333dddd4444e-x9y8z7w6-{R}a.s3.{R}.vpce.amazonaws.com") == ["10.0.1.22"]


# (c) private DNS of endpoints


def test_private_dns_answers_service_name_only_when_enabled() -> None:
    assert ips(f"ssm.{R}.amazonaws.com") == ["10.0.1.11", "10.0.2.11"]
    public = ips(f"ssm.{R}.amazonaws.com", snapshot(ssm_private_dns=False))
    assert len(public) == 1 and ipaddress.ip_address(public[0]) in labconst.PUBLIC_TRAP_NET
    # a name below the managed zone is not in it
    assert resolve(snapshot(), f"x.ssm.{R}.amazonaws.com").rcode == dns.rcode.NXDOMAIN


def test_s3_private_dns_only_for_inbound_resolver() -> None:
    snap = snapshot(s3_zone=False, s3_private_dns=True)
    assert snap.interface_endpoints[1].dns_options["PrivateDnsOnlyForInboundResolverEndpoint"] is True
    assert ips(f"s3.{R}.amazonaws.com", snap) == ["10.0.1.22", "10.0.2.22"]
    assert ips(f"{labconst.CW_AGENT_BUCKET}.s3.{R}.amazonaws.com", snap) == ["10.0.1.22", "10.0.2.22"]


# (d) the public trap and (e) NXDOMAIN


def test_s3_resolves_public_without_zone_or_private_dns() -> None:
    snap = snapshot(s3_zone=False, s3_private_dns=False)
    apex = ips(f"s3.{R}.amazonaws.com", snap)
    bucket = ips(f"{labconst.SSM_AGENT_BUCKET}.s3.{R}.amazonaws.com", snap)
    for answer in (apex, bucket):
        assert len(answer) == 1 and ipaddress.ip_address(answer[0]) in labconst.PUBLIC_TRAP_NET
    assert ips(f"s3.{R}.amazonaws.com", snap) == apex, "public answers are stable per name"
    assert ips("logs.eu-west-1.amazonaws.com", snap) == ips("logs.eu-west-1.amazonaws.com", snapshot())


def test_public_trap_addresses_are_usable_hosts() -> None:
    seen = {resolver.public_trap_address(f"n{i}.amazonaws.com") for i in range(2000)}
    net = labconst.PUBLIC_TRAP_NET
    assert all(ipaddress.ip_address(a) in net for a in seen)
    assert str(net.network_address) not in seen and str(net.broadcast_address) not in seen
    assert len(seen) > 200  # spread over the network, not one address for everything


def test_other_names_are_nxdomain() -> None:
    for name in ("example.org", "amazonaws.com.evil.example", "host1.onprem.lan"):
        assert resolve(snapshot(), name).rcode == dns.rcode.NXDOMAIN, name


# wire format


def _query(name: str, rdtype: str = "A") -> dns.message.Message:
    return dns.message.make_query(name, rdtype)


def test_response_flags_ttl_and_aaaa() -> None:
    response = resolver.build_response(snapshot(), _query(f"ssm.{R}.amazonaws.com"))
    assert response.flags & dns.flags.RA and response.flags & dns.flags.QR
    assert response.rcode() == dns.rcode.NOERROR
    (rrset,) = response.answer
    assert rrset.ttl == 60 and sorted(r.address for r in rrset) == ["10.0.1.11", "10.0.2.11"]

    aaaa = resolver.build_response(snapshot(), _query(f"ssm.{R}.amazonaws.com", "AAAA"))
    assert (aaaa.rcode(), aaaa.answer) == (dns.rcode.NOERROR, [])
    missing = resolver.build_response(snapshot(), _query("nope.example.org", "AAAA"))
    assert missing.rcode() == dns.rcode.NXDOMAIN


def test_response_with_cname_chain() -> None:
    response = resolver.build_response(snapshot(), _query("www.corp.example"))
    cname, a = response.answer
    assert cname.rdtype == dns.rdatatype.CNAME and a.name.to_text() == "app.corp.example."
    assert sorted(r.address for r in a) == ["10.0.5.5", "10.0.5.6"]


# security groups


def test_dns_security_groups() -> None:
    from vpcside.policy import dns_allowed

    snap = snapshot()
    assert dns_allowed(snap, "10.0.1.53", "172.16.10.99", "udp")
    assert not dns_allowed(snap, "10.0.1.53", "172.16.10.99", "tcp")  # TCP only from the DNS host
    assert dns_allowed(snap, "10.0.2.53", labconst.DNS_HOST_IP, "tcp")
    assert not dns_allowed(snap, "10.0.1.53", "192.168.1.1", "udp")
    assert not dns_allowed(snap, "10.0.1.99", "172.16.10.99", "udp"), "outbound endpoints answer nothing"


# real queries over the wire


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server():
    """The DNS server on 127.0.0.1:<free port>, as inbound resolver IP 127.0.0.1 with security
    groups admitting UDP 53 from loopback only, not TCP."""
    port = _free_port()
    snap = snapshot()
    snap.resolver_endpoints.append(ResolverEndpoint("rslvr-in-lo", "INBOUND", ["127.0.0.1"], ["sg-lo"]))
    snap.security_groups["sg-lo"] = SecurityGroup("sg-lo", [IngressRule("udp", 53, 53, ("127.0.0.0/8",))])
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", port))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("127.0.0.1", port))
    state = {"snap": snap}
    srv = resolver.DnsServer("127.0.0.1", udp, tcp, lambda: state["snap"])
    srv.start()
    yield port, state
    srv.stop()


def test_real_udp_query(server) -> None:
    port, _state = server
    response = dns.query.udp(_query(f"bucket.{S3_REGIONAL}"), "127.0.0.1", port=port, timeout=3)
    assert response.rcode() == dns.rcode.NOERROR
    assert sorted(r.address for r in response.answer[0]) == ["10.0.1.22", "10.0.2.22"]
    nx = dns.query.udp(_query("nothing.example.org"), "127.0.0.1", port=port, timeout=3)
    assert nx.rcode() == dns.rcode.NXDOMAIN


def test_security_groups_on_the_wire(server) -> None:
    port, state = server
    with pytest.raises((ConnectionError, EOFError, dns.exception.DNSException, OSError)):
        dns.query.tcp(_query(f"ssm.{R}.amazonaws.com"), "127.0.0.1", port=port, timeout=2)
    # now allow TCP too: the very same query is answered
    state["snap"].security_groups["sg-lo"].ingress.append(IngressRule("tcp", 53, 53, ("127.0.0.1/32",)))
    response = dns.query.tcp(_query(f"ssm.{R}.amazonaws.com"), "127.0.0.1", port=port, timeout=3)
    assert sorted(r.address for r in response.answer[0]) == ["10.0.1.11", "10.0.2.11"]
    # and revoke UDP: no answer at all, as with a security group dropping the packet
    state["snap"].security_groups["sg-lo"].ingress[:] = []
    with pytest.raises(dns.exception.Timeout):
        dns.query.udp(_query(f"ssm.{R}.amazonaws.com"), "127.0.0.1", port=port, timeout=0.5)
