"""Booting the on-prem hosts: one systemd-nspawn container per host, each in its own namespace.

Every host runs the shared read-only image through its own overlay (lower = the cached image,
upper = RUN_DIR/hosts/<name>/upper), mounted here rather than with nspawn's --volatile=overlay:
the upper layer then lives on disk, so a host's state (agent registration, configs written by
the project's roles) survives a restart of that host, and its identity files (machine-id,
resolv.conf, hosts, authorized_keys) are ordinary writable files that Ansible can template
(an atomic rename onto a read-only bind mount would fail with EBUSY).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import labconst
import paramiko

from . import cleanup, image, topology
from .system import OnpremError, pid_alive, processes, run
from .topology import HostPlan

log = logging.getLogger(__name__)

HOSTS_DIR = labconst.RUN_DIR / "hosts"
STATE_FILE = labconst.RUN_DIR / "onprem.json"
KNOWN_HOSTS = labconst.SSH_KEY.parent / "known_hosts"
MACHINE_PREFIX = "holab-"  # nspawn machine names; cleanup also finds nspawn leftovers by them
NSPAWN_LOCKS = Path("/run/systemd/nspawn/locks")
# inotify instances one booted host holds: systemd 3, dbus-daemon 1, systemd-logind 1 (measured,
# with the console getty masked in the image). Root's default limit of 128 thus fits about 25 hosts.
INOTIFY_PER_HOST = 5
INOTIFY_LIMIT = Path("/proc/sys/fs/inotify/max_user_instances")
BOOT_TIMEOUT = float(os.environ.get("HYBRID_LAB_BOOT_TIMEOUT", "120"))


def host_dir(name: str) -> Path:
    return HOSTS_DIR / name


def new_machine_id() -> str:
    """A fresh machine-id: 32 lower-case hex digits, as systemd writes it."""
    return uuid.uuid4().hex


def host_files(host: HostPlan, machine_id: str, public_key: str) -> dict[str, tuple[str, int]]:
    """Per-host files, keyed by their path inside the host: (content, mode)."""
    if len(machine_id) != 32 or any(c not in "0123456789abcdef" for c in machine_id):
        raise ValueError(f"machine-id must be 32 lower-case hex digits, got {machine_id!r}")
    # The DNS host answers for itself; every other host asks it (as on a real on-prem LAN).
    nameserver = "127.0.0.1" if host.name == labconst.DNS_HOST_NAME else labconst.DNS_HOST_IP
    return {
        "etc/machine-id": (machine_id + "\n", 0o444),
        "etc/resolv.conf": (f"# hybrid-onboard lab: on-prem DNS\nnameserver {nameserver}\n", 0o644),
        "etc/hosts": (image.HOSTS_BASE + f"{host.ip}\t{host.name}\n", 0o644),
        "root/.ssh/authorized_keys": (public_key.strip() + "\n", 0o600),
    }


# Directory modes in the upper layer: an upper directory's mode wins over the image's.
_DIR_MODES = {"etc": 0o755, "root": 0o700, "root/.ssh": 0o700}


def write_host_files(host: HostPlan, machine_id: str, public_key: str, base: Path | None = None) -> Path:
    """Lay out RUN_DIR/hosts/<name>/: the files (kept at top level for reference) and the overlay's
    upper layer pre-seeded with them. Returns the host directory."""
    hdir = host_dir(host.name) if base is None else base / host.name
    upper = hdir / "upper"
    for sub in ("upper", "work", "root"):
        (hdir / sub).mkdir(parents=True, exist_ok=True)
    for rel, mode in _DIR_MODES.items():
        (upper / rel).mkdir(parents=True, exist_ok=True)
        (upper / rel).chmod(mode)
    for rel, (content, mode) in host_files(host, machine_id, public_key).items():
        for target in (hdir / Path(rel).name, upper / rel):
            target.write_text(content)
            target.chmod(mode)
    return hdir


def overlay_mount_cmd(img: Path, hdir: Path) -> list[str]:
    return [
        "mount", "-t", "overlay", "overlay",
        "-o", f"lowerdir={img},upperdir={hdir / 'upper'},workdir={hdir / 'work'}",
        str(hdir / "root"),
    ]  # fmt: skip


def nspawn_cmd(host: HostPlan, root: Path, personality: str = "") -> list[str]:
    """The container's command line. --keep-unit/--register=no: the machine has no systemd as PID 1.

    ``personality`` "x86" boots the host with a 32-bit personality (``uname -m`` says i686): the lab's
    unsupported-architecture host.
    """
    extra = [f"--personality={personality}"] if personality else []
    return [
        "systemd-nspawn",
        f"--directory={root}",
        "--boot",
        f"--machine={MACHINE_PREFIX}{host.name}",
        f"--hostname={host.name}",
        f"--network-namespace-path=/run/netns/{host.ns}",
        "--register=no",
        "--keep-unit",
        "--resolv-conf=off",  # ours is already in the upper layer
        "--timezone=off",  # the image is UTC; do not copy the machine's zone in
        "--link-journal=no",
        "--console=read-only",
        *extra,
    ]


def ssh_cmd(ip: str, *remote: str, connect_timeout: int = 3) -> list[str]:
    """SSH from the controller to a lab host as root with the lab key."""
    return [
        "ssh",
        "-i", str(labconst.SSH_KEY),
        # write_host_keys recorded the host's key before it booted: every session is checked against it.
        "-o", "StrictHostKeyChecking=yes",
        "-o", f"UserKnownHostsFile={KNOWN_HOSTS}",
        "-o", "BatchMode=yes",
        "-o", f"ConnectTimeout={connect_timeout}",
        "-o", "LogLevel=ERROR",
        f"root@{ip}",
        *remote,
    ]  # fmt: skip


def ssh(ip: str, *remote: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(ssh_cmd(ip, *remote), timeout=timeout, check=check)


def _ensure_ssh_key() -> str:
    key = labconst.SSH_KEY
    key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not key.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "holab-controller", "-f", str(key)])
    KNOWN_HOSTS.touch(mode=0o600)
    return key.with_suffix(".pub").read_text()


def _log_tail(name: str, lines: int = 15) -> str:
    path = labconst.LOG_DIR / f"{name}.log"
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no console log)"


def _boot(host: HostPlan, hdir: Path) -> int:
    """Start nspawn on the host's mounted root in the background; record and return its pid."""
    labconst.LOG_DIR.mkdir(parents=True, exist_ok=True)
    with open(labconst.LOG_DIR / f"{host.name}.log", "ab") as console:
        personality_file = hdir / "personality"
        personality = personality_file.read_text().strip() if personality_file.exists() else ""
        proc = subprocess.Popen(
            nspawn_cmd(host, hdir / "root", personality),
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own session: a Ctrl-C at the controller does not reach it
        )
    (hdir / "nspawn.pid").write_text(f"{proc.pid}\n")
    return proc.pid


