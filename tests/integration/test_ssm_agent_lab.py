"""Issue #7 (SSM Agent) on the lab: from clean hosts, onprem_dns.yml -> preflight.yml -> ssm_agent.yml brings every
host Online in DescribeInstanceInformation with its own IP and hostname; reruns change nothing and make no new
mi- ids; forced re-registration leaves exactly one mi- per host; the activation is rotated when it runs out; a
tampered package is refused with nothing installed; an interrupted dpkg run is finished; a host whose cable is cut
fails alone and a rerun completes it. The activation code never shows, even at -vvv.

Asserted from outside: boto3 on the emulator, dpkg/systemctl/Vault files over SSH.
"""

from __future__ import annotations

import json
import re

import pytest
from labtools import C, playbook, stage, wait_until

pytestmark = pytest.mark.integration

PARAMETER = "/hybrid-onboard/lab/activation"


def activation(lab) -> dict:
    value = lab.client("ssm").get_parameter(Name=PARAMETER, WithDecryption=True)["Parameter"]["Value"]
    return json.loads(value)


def all_online(lab) -> bool:
    online = {n["IPAddress"] for n in lab.nodes() if n["PingStatus"] == "Online"}
    return set(lab.hosts.values()) <= online


def purge_agent(lab, host, keep_vault=True):
    extra = "" if keep_vault else "; rm -rf /var/lib/amazon"
    lab.ssh(host, f"dpkg --purge amazon-ssm-agent >/dev/null; rm -rf /var/cache/hybrid-onboard{extra}")


@pytest.fixture(scope="module")
def site(lab, request):
    """The AWS side, identity, activation and DNS forwarding, as the phases before this one leave them. Handed
    over with every host onboarded (the last test's rerun completes the host it cut off); the activation is left
    out: its tests rotate it with their own limits."""
    with stage(lab, request, needs=["network.yml", "identity.yml", "activation.yml", "onprem_dns.yml",
                                    "preflight.yml"],
               leaves=["network.yml", "identity.yml", "onprem_dns.yml", "preflight.yml", "ssm_agent.yml"]):
        for host in lab.hosts:
            assert lab.ssh(host, "dpkg-query -W amazon-ssm-agent", check=False).returncode != 0, "hosts must be clean"
        yield


def test_ssm_agent_onboards_clean_hosts(lab, site):
    result = playbook("ssm_agent.yml")
    assert result.rc == 0, result.stdout[-5000:]
    wait_until("every host Online", lambda: all_online(lab), timeout=60)
    by_ip = {n["IPAddress"]: n for n in lab.nodes()}
    assert len(lab.nodes()) == len(lab.hosts)
    ssm = lab.client("ssm")
    for host, ip in lab.hosts.items():
        node = by_ip[ip]
        assert node["PingStatus"] == "Online" and node["ComputerName"] == host
        assert node["ResourceType"] == "ManagedInstance" and node["InstanceId"] == lab.vault_id(host)
        assert lab.ssh(host, "systemctl is-active amazon-ssm-agent; systemctl is-enabled amazon-ssm-agent"
                       ).stdout.split() == ["active", "enabled"]
        tags = {t["Key"]: t["Value"] for t in ssm.list_tags_for_resource(
            ResourceType="ManagedInstance", ResourceId=node["InstanceId"])["TagList"]}
        assert tags["Datacenter"] == "lab-dc1" and tags["Rack"] == f"rack-{host[-1]}"
        assert tags["Hostname"] == host and tags["ManagedBy"] == "hybrid-onboard"
        # Downloaded through the S3 endpoint-specific name and verified before install: the .sig is kept beside it.
        assert lab.ssh(host, "ls /var/cache/hybrid-onboard/ssm-agent/*/debian_amd64/").stdout.split() == [
            "amazon-ssm-agent.deb", "amazon-ssm-agent.deb.sig"]


