"""Unit tests of the on-prem side's pure parts: address plan, `ip` command lists, per-host files,
nspawn/ssh command lines, image cache key and the /proc and mount parsing cleanup relies on.

No root, no network: these run in well under a second anywhere.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
import time
from pathlib import Path

import labconst
import pytest
from onprem import cleanup, hosts, image, system, topology
from onprem.system import Proc

# --- address plan ----------------------------------------------------------------------------


def test_plan_puts_dns_host_first_and_numbers_hosts():
    plan = topology.plan(3)
    assert [h.name for h in plan] == [labconst.DNS_HOST_NAME, "host1", "host2", "host3"]
    assert plan[0].ip == labconst.DNS_HOST_IP
    assert [h.ip for h in plan[1:]] == [labconst.host_ip(i) for i in (1, 2, 3)]
    assert all(h.ns == labconst.host_ns(h.name) and h.ns.startswith(labconst.NS_PREFIX) for h in plan)


def test_plan_at_max_hosts_has_unique_lan_addresses_and_short_port_names():
    plan = topology.plan(labconst.MAX_HOSTS)
    lan = ipaddress.ip_network(labconst.ONPREM_CIDR)
    ips = [h.ip for h in plan]
    assert len(set(ips)) == len(ips) == labconst.MAX_HOSTS + 1
    assert all(ipaddress.ip_address(ip) in lan for ip in ips)
    assert labconst.ROUTER_ONPREM_IP not in ips and labconst.CONTROLLER_IP not in ips
    assert all(len(h.port) <= topology.IFNAMSIZ for h in plan)
    assert len({h.port for h in plan}) == len(plan)


@pytest.mark.parametrize("n", [-1, labconst.MAX_HOSTS + 1])
def test_plan_rejects_host_counts_out_of_range(n):
    with pytest.raises(ValueError, match="number of hosts"):
        topology.plan(n)


def test_port_name_too_long_for_the_kernel_is_refused():
    with pytest.raises(ValueError, match="too long"):
        topology.host_port("a-very-long-hostname")


# --- ip command lists ------------------------------------------------------------------------


def _all_commands(n=2):
    return topology.commands(topology.plan(n))


def test_no_default_route_anywhere():
    for cmd in _all_commands():
        if "route" in cmd:
            assert "default" not in cmd and "0.0.0.0/0" not in cmd, cmd


def test_root_namespace_only_gets_holab_links_and_the_vpc_route():
    root_cmds = [c for c in _all_commands() if c[:2] == ["ip", "link"] or c[:2] == ["ip", "addr"]]
    assert root_cmds, "the controller link must be created in the root namespace"
    for cmd in root_cmds:
        names = [cmd[i + 1] for i, word in enumerate(cmd[:-1]) if word in ("add", "dev", "set")]
        assert any(n.startswith(labconst.NS_PREFIX) for n in names), cmd
    routes = [c for c in _all_commands() if c[:3] == ["ip", "route", "add"]]
    assert routes == [
        ["ip", "route", "add", labconst.VPC_CIDR, "via", labconst.ROUTER_ONPREM_IP, "dev", "holab-ctl"]
    ]
    assert ["ip", "addr", "add", f"{labconst.CONTROLLER_IP}/24", "dev", "holab-ctl"] in _all_commands()


def test_forwarding_is_enabled_inside_the_router_only():
    sysctls = [c for c in _all_commands() if "sysctl" in c]
    assert sysctls == [["ip", "netns", "exec", labconst.NS_ROUTER, "sysctl", "-qw", "net.ipv4.ip_forward=1"]]


def test_vpc_side_addressing_and_return_route():
    cmds = _all_commands()
    v = labconst.NS_VPC
    assert ["ip", "-n", v, "addr", "add", f"{labconst.VPC_NS_BASE_IP}/16", "dev", labconst.VPC_IFACE] in cmds
    assert ["ip", "-n", v, "route", "add", labconst.ONPREM_CIDR, "via", labconst.ROUTER_VPC_IP] in cmds
    assert [
        "ip",
        "-n",
        labconst.NS_ROUTER,
        "addr",
        "add",
        f"{labconst.ROUTER_VPC_IP}/16",
        "dev",
        "uplink",
    ] in cmds


def test_each_host_gets_eth0_its_address_and_a_vpc_route_via_the_router():
    host = topology.plan(1)[1]
    cmds = topology.host_commands(host)
    assert cmds[0] == ["ip", "netns", "add", host.ns]
    assert ["ip", "-n", host.ns, "addr", "add", f"{host.ip}/24", "dev", "eth0"] in cmds
    assert ["ip", "-n", host.ns, "route", "add", labconst.VPC_CIDR, "via", labconst.ROUTER_ONPREM_IP] in cmds
    plug = ["ip", "-n", labconst.NS_ROUTER, "link", "set", host.port, "master", topology.BRIDGE, "up"]
    assert plug in cmds


def test_namespaces_are_created_before_they_are_used():
    created: set[str] = set()
    for cmd in _all_commands(3):
        if cmd[:3] == ["ip", "netns", "add"]:
            created.add(cmd[3])
        elif cmd[:2] == ["ip", "-n"] or cmd[:3] == ["ip", "netns", "exec"]:
            ns = cmd[2] if cmd[1] == "-n" else cmd[3]
            assert ns in created, f"{cmd} runs before `ip netns add {ns}`"
        if "netns" in cmd[3:]:
            assert cmd[cmd.index("netns", 3) + 1] in created, cmd


# --- per-host files --------------------------------------------------------------------------


def test_host_files_point_hosts_at_the_dns_host_and_the_dns_host_at_itself():
    plan = topology.plan(1)
    dns_files = hosts.host_files(plan[0], "a" * 32, "ssh-ed25519 AAAA lab")
    host_files = hosts.host_files(plan[1], "b" * 32, "ssh-ed25519 AAAA lab")
    assert dns_files["etc/resolv.conf"][0].splitlines()[-1] == "nameserver 127.0.0.1"
    assert host_files["etc/resolv.conf"][0].splitlines()[-1] == f"nameserver {labconst.DNS_HOST_IP}"
    assert host_files["etc/machine-id"] == ("b" * 32 + "\n", 0o444)
    assert host_files["root/.ssh/authorized_keys"] == ("ssh-ed25519 AAAA lab\n", 0o600)
    assert f"{plan[1].ip}\thost1" in host_files["etc/hosts"][0]


def test_machine_ids_are_fresh_and_well_formed():
    ids = {hosts.new_machine_id() for _i in range(50)}
    assert len(ids) == 50
    for mid in ids:
        hosts.host_files(topology.plan(0)[0], mid, "k")  # raises if malformed


@pytest.mark.parametrize("bad", ["", "X" * 32, "a" * 31, "A" * 32])
def test_malformed_machine_id_is_refused(bad):
    with pytest.raises(ValueError, match="machine-id"):
        hosts.host_files(topology.plan(0)[0], bad, "k")


def test_write_host_files_seeds_upper_layer_with_right_modes(tmp_path):
    host = topology.plan(1)[1]
    hdir = hosts.write_host_files(host, "c" * 32, "ssh-ed25519 AAAA lab", base=tmp_path)
    upper = hdir / "upper"
    assert (upper / "etc/machine-id").read_text() == "c" * 32 + "\n"
    assert (upper / "root/.ssh/authorized_keys").stat().st_mode & 0o777 == 0o600
    # The upper directory's mode replaces the image's: /root and /root/.ssh must stay private.
    assert (upper / "root").stat().st_mode & 0o777 == 0o700
    assert (upper / "root/.ssh").stat().st_mode & 0o777 == 0o700
    assert (upper / "etc").stat().st_mode & 0o777 == 0o755
    assert (hdir / "resolv.conf").read_text() == (upper / "etc/resolv.conf").read_text()
    assert (hdir / "work").is_dir() and (hdir / "root").is_dir()


def test_host_keys_are_made_before_boot_and_recorded_for_the_hosts_address(tmp_path, monkeypatch):
    """The lab knows each host's SSH keys before it boots (no trust on first use); a host made again gets new keys,
    which replace the old entries of its address, and other hosts' entries stay."""
    known = tmp_path / "known_hosts"
    known.write_text("172.16.10.250 ssh-ed25519 AAAAother\n")
    monkeypatch.setattr(hosts, "KNOWN_HOSTS", known)
    host = topology.plan(1)[1]
    hdir = hosts.write_host_files(host, "c" * 32, "ssh-ed25519 AAAA lab", base=tmp_path)

    def recorded():
        return [line.split() for line in known.read_text().splitlines() if line.startswith(f"{host.ip} ")]

    hosts.write_host_keys(host, hdir)
    first = recorded()
    etc_ssh = hdir / "upper" / "etc" / "ssh"
    for key_type in image.HOST_KEY_TYPES:
        private = etc_ssh / f"ssh_host_{key_type}_key"
        assert private.stat().st_mode & 0o777 == 0o600
        kind, blob = (etc_ssh / f"ssh_host_{key_type}_key.pub").read_text().split()[:2]
        assert [host.ip, kind, blob] in first
    assert len(first) == len(image.HOST_KEY_TYPES)
    assert known.stat().st_mode & 0o777 == 0o600

    hosts.write_host_keys(host, hdir)
    second = recorded()
    assert len(second) == len(image.HOST_KEY_TYPES) and not set(map(tuple, first)) & set(map(tuple, second))
    assert "172.16.10.250 ssh-ed25519 AAAAother" in known.read_text()


