"""Issue #7 (on-prem DNS): after network.yml and onprem_dns.yml, on-prem hosts resolve AWS names to the
VPC's private endpoint IPs through their own DNS server (bind9, or unbound when that is what runs).

Asserted from outside: `dig` on the hosts using their system resolver (/etc/resolv.conf → dns1),
endpoint IPs from the emulator with boto3, the config files and services on dns1.
"""

from __future__ import annotations

import pytest
from labtools import C, playbook, stage

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def network(lab, request):
    """network.yml's AWS side; handed over to the next module (the preflight's) as it is. Its absent path is
    test_network_phase_lab's."""
    with stage(lab, request, needs=["network.yml"], leaves=["network.yml"]):
        yield


def test_bind9_forwarding_makes_hosts_resolve_privately(lab, network):
    host = sorted(lab.hosts)[0]
    name = f"ssm.{C.REGION}.amazonaws.com"
    assert not lab.dig(host, name) & lab.endpoint_ips()["ssm"], "before forwarding, no private answer"
    check = playbook("onprem_dns.yml", check_mode=True)
    assert check.rc == 0 and check.changed("dns1") > 0
    assert lab.ssh("dns1", "test -e /etc/bind/named.conf.hybrid-onboard", check=False).returncode != 0
    first = playbook("onprem_dns.yml")
    assert first.rc == 0 and first.changed("dns1") > 0, first.stdout[-3000:]
    for host in lab.hosts:
        assert lab.dig(host, name) == lab.endpoint_ips()["ssm"]
        assert lab.dig(host, f"s3.{C.REGION}.amazonaws.com") == lab.endpoint_ips()["s3"]
    again = playbook("onprem_dns.yml")
    assert again.rc == 0 and again.changed("dns1") == 0, again.stdout[-3000:]
    check_after = playbook("onprem_dns.yml", check_mode=True)
    assert check_after.rc == 0 and check_after.changed("dns1") == 0


def test_unbound_is_detected_and_configured(lab, network):
    # The site's DNS server is unbound (its own base config serves the LAN); bind9 is stopped.
    lab.ssh("dns1", (
        "systemctl disable --now named && "
        "printf 'server:\\n  interface: 0.0.0.0\\n  access-control: 172.16.10.0/24 allow\\n' "
        "> /etc/unbound/unbound.conf.d/site.conf && systemctl enable --now unbound"))
    try:
        first = playbook("onprem_dns.yml")
        assert first.rc == 0, first.stdout[-3000:]
        conf = lab.ssh("dns1", "cat /etc/unbound/unbound.conf.d/hybrid-onboard.conf").stdout
        assert 'name: "amazonaws.com"' in conf
        host = sorted(lab.hosts)[0]
        assert lab.dig(host, f"ssm.{C.REGION}.amazonaws.com") == lab.endpoint_ips()["ssm"]
        again = playbook("onprem_dns.yml")
        assert again.rc == 0 and again.changed("dns1") == 0
        removed = playbook("onprem_dns.yml", extra_vars={"onprem_dns_forwarder_state": "absent"})
        assert removed.rc == 0
        assert lab.ssh("dns1", "test -e /etc/unbound/unbound.conf.d/hybrid-onboard.conf", check=False).returncode != 0
    finally:
        lab.ssh("dns1", "systemctl disable --now unbound; rm -f /etc/unbound/unbound.conf.d/site.conf; "
                        "systemctl enable --now named", check=False)
