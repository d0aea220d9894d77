"""Route 53 Resolver inbound endpoint stand-in: answers A queries from a `Snapshot` the way the real
Resolver answers queries that arrive at an inbound endpoint, and serves them over UDP and TCP.

Order of answers (as AWS resolves for a VPC):
  1. Private zones: private hosted zones associated with the VPC, plus the zones AWS manages for
     interface endpoints with private DNS enabled. The most specific zone containing the name wins
     and is authoritative: a name inside it without a record is NXDOMAIN (no fall-through to public).
  2. Endpoint DNS names (public names under vpce.amazonaws.com that return private ENI IPs).
  3. Any other name under amazonaws.com: a "public" address from `labconst.PUBLIC_TRAP_NET`, which
     nothing in the lab routes; this is how "S3 resolves public" shows.
  4. Anything else: NXDOMAIN.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import socket
import socketserver
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import labconst

from vpcside.state import HostedZone, InterfaceEndpoint, RecordSet, Snapshot

log = logging.getLogger(__name__)

TTL = 60
MAX_CHAIN = 8  # CNAME/alias hops before giving up (SERVFAIL), as resolvers bound loops
VPCE_SUFFIX = "vpce.amazonaws.com"
PUBLIC_SUFFIX = "amazonaws.com"


@dataclass
class Answer:
    rcode: int = dns.rcode.NOERROR
    cnames: list[tuple[str, str]] = field(default_factory=list)  # (owner, target), in chain order
    addresses: list[str] = field(default_factory=list)
    source: str = ""  # which rule answered: zone:<name>, endpoint:<id>, public-trap, nxdomain


def _in_domain(name: str, domain: str) -> bool:
    return name == domain or name.endswith("." + domain)


def public_trap_address(name: str, net: ipaddress.IPv4Network = labconst.PUBLIC_TRAP_NET) -> str:
    """A stable "public" address for `name` inside `net`, never the network or broadcast address."""
    digest = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big")
    usable = net.num_addresses - 2
    return str(net.network_address + 1 + digest % usable)


def _private_dns_zones(endpoint: InterfaceEndpoint, region: str) -> list[HostedZone]:
    """The zones AWS manages for an endpoint with private DNS enabled."""
    if not endpoint.private_dns_enabled or not endpoint.ips:
        return []
    service = endpoint.service
    apex = f"{service}.{region}.amazonaws.com"
    records = [RecordSet(apex, "A", tuple(endpoint.ips))]
    if service == "s3":
        # S3 private DNS covers the apex (path-style) and every bucket (virtual-hosted). With
        # PrivateDnsOnlyForInboundResolverEndpoint=true only queries through an inbound endpoint
        # get these answers, and those are the only queries this stand-in sees; with false, all
        # queries do. So the answers here are the same either way.
        records.append(RecordSet(f"*.{apex}", "A", tuple(endpoint.ips)))
    return [HostedZone(f"private-dns:{endpoint.endpoint_id}", apex, records)]


def _zone_lookup(zone: HostedZone, name: str) -> list[RecordSet] | None:
    """Records owning `name` in `zone` (exact name first, else the closest wildcard); None if none."""
    exact = [r for r in zone.records if r.name == name]
    if exact:
        return exact
    labels = name.split(".")
    # Closest encloser first: for a.b.zone try *.b.zone, then *.zone.
    for i in range(1, len(labels)):
        candidate = ".".join(["*"] + labels[i:])
        if not _in_domain(candidate[2:], zone.name):
            break
        wild = [r for r in zone.records if r.name == candidate]
        if wild:
            return wild
    return None


def _endpoint_name_lookup(snapshot: Snapshot, name: str) -> tuple[InterfaceEndpoint, list[str]] | None:
    """ENI IPs for an endpoint DNS name: regional → all ENIs, zonal → the ENI in that AZ; for S3
    also any name below them (`bucket.vpce-…`, `accesspoint.vpce-…`)."""
    if not _in_domain(name, VPCE_SUFFIX):
        return None
    for endpoint in snapshot.interface_endpoints:
        azs = {eni.az for eni in endpoint.enis if eni.az}
        for entry in endpoint.dns_entries:
            base = entry.dns_name[2:] if entry.dns_name.startswith("*.") else entry.dns_name
            if not _in_domain(base, VPCE_SUFFIX):
                continue  # a private DNS name listed among the entries; handled by the zones
            subdomains_ok = endpoint.service == "s3" or entry.dns_name.startswith("*.")
            if not (name == base or (subdomains_ok and name.endswith("." + base))):
                continue
            first_label = base.split(".", 1)[0]
            zonal = next((az for az in azs if first_label.endswith("-" + az)), None)
            if zonal:
                return endpoint, [eni.ip for eni in endpoint.enis if eni.az == zonal]
            return endpoint, list(endpoint.ips)
    return None


def resolve(snapshot: Snapshot, qname: str, _depth: int = 0) -> Answer:
    """Resolve `qname` to IPv4 addresses as the Resolver would for an inbound-endpoint query."""
    name = qname.rstrip(".").lower()
    if _depth > MAX_CHAIN:
        return Answer(rcode=dns.rcode.SERVFAIL, source="loop")
    zones = list(snapshot.hosted_zones)
    for endpoint in snapshot.interface_endpoints:
        zones.extend(_private_dns_zones(endpoint, snapshot.region))
    matching = [z for z in zones if _in_domain(name, z.name)]
    if matching:
        zone = max(matching, key=lambda z: len(z.name.split(".")))
        records = _zone_lookup(zone, name)
        if records is None:
            return Answer(rcode=dns.rcode.NXDOMAIN, source=f"zone:{zone.name}")
        answer = Answer(source=f"zone:{zone.name}")
        for record in records:
            if record.rtype == "A" and record.alias_target:
                target = (
                    record.alias_target[2:] if record.alias_target.startswith("*.") else record.alias_target
                )
                return _follow(snapshot, answer, None, target, _depth)
            if record.rtype == "A":
                answer.addresses.extend(record.values)
            elif record.rtype == "CNAME" and record.values:
                return _follow(snapshot, answer, name, record.values[0].rstrip(".").lower(), _depth)
        return answer  # NOERROR; no A at this name means an empty answer, not NXDOMAIN
    found = _endpoint_name_lookup(snapshot, name)
    if found is not None:
        endpoint, ips = found
        return Answer(addresses=ips, source=f"endpoint:{endpoint.endpoint_id}")
    if _in_domain(name, PUBLIC_SUFFIX):
        return Answer(addresses=[public_trap_address(name)], source="public-trap")
    return Answer(rcode=dns.rcode.NXDOMAIN, source="nxdomain")


def _follow(snapshot: Snapshot, answer: Answer, cname_owner: str | None, target: str, depth: int) -> Answer:
    """Continue at `target`: an alias (owner None) contributes only the target's addresses; a CNAME
    shows as a CNAME record in front of them, as a recursive resolver returns it."""
    rest = resolve(snapshot, target, depth + 1)
    if cname_owner is not None:
        answer.cnames.append((cname_owner, target))
    answer.cnames.extend(rest.cnames)
    answer.addresses.extend(rest.addresses)
    if rest.rcode != dns.rcode.NOERROR:
        # An alias to a missing target is an empty NOERROR in Route 53; a dangling CNAME is NXDOMAIN.
        answer.rcode = rest.rcode if cname_owner is not None else dns.rcode.NOERROR
    answer.source = f"{answer.source}->{rest.source}"
    return answer


def build_response(snapshot: Snapshot, query: dns.message.Message) -> dns.message.Message:
    """The wire response to `query`: A answered from `resolve`, AAAA empty where A exists."""
    response = dns.message.make_response(query, recursion_available=True)
    if len(query.question) != 1 or query.opcode() != dns.opcode.QUERY:
        response.set_rcode(dns.rcode.NOTIMP if query.opcode() != dns.opcode.QUERY else dns.rcode.FORMERR)
        return response
    question = query.question[0]
    qname = question.name.to_text(omit_final_dot=True)
    answer = resolve(snapshot, qname)
    response.set_rcode(answer.rcode)
    if question.rdclass != dns.rdataclass.IN:
        response.set_rcode(dns.rcode.REFUSED)
        return response
    owner = question.name
    for cname_owner, target in answer.cnames:
        rrset = dns.rrset.from_text(cname_owner + ".", TTL, "IN", "CNAME", target + ".")
        response.answer.append(rrset)
        owner = dns.name.from_text(target)
    if question.rdtype == dns.rdatatype.A and answer.addresses:
        response.answer.append(dns.rrset.from_text_list(owner, TTL, "IN", "A", sorted(set(answer.addresses))))
    # AAAA and other types: NOERROR (the name exists) with no data, or the A query's rcode.
    return response


class _UDPHandler(socketserver.BaseRequestHandler):
    server: DnsUDPServer

    def handle(self) -> None:
        data, sock = self.request
        reply = self.server.owner.handle_wire(data, self.client_address[0], "udp", max_size=512)
        if reply is not None:
            sock.sendto(reply, self.client_address)


class _TCPHandler(socketserver.BaseRequestHandler):
    server: DnsTCPServer

    def handle(self) -> None:
        conn: socket.socket = self.request
        conn.settimeout(10)
        client = self.client_address[0]
        if not self.server.owner.allowed(client, "tcp"):
            return  # closing at once; real AWS drops the SYN (see DnsServer.allowed)
        try:
            while True:
                header = _recv_exact(conn, 2)
                if header is None:
                    return
                data = _recv_exact(conn, struct.unpack("!H", header)[0])
                if data is None:
                    return
                reply = self.server.owner.handle_wire(data, client, "tcp", max_size=65535, checked=True)
                if reply is None:
                    return
                conn.sendall(struct.pack("!H", len(reply)) + reply)
        except (OSError, TimeoutError):
            return


def _recv_exact(conn: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


class DnsUDPServer(socketserver.ThreadingMixIn, socketserver.UDPServer):
    daemon_threads = True

    def __init__(self, sock: socket.socket, owner: DnsServer):
        super().__init__(sock.getsockname(), _UDPHandler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock  # already bound, possibly inside another network namespace
        self.owner = owner


class DnsTCPServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True

    def __init__(self, sock: socket.socket, owner: DnsServer):
        super().__init__(sock.getsockname(), _TCPHandler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.socket.listen(64)
        self.owner = owner


class DnsServer:
    """DNS on one inbound resolver IP, over a bound UDP socket and a listening TCP socket that the
    caller created (in whatever network namespace). `get_snapshot` returns the current snapshot;
    `sg_check` is False in tests that talk to 127.0.0.1 without a snapshot entry for it."""

    def __init__(
        self,
        local_ip: str,
        udp_sock: socket.socket,
        tcp_sock: socket.socket,
        get_snapshot: Callable[[], Snapshot],
        sg_check: bool = True,
    ):
        self.local_ip = local_ip
        self.get_snapshot = get_snapshot
        self.sg_check = sg_check
        self._servers = [DnsUDPServer(udp_sock, self), DnsTCPServer(tcp_sock, self)]
        self._threads: list[threading.Thread] = []

    def allowed(self, client_ip: str, protocol: str) -> bool:
        """Security groups of the inbound endpoint decide. A refused UDP query gets no answer (as in
        AWS); a refused TCP connection is closed at once, where AWS would silently drop it."""
        if not self.sg_check:
            return True
        from vpcside.policy import dns_allowed

        ok = dns_allowed(self.get_snapshot(), self.local_ip, client_ip, protocol)
        if not ok:
            log.info("dns %s %s from %s: not allowed by security groups", self.local_ip, protocol, client_ip)
        return ok

    def handle_wire(
        self, data: bytes, client_ip: str, protocol: str, max_size: int, checked: bool = False
    ) -> bytes | None:
        if not checked and not self.allowed(client_ip, protocol):
            return None
        try:
            query = dns.message.from_wire(data)
        except Exception as exc:  # malformed packets are dropped, as resolvers do
            log.debug("dns %s: malformed query from %s: %s", self.local_ip, client_ip, exc)
            return None
        response = build_response(self.get_snapshot(), query)
        if query.question:
            log.debug(
                "dns %s %s %s -> %s",
                client_ip,
                dns.rdatatype.to_text(query.question[0].rdtype),
                query.question[0].name,
                dns.rcode.to_text(response.rcode()),
            )
        try:
            return response.to_wire(max_size=max_size)
        except dns.exception.TooBig:
            response.flags |= dns.flags.TC
            response.answer = []
            return response.to_wire()

    def start(self) -> None:
        for server in self._servers:
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.2},
                name=f"dns-{self.local_ip}-{server.socket_type}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=2)