def test_inotify_capacity_check_names_the_sysctl_and_a_sufficient_value():
    per_host = hosts.INOTIFY_PER_HOST
    hosts.check_inotify_capacity(10, limit=10 * per_host + 10, in_use=10)  # exactly fits
    with pytest.raises(system.OnpremError, match="max_user_instances") as err:
        hosts.check_inotify_capacity(151, limit=128, in_use=10)
    want = int(str(err.value).split("max_user_instances=")[1].split()[0])
    assert want >= 151 * per_host + 10
    assert f"about {(128 - 10) // per_host} lab containers" in str(err.value)
    with pytest.raises(system.OnpremError):
        hosts.check_inotify_capacity(11, limit=10 * per_host + 10, in_use=10)


def test_inotify_count_sees_an_open_instance():
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    before = hosts.inotify_instances_in_use()
    fd = libc.inotify_init()
    assert fd >= 0
    try:
        assert hosts.inotify_instances_in_use() >= before + 1
    finally:
        os.close(fd)


# --- command lines ---------------------------------------------------------------------------


def test_nspawn_command_boots_in_the_host_namespace_without_systemd_registration():
    host = topology.plan(1)[1]
    cmd = hosts.nspawn_cmd(host, Path("/r"))
    assert cmd[0] == "systemd-nspawn"
    for flag in (
        "--boot",
        "--register=no",
        "--keep-unit",
        f"--network-namespace-path=/run/netns/{host.ns}",
        "--hostname=host1",
        "--directory=/r",
        "--resolv-conf=off",
    ):
        assert flag in cmd
    assert cleanup.is_lab_nspawn(Proc(1, 0, "S", tuple(cmd), 0))