def test_rerun_and_check_mode_change_nothing(lab, site):
    before = sorted(n["InstanceId"] for n in lab.nodes())
    again = playbook("ssm_agent.yml")
    assert again.rc == 0, again.stdout[-4000:]
    assert again.total_changed == 0, again.stdout[-4000:]
    check = playbook("ssm_agent.yml", check_mode=True)
    assert check.rc == 0, check.stdout[-4000:]
    assert check.total_changed == 0, check.stdout[-4000:]
    assert sorted(n["InstanceId"] for n in lab.nodes()) == before

    # A proxy with a password: check mode says the drop-in would be written on every host, never shows the
    # password (not even at -vvv, not in the diff) and writes nothing.
    password = "pr0xy-Secret-7f3a"  # noqa: S105 - a test value
    dropin = "/etc/systemd/system/amazon-ssm-agent.service.d/hybrid-onboard-proxy.conf"
    proxied = playbook("ssm_agent.yml", "-vvv", check_mode=True,
                       extra_vars={"ssm_agent_https_proxy": f"http://ops:{password}@10.99.0.8:3128"})
    assert proxied.rc == 0, proxied.stdout[-4000:]
    assert password not in proxied.stdout + proxied.stderr
    assert all(proxied.recap[host]["changed"] >= 1 for host in lab.hosts), proxied.recap
    assert dropin in proxied.stdout
    for host in lab.hosts:
        assert lab.ssh(host, f"test -e {dropin}", check=False).returncode == 1


def test_forced_reregistration_leaves_one_mi_per_host_and_never_shows_the_code(lab, site):
    old = {host: lab.vault_id(host) for host in lab.hosts}
    code = activation(lab)["code"]
    result = playbook("ssm_agent.yml", "-vvv", extra_vars={"ssm_agent_force_reregister": True})
    assert result.rc == 0, result.stdout[-5000:]
    assert code not in result.stdout and code not in result.stderr
    new = {host: lab.vault_id(host) for host in lab.hosts}
    assert all(new[h] and new[h] != old[h] for h in lab.hosts)
    wait_until("every host Online again", lambda: all_online(lab), timeout=60)
    ids = sorted(n["InstanceId"] for n in lab.nodes())
    assert ids == sorted(new.values())  # the old mi- ids are gone: no orphans
    assert playbook("ssm_agent.yml").total_changed == 0


def test_activation_rotated_when_it_runs_out(lab, site):
    # An activation with a single registration left, as if other jobs had used it up.
    small = playbook("activation.yml", extra_vars={"ssm_activation_registration_limit": 1,
                                                   "ssm_activation_force_rotate": True})
    assert small.rc == 0, small.stdout[-3000:]
    first = activation(lab)["id"]
    result = playbook("ssm_agent.yml", extra_vars={"ssm_agent_force_reregister": True})
    assert result.rc == 0, result.stdout[-5000:]
    assert activation(lab)["id"] != first
    assert "rotated" in result.stdout
    wait_until("every host Online", lambda: all_online(lab), timeout=60)
    assert len(lab.nodes()) == len(lab.hosts)


