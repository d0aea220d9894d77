"""Integration test of the on-prem side on the real machine: namespaces, booted hosts, teardown.

Needs root, debootstrap and systemd-nspawn; the first run builds the cached image (about a minute
and a half, network to the Debian mirror), later runs take seconds. Running it tears down any lab
already up on this machine (`up` starts with `down`), including marked emulator/VPC processes.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype
import labconst
import pytest
from onprem import cleanup, hosts, topology
from onprem.system import pid_alive, processes

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: network namespaces, mounts, containers"),
    pytest.mark.skipif(shutil.which("debootstrap") is None, reason="debootstrap is not installed"),
    pytest.mark.skipif(shutil.which("systemd-nspawn") is None, reason="systemd-nspawn is not installed"),
]

LAB_DIR = Path(__file__).resolve().parents[2] / "lab"


def _tcp_open(ip: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return True
    except OSError:
        return False


def _probe_from(ip: str, target: str, port: int) -> str:
    """Connect from a host to target:port with bash's /dev/tcp; return bash's complaint (or 'open')."""
    proc = hosts.ssh(ip, "timeout", "3", "bash", "-c", f"'echo > /dev/tcp/{target}/{port}'", check=False)
    if proc.returncode == 0:
        return "open"
    if proc.returncode == 124:
        return "timeout"
    return proc.stderr.strip()


def _down_and_assert_nothing_left() -> None:
    """`cleanup.down()`, then check that nothing that existed before it (or that the on-prem side
    names) is still there. Other lab pieces may start their own holab- things on this machine while
    we run; what appears after `down` began is theirs, not a leftover."""
    before = cleanup.leftovers()
    ours = {topology.BRIDGE, topology.CONTROLLER_LINK, labconst.NS_ROUTER, labconst.NS_VPC}
    ours |= {h.ns for h in topology.plan(2)}
    pids_before = {entry.split()[0] for entry in before["processes"]}
    cleanup.down()
    after = cleanup.leftovers()
    assert not [n for n in after["namespaces"] if n in before["namespaces"] or n in ours]
    assert not [n for n in after["links"] if n in before["links"] or n in ours]
    assert not [p for p in after["processes"] if p.split()[0] in pids_before], after["processes"]
    assert after["mounts"] == [] and after["run_dir"] == []
    # And the same seen with the tools an operator would use.
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    assert not [n for n in ours if n in netns.split()]
    links = subprocess.run(["ip", "link"], capture_output=True, text=True, check=False).stdout
    assert topology.CONTROLLER_LINK not in links
    mounts = Path("/proc/mounts").read_text()
    assert str(labconst.RUN_DIR) not in mounts
    assert not [n for n in ours if f"/run/netns/{n} " in mounts]
    ps = subprocess.run(["ps", "-eo", "stat=,args="], capture_output=True, text=True, check=False).stdout
    live = [line for line in ps.splitlines() if not line.startswith("Z")]
    assert not [line for line in live if "systemd-nspawn" in line and str(labconst.RUN_DIR) in line]


@pytest.fixture
def lab():
    started = time.monotonic()
    up = hosts.up(2)
    print(f"\nup(2) took {time.monotonic() - started:.1f}s")
    try:
        yield up
    finally:
        cleanup.down()


def test_up_gives_reachable_distinct_hosts_and_down_leaves_nothing(lab):
    assert lab == {
        labconst.DNS_HOST_NAME: labconst.DNS_HOST_IP,
        "host1": labconst.host_ip(1),
        "host2": labconst.host_ip(2),
    }
    machine_ids, hostnames = set(), set()
    for name, ip in lab.items():
        assert _tcp_open(ip, 22), f"{name}: TCP 22 closed from the controller"
        out = hosts.ssh(ip, "hostname; cat /etc/machine-id; ip route show default").stdout.split("\n")
        hostnames.add(out[0])
        machine_ids.add(out[1])
        assert out[0] == name
        assert out[2] == "", f"{name} must have no default route, has {out[2]!r}"
        # The router answers (RST: nothing listens there), so the LAN works; the VPC side answers
        # through the router, so forwarding and both return routes work.
        assert "Connection refused" in _probe_from(ip, labconst.ROUTER_ONPREM_IP, 22)
        assert "Connection refused" in _probe_from(ip, labconst.VPC_NS_BASE_IP, 443)
        # Anything outside the lab is unroutable right away (no packet leaves the host).
        assert "Network is unreachable" in _probe_from(ip, "203.0.113.10", 443)
    assert len(machine_ids) == 3 and all(len(m) == 32 for m in machine_ids)
    assert hostnames == set(lab)

    # bind9 on the DNS host answers the controller (stock config: recursion for localnets)...
    query = dns.message.make_query("localhost.", dns.rdatatype.A)
    answer = dns.query.udp(query, labconst.DNS_HOST_IP, timeout=3)
    assert [r.to_text() for rr in answer.answer for r in rr] == ["127.0.0.1"]
    # ...and the hosts use it through their resolv.conf; unbound stays off for the roles to decide.
    assert hosts.ssh(lab["host1"], "dig", "+short", "+time=2", "localhost").stdout.strip() == "127.0.0.1"
    dns1 = lab[labconst.DNS_HOST_NAME]
    assert hosts.ssh(dns1, "systemctl", "is-active", "unbound", check=False).stdout.strip() != "active"
    assert hosts.ssh(lab["host1"], "systemctl", "is-active", "named", check=False).stdout.strip() != "active"

    # The lab CA is trusted inside the hosts.
    bundle = hosts.ssh(lab["host1"], "cat", "/etc/ssl/certs/ca-certificates.crt").stdout
    from labca import ensure_ca

    ca_pem = Path(ensure_ca()[0]).read_text().strip()
    assert ca_pem.splitlines()[1] in bundle

    report = hosts.status()
    assert set(report) == set(lab)
    for name, entry in report.items():
        assert entry["running"] and entry["link"] == "up", (name, entry)
        assert entry["pss_kb"] > 1000 and entry["processes"] >= 3, (name, entry)
    print("memory per host (PSS kB):", {n: e["pss_kb"] for n, e in report.items()})

    _down_and_assert_nothing_left()


def test_cut_link_isolates_one_host_and_restore_brings_it_back(lab):
    ip1, ip2 = lab["host1"], lab["host2"]
    topology.set_link("host1", False)
    try:
        assert not topology.link_is_up("host1")
        assert not _tcp_open(ip1, 22, timeout=1.5)
        assert _tcp_open(ip2, 22), "cutting host1 must not affect host2"
        assert hosts.status()["host1"]["link"] == "down"
    finally:
        topology.set_link("host1", True)
    deadline = time.monotonic() + 10
    while not _tcp_open(ip1, 22) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _tcp_open(ip1, 22)


def test_restart_keeps_the_hosts_disk_and_identity(lab):
    ip = lab["host1"]
    before = hosts.ssh(
        ip, "cat /etc/machine-id; echo kept > /root/marker; cat /proc/1/stat | cut -d' ' -f22"
    ).stdout
    hosts.restart("host1")
    after = hosts.ssh(ip, "cat /etc/machine-id; cat /root/marker; cat /proc/1/stat | cut -d' ' -f22").stdout
    mid_before, _start_before = before.split()
    mid_after, marker, _start_after = after.split()
    assert mid_after == mid_before and marker == "kept"
    assert hosts.ssh(ip, "systemctl", "is-system-running", check=False).stdout.strip() in (
        "running",
        "degraded",
    )


def test_down_after_kill_9_of_the_containers_leaves_nothing(lab):
    pids = [int(p.read_text()) for p in (labconst.RUN_DIR / "hosts").glob("*/nspawn.pid")]
    assert len(pids) == 3
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    # The containers' systemd keep running without their nspawn: exactly what down must catch.
    host_netns = os.stat(f"/run/netns/{labconst.host_ns('host1')}").st_ino
    assert [p for p in processes() if p.netns == host_netns], "expected orphaned container processes"
    _down_and_assert_nothing_left()


def test_down_after_kill_9_of_up_itself_leaves_nothing():
    env = {**os.environ, "PYTHONPATH": str(LAB_DIR)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "onprem", "up", "--hosts", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Kill it mid-way: once the first containers are starting, before it can finish.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list((labconst.RUN_DIR / "hosts").glob("*/nspawn.pid")):
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    assert labconst.NS_ROUTER in cleanup.leftovers()["namespaces"], "expected a half-built lab to clean up"
    _down_and_assert_nothing_left()
