"""Issue #5 on the lab: after network.yml, the on-prem DNS server asking the Resolver inbound endpoint gets
private answers for every name the agents use — in both S3 private DNS modes — and a rerun changes nothing.
Any other on-prem host asking it directly gets no answer: the endpoint's SG admits only the DNS servers.

Asserted from outside: `dig @<inbound-ip>` on booted on-prem hosts, endpoint IPs from the emulator (boto3).
"""

from __future__ import annotations

import ipaddress
import json
import urllib.request

import pytest
from labtools import C, playbook

pytestmark = pytest.mark.integration

INTERFACE_SERVICES = ("ssm", "ssmmessages", "ec2messages", "kms", "logs", "monitoring")


def calls() -> dict:
    with urllib.request.urlopen(f"{C.EMULATOR_URL}/_lab/calls", timeout=5) as resp:  # noqa: S310 - loopback
        return json.loads(resp.read())


def total(counts: dict) -> int:
    return sum(sum(actions.values()) for actions in counts.values())


def inbound_ips(lab) -> list[str]:
    r53r = lab.client("route53resolver")
    (endpoint,) = [e for e in r53r.list_resolver_endpoints()["ResolverEndpoints"] if e["Name"] == "lab-inbound"]
    return sorted(a["Ip"] for a in r53r.list_resolver_endpoint_ip_addresses(
        ResolverEndpointId=endpoint["Id"])["IpAddresses"])


def assert_private_answers(lab):
    # Asked from the on-prem DNS server: the inbound endpoint's SG lets only the DNS servers query it.
    host = lab.dns_host[0]
    ips = lab.interface_endpoints()
    vpc = ipaddress.ip_network(C.VPC_CIDR)
    for server in inbound_ips(lab):
        for svc in INTERFACE_SERVICES:
            got = lab.dig(host, server=server, name=f"{svc}.{C.REGION}.amazonaws.com")
            assert got == ips[svc][0], f"{svc} via {server}: {got} != {ips[svc][0]}"
            assert all(ipaddress.ip_address(ip) in vpc for ip in got)
        s3_ips, s3_endpoint = ips["s3"]
        regional = next(e["DnsName"] for e in s3_endpoint["DnsEntries"] if e["DnsName"].startswith("*."))
        for name in (f"s3.{C.REGION}.amazonaws.com", f"{C.SSM_AGENT_BUCKET}.s3.{C.REGION}.amazonaws.com",
                     regional.replace("*.", "bucket.", 1)):
            assert lab.dig(host, server=server, name=name) == s3_ips, f"{name} via {server}"
        other = sorted(lab.hosts)[0]
        ssm_name = f"ssm.{C.REGION}.amazonaws.com"
        assert lab.dig(other, server=server, name=ssm_name) == set(), "SG must admit only DNS servers"


@pytest.mark.parametrize("mode", ["hosted_zone", "endpoint_private_dns"])
def test_network_phase_gives_hosts_private_answers(lab, mode):
    extra = {"hybrid_s3_private_dns_mode": mode}
    try:
        first = playbook("network.yml", extra_vars=extra)
        assert first.rc == 0, first.stdout[-3000:]
        assert_private_answers(lab)
        before = calls()
        second = playbook("network.yml", extra_vars=extra)
        assert second.rc == 0 and second.changed() == 0, second.stdout[-3000:]
        after = calls()
        noop_calls = total(after) - total(before)
        print(f"network.yml no-op rerun ({mode}): {noop_calls} AWS API calls")
        assert noop_calls < 60
    finally:
        gone = playbook("network.yml", extra_vars={**extra, "hybrid_network_state": "absent"})
        assert gone.rc == 0, gone.stdout[-3000:]