def write_host_keys(host: HostPlan, hdir: Path) -> None:
    """Make the host's SSH host keys here, before it boots, and record them in the lab's known_hosts.

    The controller then knows every host's key from the start: no session trusts a key on first use, and a key
    that changes afterwards (or an address that answers with another key) is refused. Any earlier entry for the
    host's address is replaced, so a host made again gets its new keys recorded."""
    etc_ssh = hdir / "upper" / "etc" / "ssh"
    etc_ssh.mkdir(parents=True, exist_ok=True)
    etc_ssh.chmod(0o755)
    entries = []
    for key_type in image.HOST_KEY_TYPES:
        key = etc_ssh / f"ssh_host_{key_type}_key"
        for old in (key, key.with_name(key.name + ".pub")):
            old.unlink(missing_ok=True)
        run(["ssh-keygen", "-q", "-t", key_type, "-N", "", "-C", f"root@{host.name}", "-f", str(key)])
        key.chmod(0o600)
        kind, blob = key.with_name(key.name + ".pub").read_text().split()[:2]
        entries.append(f"{host.ip} {kind} {blob}\n")
    with _KNOWN_HOSTS_LOCK:
        kept = [line for line in KNOWN_HOSTS.read_text().splitlines(keepends=True)
                if line.split(" ", 1)[0] != host.ip] if KNOWN_HOSTS.exists() else []
        KNOWN_HOSTS.write_text("".join(kept + entries))
        KNOWN_HOSTS.chmod(0o600)


def start_host(host: HostPlan, img: Path, public_key: str) -> int:
    """Prepare, mount and boot one host in the background; return the nspawn pid (also in nspawn.pid)."""
    hdir = write_host_files(host, new_machine_id(), public_key)
    write_host_keys(host, hdir)
    run(overlay_mount_cmd(img, hdir))
    # nspawn leaves a lock file named after the root's inode; remember it so `down` can remove it.
    st = os.stat(hdir / "root")
    (hdir / "nspawn.lock").write_text(f"{NSPAWN_LOCKS}/inode-{st.st_dev}:{st.st_ino}\n")
    return _boot(host, hdir)


_KNOWN_HOSTS_LOCK = threading.Lock()