def test_tampered_package_is_refused_and_nothing_is_installed(lab, site):
    host = sorted(lab.hosts)[-1]
    s3 = lab.client("s3")
    version = lab.ssh(host, "dpkg-query -W -f='${Version}' amazon-ssm-agent").stdout.split("-")[0]
    key = f"{version}/debian_amd64/amazon-ssm-agent.deb"
    original = s3.get_object(Bucket=C.SSM_AGENT_BUCKET, Key=key)["Body"].read()
    purge_agent(lab, host)
    s3.put_object(Bucket=C.SSM_AGENT_BUCKET, Key=key, Body=original + b"\0tampered", ACL="public-read")
    try:
        result = playbook("ssm_agent.yml", "-l", host)
        assert result.rc != 0
        assert "signature does not verify" in result.stdout and "nothing was installed" in result.stdout, \
            result.stdout[-4000:]
        assert lab.ssh(host, "dpkg-query -W amazon-ssm-agent", check=False).returncode != 0
        assert lab.ssh(host, "ls /var/cache/hybrid-onboard/ssm-agent/*/debian_amd64/ 2>/dev/null").stdout == ""
        # A sha256 that does not match is refused the same way.
        pinned = playbook("ssm_agent.yml", "-l", host, extra_vars={
            "ssm_agent_verify": "sha256", "ssm_agent_version": version,
            "ssm_agent_sha256": {"debian_amd64": "0" * 64}})
        assert pinned.rc != 0 and "expected " + "0" * 64 in pinned.stdout, pinned.stdout[-4000:]
        assert lab.ssh(host, "dpkg-query -W amazon-ssm-agent", check=False).returncode != 0
    finally:
        s3.put_object(Bucket=C.SSM_AGENT_BUCKET, Key=key, Body=original, ACL="public-read")
    before = lab.vault_id(host)
    fixed = playbook("ssm_agent.yml", "-l", host)
    assert fixed.rc == 0, fixed.stdout[-4000:]
    assert lab.vault_id(host) == before  # the Vault survived: still the same managed instance
    wait_until("the host Online", lambda: all_online(lab), timeout=60)


def test_interrupted_dpkg_run_is_finished(lab, site):
    host = sorted(lab.hosts)[1]
    lab.ssh(host, "cp /var/cache/hybrid-onboard/ssm-agent/*/debian_amd64/amazon-ssm-agent.deb /root/agent.deb && "
                  "dpkg --purge amazon-ssm-agent >/dev/null && dpkg --unpack /root/agent.deb >/dev/null")
    assert lab.ssh(host, "dpkg-query -W -f='${db:Status-Abbrev}' amazon-ssm-agent").stdout.startswith("iU")
    result = playbook("ssm_agent.yml", "-l", host)
    assert result.rc == 0, result.stdout[-4000:]
    # agent_package finishes it first (dpkg --configure -a) and says so; nothing else needs installing.
    said = re.sub(r"\s+", " ", result.stdout + result.stderr)  # warnings go to stderr
    assert "amazon-ssm-agent was left iU by an interrupted dpkg run: finished it with dpkg --configure -a" in said, \
        result.stderr[-4000:]
    assert re.search(r"Install the verified SSM Agent package when it is missing or not the wanted version\] \**\n"
                     rf"(\[WARNING\][^\n]*\n)*changed: \[{host}\]", result.stdout), result.stdout[-4000:]
    assert lab.ssh(host, "dpkg-query -W -f='${db:Status-Abbrev}' amazon-ssm-agent").stdout.startswith("ii")
    assert lab.ssh(host, "systemctl is-active amazon-ssm-agent").stdout.strip() == "active"
    wait_until("every host Online", lambda: all_online(lab), timeout=60)


def test_host_with_its_link_cut_fails_alone_and_a_rerun_completes_it(lab, site):
    host = sorted(lab.hosts)[0]
    old = lab.vault_id(host)
    # The host is offboarded by hand, so the run has real work to do on it.
    lab.client("ssm").deregister_managed_instance(InstanceId=old)
    purge_agent(lab, host, keep_vault=False)
    lab.fault(host, "link", "down")
    try:
        result = playbook("ssm_agent.yml")
        assert result.rc != 0
        assert result.recap[host]["unreachable"] == 1, result.stdout[-4000:]
        assert "UNREACHABLE" in result.stdout
        for other in set(lab.hosts) - {host}:
            assert result.recap[other]["failed"] == 0 and result.recap[other]["unreachable"] == 0
            assert result.recap[other]["changed"] == 0
    finally:
        lab.fault(host, "link", "up")
    rerun = playbook("ssm_agent.yml")
    assert rerun.rc == 0, rerun.stdout[-4000:]
    assert lab.vault_id(host) not in (None, old)
    wait_until("every host Online", lambda: all_online(lab), timeout=60)
    assert len(lab.nodes()) == len(lab.hosts)
