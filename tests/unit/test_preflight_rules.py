"""The preflight's combining rules (plugins/module_utils/hybrid_preflight.py): host problems and hints, the DNS
path verdicts, and how a host's problems are refined by the controller's diagnosis."""

from __future__ import annotations

import pytest
from ansible_collections.hybrid.onboard.plugins.module_utils import hybrid_preflight as rules

VPC = ["10.0.0.0/16"]
SSM = "ssm.eu-west-1.amazonaws.com"
S3 = "s3.eu-west-1.amazonaws.com"
BUCKET = "amazon-ssm-eu-west-1.s3.eu-west-1.amazonaws.com"
VPCE = "bucket.vpce-0a1b2c3d4e5f60718-abcdefgh.s3.eu-west-1.vpce.amazonaws.com"


def hop(server, role, status, addresses=()):
    return {"server": server, "role": role, "status": status, "addresses": list(addresses)}


INBOUND_PRIVATE = [hop("10.0.1.53", "inbound", "answer", ["10.0.1.10"]),
                   hop("10.0.2.53", "inbound", "answer", ["10.0.1.10"])]
INBOUND_SILENT = [hop("10.0.1.53", "inbound", "timeout"), hop("10.0.2.53", "inbound", "timeout")]


def test_addresses_split_by_vpc_cidrs():
    assert rules.split_addresses(["10.0.1.1", "203.0.113.5", "::1", "nonsense"], VPC) == (
        ["10.0.1.1"], ["203.0.113.5", "::1", "nonsense"])
    with pytest.raises(ValueError):
        rules.split_addresses([], ["10.0.0.0/33"])


@pytest.mark.parametrize(("name", "s3"), [(S3, True), (BUCKET, True), (VPCE, True), (SSM, False),
                                          ("s3.example.com", False)])
def test_s3_names(name, s3):
    assert rules.is_s3_name(name) is s3


def test_public_answers_give_the_s3_or_forwarding_hint():
    s3 = rules.dns_problem(BUCKET, outside=["203.0.113.4"])
    assert s3["code"] == "dns_public_s3" and "S3 resolves public: no private DNS for S3" in s3["problem"]
    other = rules.dns_problem(SSM, outside=["203.0.113.4"])
    assert other["code"] == "dns_public" and "does not forward" in other["problem"]
    assert "playbooks/onprem_dns.yml" in other["hint"]


def test_tcp_rules():
    blocked = rules.tcp_problem(SSM, 443, [("10.0.1.10", "timeout"), ("10.0.2.10", "refused")])
    assert blocked["code"] == "tcp_blocked"
    assert blocked["problem"].startswith("TCP 443 blocked by the endpoint SG (or routing)")
    assert "security group" in blocked["hint"]
    assert rules.tcp_problem(SSM, 443, [("10.0.1.10", "unreachable")])["code"] == "tcp_no_route"


def test_tls_rules():
    untrusted = rules.tls_problem(SSM, 443, "verify", "self-signed")
    assert untrusted["problem"].startswith("TLS: certificate not trusted (ca_bundle?) or wrong name")
    assert "endpoint_preflight_ca_bundle" in untrusted["hint"]
    assert rules.tls_problem(SSM, 443, "closed", "EOF")["code"] == "tcp_blocked"


@pytest.mark.parametrize(("offset", "code", "warned"), [(400, "clock_skew", False), (-301, "clock_skew", False),
                                                        (120, None, True), (-30, None, False), (None, None, False)])
def test_clock_rules(offset, code, warned):
    found = rules.clock_problem(offset)
    assert (found or {}).get("code") == code
    if found:
        assert found["problem"] == (
            f"clock {abs(offset)} s off: fix NTP before registering (SigV4 fails above 5 minutes)")
    assert bool(rules.clock_warning(offset)) is warned


def test_platform_rules():
    info = rules.platform_info({"ID": "debian", "VERSION_ID": "12"}, "i686")
    assert [p["problem"] for p in rules.platform_problems(info)] == ["unsupported architecture i686"]
    info = rules.platform_info({"ID": "gentoo"}, "x86_64")
    assert [p["code"] for p in rules.platform_problems(info)] == ["os_unsupported"]


def test_disk_rule():
    assert rules.disk_problem("/tmp", 500, 200) is None
    assert rules.disk_problem("/tmp", 100, 200)["code"] == "disk_low"


# --- DNS path verdicts ---------------------------------------------------------------------------------------