def ssh_ready(ip: str, timeout: float = 5) -> bool:
    """One readiness probe with paramiko: the lab key is accepted and `true` runs as root.

    The host's key must be the one write_host_keys recorded in the lab's known_hosts before it booted (what the
    OpenSSH client and Ansible verify against too, StrictHostKeyChecking=yes): any other key is refused.
    """
    client = paramiko.SSHClient()
    with _KNOWN_HOSTS_LOCK:
        if KNOWN_HOSTS.exists():
            client.load_host_keys(str(KNOWN_HOSTS))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(ip, username="root", key_filename=str(labconst.SSH_KEY), timeout=timeout,
                       banner_timeout=timeout, auth_timeout=timeout, look_for_keys=False, allow_agent=False)
        _stdin, stdout, _stderr = client.exec_command("true", timeout=timeout)
        if stdout.channel.recv_exit_status() != 0:
            return False
    except paramiko.BadHostKeyException as exc:
        raise OnpremError(f"{ip}: host key differs from the one in {KNOWN_HOSTS}: {exc}") from exc
    except (OSError, EOFError, paramiko.SSHException):
        return False
    finally:
        client.close()
    return True


def wait_ssh(host: HostPlan, pid: int, timeout: float = BOOT_TIMEOUT) -> float:
    """Wait until root can log in over SSH with the lab key (paramiko); return the seconds it took."""
    started = time.monotonic()
    while True:
        if ssh_ready(host.ip):
            return time.monotonic() - started
        if not pid_alive(pid):
            raise OnpremError(f"{host.name}: container exited during boot; console:\n{_log_tail(host.name)}")
        if time.monotonic() - started > timeout:
            raise OnpremError(
                f"{host.name}: no SSH on {host.ip} after {timeout:.0f}s; console:\n{_log_tail(host.name)}"
            )
        time.sleep(0.5)


def start_named(dns: HostPlan, timeout: float = 60) -> None:
    """Enable bind9 on the DNS host with its stock config (recursion for localnets, no forwarders)."""
    ssh(dns.ip, "systemctl", "enable", "--now", "named.service")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        probe = ssh(
            dns.ip, "dig", "+short", "+time=1", "+tries=1", "@127.0.0.1", "localhost", "A", check=False
        )
        if probe.returncode == 0 and "127.0.0.1" in probe.stdout:
            return
        time.sleep(0.5)
    status = ssh(dns.ip, "systemctl", "status", "--no-pager", "named.service", check=False).stdout
    raise OnpremError(f"{dns.name}: named did not answer within {timeout:.0f}s:\n{status}")


def inotify_instances_in_use() -> int:
    """inotify instances held by processes right now (all run as root, so all count against
    root's fs.inotify.max_user_instances, the limit booted systemd containers run into first)."""
    count = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            with contextlib.suppress(OSError):
                count += os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:inotify"
    return count