def test_overlay_mount_uses_image_as_lower_and_host_dir_as_upper(tmp_path):
    cmd = hosts.overlay_mount_cmd(Path("/img"), tmp_path)
    assert cmd[:4] == ["mount", "-t", "overlay", "overlay"]
    assert f"lowerdir=/img,upperdir={tmp_path}/upper,workdir={tmp_path}/work" == cmd[5]
    assert cmd[-1] == str(tmp_path / "root")


def test_ssh_command_uses_lab_key_and_lab_known_hosts():
    cmd = hosts.ssh_cmd("172.16.10.101", "true")
    assert cmd[-2:] == ["root@172.16.10.101", "true"]
    assert str(labconst.SSH_KEY) in cmd
    assert f"UserKnownHostsFile={hosts.KNOWN_HOSTS}" in cmd and "BatchMode=yes" in cmd
    assert str(hosts.KNOWN_HOSTS).startswith(str(labconst.RUN_DIR))


def test_debootstrap_command_includes_every_package_and_the_cache():
    cmd = image.debootstrap_cmd(Path("/t"), Path("/c"))
    include = next(a for a in cmd if a.startswith("--include="))
    assert set(include.removeprefix("--include=").split(",")) == set(image.PACKAGES)
    assert "--cache-dir=/c" in cmd and cmd[-3:] == [image.SUITE, "/t", image.MIRROR]
    for needed in ("openssh-server", "systemd-sysv", "bind9", "unbound", "python3", "ca-certificates"):
        assert needed in image.PACKAGES


