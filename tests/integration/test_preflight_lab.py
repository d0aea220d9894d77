"""Issue #7 (preflight) on the lab: with the private path in place every host passes; each classic
mistake is caught before any change, with the diagnosis a person can act on.

Faults are made the way they happen for real: the forwarder removed from the on-prem DNS, no S3
private hosted zone (S3 resolves public), the endpoint security group losing its 443 rule.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from labtools import C, playbook, stage

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def private_path(lab, request):
    """The private path (network.yml, onprem_dns.yml), clean hosts; every fault below is put right again in the
    test that made it, so the lab is handed over to the SSM Agent module as it was found."""
    with stage(lab, request, needs=["network.yml", "onprem_dns.yml"], leaves=["network.yml", "onprem_dns.yml"]):
        yield


def test_preflight_passes_on_a_correct_private_path(lab, private_path):
    result = playbook("preflight.yml")
    assert result.rc == 0, result.stdout[-4000:]
    for host in lab.hosts:
        assert host in result.stdout  # one table row per host
    assert all(result.recap[h]["failed"] == 0 for h in lab.hosts)


def test_forwarder_missing_is_diagnosed(lab, private_path):
    assert playbook("onprem_dns.yml", extra_vars={"onprem_dns_forwarder_state": "absent"}).rc == 0
    try:
        result = playbook("preflight.yml")
        assert result.rc != 0
        assert "on-prem DNS does not forward" in result.stdout, result.stdout[-4000:]
    finally:
        assert playbook("onprem_dns.yml").rc == 0


def test_s3_public_trap_is_diagnosed(lab, private_path):
    r53 = lab.client("route53")
    zone = next(z for z in r53.list_hosted_zones()["HostedZones"] if z["Name"] == f"s3.{C.REGION}.amazonaws.com.")
    records = [r for r in r53.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]
               if r["Type"] == "A"]
    # No S3 private DNS at all (the zone was never made): S3 names resolve "public".
    r53.change_resource_record_sets(HostedZoneId=zone["Id"], ChangeBatch={
        "Changes": [{"Action": "DELETE", "ResourceRecordSet": r} for r in records]})
    r53.delete_hosted_zone(Id=zone["Id"])
    try:
        result = playbook("preflight.yml")
        assert result.rc != 0
        assert "S3 resolves public" in result.stdout, result.stdout[-4000:]
    finally:
        assert playbook("network.yml").rc == 0  # puts the records back


def test_endpoint_sg_without_443_is_diagnosed(lab, private_path):
    ec2 = lab.client("ec2")
    (group,) = ec2.describe_security_groups(Filters=[
        {"Name": "vpc-id", "Values": [C.VPC_ID]}, {"Name": "group-name", "Values": ["lab-vpc-endpoints"]}
    ])["SecurityGroups"]
    ec2.revoke_security_group_ingress(GroupId=group["GroupId"], IpPermissions=group["IpPermissions"])
    try:
        result = playbook("preflight.yml")
        assert result.rc != 0
        assert "TCP 443 blocked by the endpoint SG" in result.stdout, result.stdout[-4000:]
    finally:
        assert playbook("network.yml").rc == 0  # puts the rule back


def _no_agent_anywhere(lab):
    return all(lab.ssh(h, "dpkg-query -W amazon-ssm-agent", check=False).returncode != 0 for h in lab.hosts)


def test_clock_off_is_caught_before_any_change(lab, private_path):
    host = sorted(lab.hosts)[1]
    assert _no_agent_anywhere(lab)
    lab.fault(host, "clock", "400")
    try:
        # The SSM Agent phase starts with the preflight: it must stop before touching any host.
        result = playbook("ssm_agent.yml")
        assert result.rc != 0
        assert "clock 400 s off" in result.stdout or "clock 399 s off" in result.stdout, result.stdout[-4000:]
        assert result.recap[host]["failed"] == 1
        assert result.total_changed == 0
        assert _no_agent_anywhere(lab)
    finally:
        lab.fault(host, "clock", "0")


def test_unsupported_arch_is_caught_before_any_change(lab, private_path):
    host = sorted(lab.hosts)[-1]
    lab.fault(host, "arch", "i686")
    try:
        assert lab.ssh(host, "uname -m").stdout.strip() == "i686"
        result = playbook("ssm_agent.yml")
        assert result.rc != 0
        assert "unsupported architecture i686" in result.stdout, result.stdout[-4000:]
        assert result.recap[host]["failed"] == 1
        assert result.total_changed == 0
        assert _no_agent_anywhere(lab)
    finally:
        lab.fault(host, "arch", "native")


def _logins(lab, host) -> int:
    """Sessions sshd on the host has let in so far (this one included)."""
    out = lab.ssh(host, "journalctl -u ssh.service --no-pager -o cat | grep -c '^Accepted publickey' || true").stdout
    return int(out.strip() or 0)


def test_a_host_whose_ssh_key_changed_is_sent_nothing(lab, private_path, tmp_path):
    """The controller knows each host's key (the lab's known_hosts; host key checking is on). When a host answers
    with another key - a swapped machine, or someone in the path - the run stops for that host before it
    authenticates, so nothing is sent to it, and says why; the other hosts carry on."""
    host, *others = sorted(lab.hosts)
    ip = lab.hosts[host]
    known = C.RUN_DIR / "ssh" / "known_hosts"
    saved = known.read_text()
    before = _logins(lab, host)
    # The controller now expects another key for the host's address (the same as the host presenting another key).
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True)
    kind, blob = (tmp_path / "other.pub").read_text().split()[:2]
    kept = "".join(line for line in saved.splitlines(keepends=True) if not line.startswith(f"{ip} "))
    known.write_text(kept + f"{ip} {kind} {blob}\n")
    # An SSH master kept open by an earlier run would carry the session past the key check: start without any.
    for socket in (Path.home() / ".ansible" / "cp").glob("*"):
        socket.unlink(missing_ok=True)
    try:
        result = playbook("preflight.yml")
    finally:
        known.write_text(saved)
    output = result.stdout[-4000:]
    assert result.rc != 0, output
    assert result.recap[host]["unreachable"] == 1, output
    assert "Host key verification failed" in result.stdout, output
    assert all(result.recap[h]["unreachable"] == 0 and result.recap[h]["failed"] == 0 for h in others), output
    assert _logins(lab, host) == before + 1, "the run logged in to the host (only the counting session may)"