CASES = [
    # (name, inbound hops, on-prem hops, forwarding evidence from other names, expected code)
    (SSM, INBOUND_PRIVATE, [hop("172.16.10.53", "onprem", "servfail")], False, "onprem_not_forwarding"),
    (SSM, INBOUND_PRIVATE, [hop("172.16.10.53", "onprem", "answer", ["203.0.113.1"])], False, "onprem_not_forwarding"),
    (SSM, INBOUND_PRIVATE, [hop("172.16.10.53", "onprem", "answer", ["10.0.1.10"])], False, "host_resolver"),
    (S3, [hop("10.0.1.53", "inbound", "answer", ["203.0.113.9"])],
     [hop("172.16.10.53", "onprem", "answer", ["203.0.113.9"])], True, "s3_public"),
    (SSM, [hop("10.0.1.53", "inbound", "answer", ["203.0.113.9"])],
     [hop("172.16.10.53", "onprem", "answer", ["203.0.113.9"])], True, "no_private_dns"),
    (SSM, [hop("10.0.1.53", "inbound", "nxdomain")], [hop("172.16.10.53", "onprem", "nxdomain")], True,
     "no_private_dns"),
    (SSM, INBOUND_SILENT, [hop("172.16.10.53", "onprem", "timeout")], False, "inbound_unreachable"),
    (S3, INBOUND_SILENT, [hop("172.16.10.53", "onprem", "answer", ["203.0.113.9"])], True, "s3_public"),
    (SSM, INBOUND_SILENT, [hop("172.16.10.53", "onprem", "servfail")], False, "onprem_not_forwarding"),
    (SSM, INBOUND_SILENT, [hop("172.16.10.53", "onprem", "timeout")], True, "onprem_dns_down"),
    (SSM, [], [hop("172.16.10.53", "onprem", "servfail")], False, "inbound_missing"),
]


@pytest.mark.parametrize(("name", "inbound", "onprem", "forwarding", "code"), CASES)
def test_dns_path_verdicts(name, inbound, onprem, forwarding, code):
    verdict = rules.diagnose_name(name, inbound + onprem, VPC, forwarding_works=forwarding)
    assert verdict["code"] == code
    assert verdict["verdict"].startswith(rules.VERDICTS[code])
    assert verdict["hint"] and "{" not in verdict["hint"]


def test_one_of_two_onprem_servers_not_forwarding_is_named():
    hops = INBOUND_PRIVATE + [hop("172.16.10.53", "onprem", "answer", ["10.0.1.10"]),
                              hop("172.16.20.53", "onprem", "servfail")]
    verdict = rules.diagnose_name(SSM, hops, VPC)
    assert verdict["code"] == "onprem_not_forwarding" and "172.16.20.53" in verdict["verdict"]
    assert "172.16.10.53" not in verdict["verdict"]


def test_diagnose_uses_control_names_as_forwarding_evidence():
    s3 = {"name": S3, "hops": INBOUND_SILENT + [hop("172.16.10.53", "onprem", "answer", ["203.0.113.9"])]}
    control = {"name": SSM, "hops": INBOUND_SILENT + [hop("172.16.10.53", "onprem", "answer", ["10.0.1.10"])]}
    assert rules.diagnose([s3], VPC)[0]["code"] == "onprem_not_forwarding"
    assert rules.diagnose([s3], VPC, [control])[0]["code"] == "s3_public"


# --- host problems refined by the diagnosis -------------------------------------------------------------------


def probe_result(*problems, **extra):
    result = {"ok": not problems, "checks": [], "problems": list(problems), "platform": {}, "clock_offset": None}
    result.update(extra)
    return result


def test_host_message_lists_problems_with_hints_and_the_dns_path_verdict():
    result = probe_result(rules.dns_problem(S3, outside=["203.0.113.9"]), rules.clock_problem(400))
    diagnosis = [{"name": S3, "code": "s3_public", "verdict": rules.VERDICTS["s3_public"], "hint": "make a zone"}]
    message = rules.host_message("host1", result, diagnosis)
    lines = message.splitlines()
    assert lines[0] == "host1: 2 preflight problem(s), nothing was changed:"
    assert "[DNS path: S3 resolves public: no private DNS for S3] -> make a zone" in lines[1]
    assert lines[2].startswith("- clock 400 s off") and "synchronise" in lines[2]


def test_failed_dns_names_are_collected_over_hosts():
    one = probe_result(rules.dns_problem(S3, outside=["203.0.113.9"]), rules.clock_problem(400))
    two = probe_result(rules.dns_problem(SSM, error="NXDOMAIN"), rules.dns_problem(S3, outside=["203.0.113.9"]))
    assert rules.failed_dns_names([one, two, {}]) == sorted([SSM, S3])
