"""dns_path_diagnosis run for real (child process, as Ansible runs it) against small dnspython UDP servers on
127.0.0.x: Resolver inbound stand-ins and an on-prem DNS stand-in answering private, public, NXDOMAIN, SERVFAIL
or nothing, one scenario per verdict."""

from __future__ import annotations

import socket
import threading

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

MODULE = "dns_path_diagnosis"
REGION = "eu-west-1"
SSM = f"ssm.{REGION}.amazonaws.com"
S3 = f"s3.{REGION}.amazonaws.com"
LOGS = f"logs.{REGION}.amazonaws.com"
INBOUND = ("127.0.0.11", "127.0.0.12")
ONPREM = "127.0.0.21"
VPC = ["10.0.0.0/16"]
PRIVATE = {SSM: ["10.0.1.10", "10.0.2.10"], S3: ["10.0.1.20"], LOGS: ["10.0.1.30"]}


class DnsServer:
    """Answers A queries by ``behaviour(name)``: a list of addresses, 'nxdomain', 'servfail', 'silent'."""

    def __init__(self, ip, port, behaviour):
        self.behaviour = behaviour
        self.queries = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((ip, port))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                wire, client = self.sock.recvfrom(4096)
            except OSError:
                return
            query = dns.message.from_wire(wire)
            name = query.question[0].name.to_text().rstrip(".")
            self.queries.append(name)
            answer = self.behaviour(name)
            if answer == "silent":
                continue
            response = dns.message.make_response(query)
            response.flags |= dns.flags.RA
            if answer == "nxdomain":
                response.set_rcode(dns.rcode.NXDOMAIN)
            elif answer == "servfail":
                response.set_rcode(dns.rcode.SERVFAIL)
            else:
                response.answer.append(dns.rrset.from_text_list(name + ".", 60, "IN", "A", answer))
            self.sock.sendto(response.to_wire(), client)

    def stop(self):
        self.sock.close()


def private(name):
    return PRIVATE.get(name, "nxdomain")


def public(name):
    return [f"203.0.113.{sum(name.encode()) % 250 + 1}"]


@pytest.fixture
def hops():
    """``hops(inbound=behaviour, onprem=behaviour)`` starts the stand-ins on one free port; returns the port."""
    servers = []

    def start(inbound, onprem):
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind((INBOUND[0], 0))
        port = probe.getsockname()[1]
        probe.close()
        for ip in INBOUND:
            servers.append(DnsServer(ip, port, inbound))
        servers.append(DnsServer(ONPREM, port, onprem))
        return port

    yield start
    for server in servers:
        server.stop()


def diagnose(run_module, port, names, resolver_ips=INBOUND, control=(), check=False):
    args = {"names": names, "control_names": list(control), "resolver_ips": list(resolver_ips),
            "onprem_dns_servers": [ONPREM], "vpc_cidrs": VPC, "port": port, "timeout": 0.4, "retries": 0}
    result = run_module(MODULE, args, check=check)
    assert not result.get("failed"), result
    return {d["name"]: d for d in result["diagnosis"]}, result


def test_onprem_dns_that_does_not_forward(run_module, hops):
    port = hops(inbound=private, onprem=lambda name: "servfail")
    verdicts, result = diagnose(run_module, port, [SSM])
    assert verdicts[SSM]["code"] == "onprem_not_forwarding"
    assert verdicts[SSM]["verdict"].startswith("on-prem DNS does not forward")
    assert "127.0.0.11, 127.0.0.12" in verdicts[SSM]["hint"]
    (answers,) = result["answers"]
    assert {(h["server"], h["class"]) for h in answers["hops"]} == {
        ("127.0.0.11", "private"), ("127.0.0.12", "private"), (ONPREM, "fail")}
    assert result["controller_reaches_inbound"] is True


def test_onprem_dns_answering_public_itself_does_not_forward(run_module, hops):
    port = hops(inbound=private, onprem=public)
    verdicts, _result = diagnose(run_module, port, [SSM, S3])
    assert {v["code"] for v in verdicts.values()} == {"onprem_not_forwarding"}


def test_s3_resolving_public_through_the_inbound_endpoint(run_module, hops):
    def behaviour(name):
        return public(name) if name == S3 else private(name)

    port = hops(inbound=behaviour, onprem=behaviour)
    verdicts, _result = diagnose(run_module, port, [S3], check=True)
    assert verdicts[S3]["code"] == "s3_public"
    assert verdicts[S3]["verdict"] == "S3 resolves public: no private DNS for S3"
    assert "s3.<region>.amazonaws.com" in verdicts[S3]["hint"]


def test_service_without_private_dns(run_module, hops):
    def behaviour(name):
        return "nxdomain" if name == LOGS else private(name)

    port = hops(inbound=behaviour, onprem=behaviour)
    verdicts, _result = diagnose(run_module, port, [LOGS])
    assert verdicts[LOGS]["code"] == "no_private_dns"
    assert verdicts[LOGS]["verdict"].startswith("name has no private DNS (endpoint missing or private DNS off)")


def test_inbound_endpoint_not_answering(run_module, hops):
    # The on-prem DNS forwards to an inbound endpoint that drops the queries: it waits, the client times out.
    port = hops(inbound=lambda name: "silent", onprem=lambda name: "silent")
    verdicts, result = diagnose(run_module, port, [SSM])
    assert verdicts[SSM]["code"] == "inbound_unreachable"
    assert "check its SG allows 53 from the on-prem DNS servers" in verdicts[SSM]["verdict"]
    assert result["controller_reaches_inbound"] is False


def test_controller_not_admitted_by_the_inbound_sg_still_finds_s3_public(run_module, hops):
    # The inbound SG admits only the on-prem DNS servers; the on-prem DNS forwards (ssm answers privately).
    port = hops(inbound=lambda name: "silent", onprem=lambda name: public(name) if name == S3 else private(name))
    verdicts, _result = diagnose(run_module, port, [S3], control=[SSM])
    assert verdicts[S3]["code"] == "s3_public"


def test_controller_not_admitted_and_onprem_failing_everything_is_not_forwarding(run_module, hops):
    port = hops(inbound=lambda name: "silent", onprem=lambda name: "servfail")
    verdicts, _result = diagnose(run_module, port, [SSM, S3])
    assert {v["code"] for v in verdicts.values()} == {"onprem_not_forwarding"}


def test_onprem_answering_privately_points_at_the_host_resolver(run_module, hops):
    port = hops(inbound=private, onprem=private)
    verdicts, _result = diagnose(run_module, port, [SSM])
    assert verdicts[SSM]["code"] == "host_resolver"
    assert "/etc/resolv.conf" in verdicts[SSM]["hint"]


def test_no_inbound_endpoint_found(run_module, hops):
    port = hops(inbound=private, onprem=lambda name: "servfail")
    verdicts, _result = diagnose(run_module, port, [SSM], resolver_ips=[])
    assert verdicts[SSM]["code"] == "inbound_missing"
    assert "playbooks/network.yml" in verdicts[SSM]["hint"]


def test_result_keys_match_return_and_nothing_changes(run_module, hops, tools):
    port = hops(inbound=private, onprem=private)
    _verdicts, result = diagnose(run_module, port, [SSM], check=True)
    assert result["changed"] is False
    assert set(result) - tools.STANDARD_KEYS == tools.return_keys(MODULE)


def test_bad_cidrs_fail(run_module):
    result = run_module(MODULE, {"names": [SSM], "vpc_cidrs": ["10.0.0.0/40"]})
    assert result["failed"] and "vpc_cidrs must be CIDRs" in result["msg"]