def check_inotify_capacity(n_containers: int, limit: int, in_use: int) -> None:
    """Refuse to boot more containers than root's inotify limit can hold, with the fix in the message
    (a container past the limit boots without sshd and only shows up as an SSH timeout)."""
    needed = n_containers * INOTIFY_PER_HOST
    if in_use + needed > limit:
        fits = max(0, (limit - in_use) // INOTIFY_PER_HOST)
        want = 1 << (in_use + needed).bit_length()
        raise OnpremError(
            f"fs.inotify.max_user_instances is {limit} ({in_use} in use): enough for about {fits} lab "
            f"containers, {n_containers} requested. Raise it first, as root: "
            f"sysctl -w fs.inotify.max_user_instances={want} (the lab does not change machine-wide settings)"
        )


def up(n_hosts: int, ca_cert: Path | None = None) -> dict[str, str]:
    """Start the on-prem side with `n_hosts` hosts (plus the DNS host); return {name: ip}."""
    hosts = topology.plan(n_hosts)  # validates n_hosts before anything is torn down
    started = time.monotonic()
    cleanup.down()
    check_inotify_capacity(len(hosts), int(INOTIFY_LIMIT.read_text()), inotify_instances_in_use())
    img = image.ensure_image(ca_cert)
    topology.create(hosts)
    public_key = _ensure_ssh_key()
    pids = {h.name: start_host(h, img, public_key) for h in hosts}
    # Boots overlap; each waiter only sleeps between ssh attempts, so many threads are cheap.
    with ThreadPoolExecutor(max_workers=min(32, len(hosts))) as pool:
        waits = dict(zip(hosts, pool.map(lambda h: wait_ssh(h, pids[h.name]), hosts), strict=True))
    log.info("all %d host(s) answer SSH (slowest %.1fs)", len(hosts), max(waits.values()))
    start_named(hosts[0])
    result = {h.name: h.ip for h in hosts}
    STATE_FILE.write_text(json.dumps({"image": str(img), "hosts": result}, indent=2) + "\n")
    log.info("on-prem side up in %.1fs: %d host(s)", time.monotonic() - started, len(hosts))
    return result


def _memory_by_netns() -> dict[int, dict[str, int]]:
    """RSS and PSS (kB) summed over the processes of each network namespace."""
    totals: dict[int, dict[str, int]] = {}
    for proc in processes():
        try:
            rollup = Path(f"/proc/{proc.pid}/smaps_rollup").read_text()
        except OSError:
            continue  # kernel thread or gone
        fields = {}
        for line in rollup.splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                fields[parts[0].rstrip(":")] = int(parts[1])
        entry = totals.setdefault(proc.netns, {"rss_kb": 0, "pss_kb": 0, "processes": 0})
        entry["rss_kb"] += fields.get("Rss", 0)
        entry["pss_kb"] += fields.get("Pss", 0)
        entry["processes"] += 1
    return totals


def _du_kb(path: Path) -> int:
    proc = run(["du", "-sk", "-x", str(path)], check=False)
    return int(proc.stdout.split()[0]) if proc.returncode == 0 and proc.stdout else 0


def status() -> dict[str, dict]:
    """Per host: address, whether its container runs, its link state and memory (RSS/PSS of the
    processes in its namespace; PSS splits shared pages fairly, so it is the per-host cost)."""
    try:
        hosts = json.loads(STATE_FILE.read_text())["hosts"]
    except (OSError, ValueError, KeyError):
        return {}
    memory = _memory_by_netns()
    report: dict[str, dict] = {}
    for name, ip in hosts.items():
        plan = topology.make_host(name, ip)
        pidfile = host_dir(name) / "nspawn.pid"
        pid = int(pidfile.read_text()) if pidfile.exists() else 0
        try:
            ns_inode = os.stat(f"/run/netns/{plan.ns}").st_ino
        except OSError:
            ns_inode = -1
        try:
            link = "up" if topology.link_is_up(name) else "down"
        except OnpremError:
            link = "missing"
        report[name] = {
            "ip": ip,
            "running": bool(pid) and pid_alive(pid),
            "link": link,
            **memory.get(ns_inode, {"rss_kb": 0, "pss_kb": 0, "processes": 0}),
            "disk_kb": _du_kb(host_dir(name) / "upper"),
        }
    return report


def restart(name: str, timeout: float = BOOT_TIMEOUT) -> None:
    """Power a host off and boot it again with the same disk (upper layer) and identity."""
    hosts = json.loads(STATE_FILE.read_text())["hosts"]
    host = topology.make_host(name, hosts[name])
    hdir = host_dir(name)
    cleanup.stop_containers([hdir / "nspawn.pid"])
    wait_ssh(host, _boot(host, hdir), timeout)


def set_personality(name: str, personality: str) -> None:
    """Reboot host `name` with an nspawn personality ("x86": uname -m says i686; "": the machine's own)."""
    hdir = host_dir(name)
    current = (hdir / "personality").read_text().strip() if (hdir / "personality").exists() else ""
    if current == personality:
        return
    if personality:
        (hdir / "personality").write_text(personality + "\n")
    else:
        (hdir / "personality").unlink(missing_ok=True)
    restart(name)


# libfaketime from the image, preloaded through pam_env (/etc/environment) into every new SSH login session of the
# host: what runs there (ansible's modules, a shell) sees the wall clock `seconds` off the kernel's. Containers share
# the kernel clock, so this is the only way to skew one host. Not /etc/ld.so.preload: preloaded into everything,
# libfaketime's shifted monotonic clock makes sshd drop its sessions. Open sessions keep the environment they
# started with, so they are closed (a second later, after this command's own session): clients such as ansible's
# ControlPersist masters reconnect and get the new clock.
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def set_clock_offset(name: str, seconds: int) -> None:
    """Skew host `name`'s clock by `seconds` (0 restores it) for every SSH session from now on."""
    hosts = json.loads(STATE_FILE.read_text())["hosts"]
    ip = hosts[name]
    script = "sed -i -E '/^(LD_PRELOAD|FAKETIME|FAKETIME_DONT_FAKE_MONOTONIC)=/d' /etc/environment"
    if seconds:
        lines = [f"LD_PRELOAD={FAKETIME_LIB}", f"FAKETIME={int(seconds):+d}", "FAKETIME_DONT_FAKE_MONOTONIC=1"]
        script += "".join(f" && echo '{line}' >> /etc/environment" for line in lines)
    script += " && setsid sh -c \"sleep 1; pkill -f 'sshd: root@'\" >/dev/null 2>&1 < /dev/null &"
    ssh(ip, script, timeout=30)
    time.sleep(2)
    log.info("clock of %s: %+d s", name, seconds)