# --- image key -------------------------------------------------------------------------------


def test_image_key_ignores_package_order_but_not_content_ca_or_version():
    base = image.image_key(["a", "b"], "ff")
    assert image.image_key(["b", "a"], "ff") == base
    assert image.image_key(["a", "b", "c"], "ff") != base
    assert image.image_key(["a", "b"], "fe") != base
    assert image.image_key(["a", "b"], "ff", version=image.FORMAT_VERSION + 1) != base
    assert len(base) == 16 and int(base, 16) >= 0


def test_ca_fingerprint_matches_openssl(tmp_path):
    cert, key = tmp_path / "ca.crt", tmp_path / "ca.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-subj", "/CN=throwaway test CA", "-days", "1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    out = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-fingerprint", "-sha256"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    expected = out.strip().split("=", 1)[1].replace(":", "").lower()
    assert image.ca_fingerprint(cert) == expected


def test_incomplete_image_directory_is_not_trusted(tmp_path):
    img = tmp_path / "image-0123"
    (img / "etc").mkdir(parents=True)
    assert not image.is_complete(img)
    (img / image.COMPLETE_MARKER).write_text("{}")
    assert image.is_complete(img)


def test_stale_build_directories_are_removed(tmp_path):
    stale = tmp_path / f"{image.BUILD_PREFIX}{image.IMAGE_PREFIX}abc-123"
    (stale / "etc").mkdir(parents=True)
    keep = tmp_path / f"{image.IMAGE_PREFIX}abc"
    keep.mkdir()
    image.clean_stale_builds(tmp_path)
    assert not stale.exists() and keep.exists()


# --- /proc and mount parsing -----------------------------------------------------------------


def test_mounts_under_orders_deepest_first_and_respects_path_boundaries():
    points = ["/", "/run/lab", "/run/lab/a", "/run/lab/a/proc", "/run/labx", "/run/lab/b"]
    found = system.mounts_under(Path("/run/lab"), points)
    assert set(found) == {"/run/lab", "/run/lab/a", "/run/lab/a/proc", "/run/lab/b"}
    assert found[0] == "/run/lab/a/proc" and found[-1] == "/run/lab"


def test_mount_paths_with_spaces_are_unescaped():
    assert system._unescape_mount("/run/a\\040b") == "/run/a b"


def test_process_scan_sees_this_process_and_its_namespace():
    me = next(p for p in system.processes() if p.pid == os.getpid())
    assert me.netns == os.stat("/proc/self/ns/net").st_ino
    assert Path(sys.executable).name in Path(me.cmdline[0]).name or "python" in me.cmdline[0]
    assert os.getpid() in system.own_lineage()


def test_pid_alive_reaps_our_exited_child():
    child = subprocess.Popen(["sleep", "0.2"])
    assert system.pid_alive(child.pid)
    deadline = time.monotonic() + 5
    while system.pid_alive(child.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    # Once exited, the child is a zombie until reaped; pid_alive must reap it and call it gone.
    assert not system.pid_alive(child.pid)
    assert (
        not Path(f"/proc/{child.pid}").exists()
        or Path(f"/proc/{child.pid}/stat").read_text().split()[2] != "Z"
    )


def test_marker_and_nspawn_recognition():
    assert cleanup.has_marker(Proc(1, 0, "S", ("python", "-m", "emulator", "hybrid-onboard-lab-emulator"), 0))
    assert not cleanup.has_marker(Proc(1, 0, "S", ("python", "-m", "emulator"), 0))
    foreign = Proc(1, 0, "S", ("systemd-nspawn", "-D", "/var/lib/machines/other", "-b"), 0)
    assert not cleanup.is_lab_nspawn(foreign)


def test_run_reports_the_failing_command_and_its_stderr():
    with pytest.raises(system.OnpremError, match=r"exit 3\).*sh -c.*boom"):
        system.run(["sh", "-c", "echo boom >&2; exit 3"])
    with pytest.raises(system.OnpremError, match="command not found"):
        system.run(["/nonexistent/holab-tool"])
