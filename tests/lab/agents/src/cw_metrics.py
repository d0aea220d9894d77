"""Host metric readers for the CloudWatch agent stand-in: real values from /proc and statvfs.

Field names, units and per-resource dimensions follow the real agent (telegraf inputs cpu, mem,
swap, disk, diskio, net, netstat, processes; metric name ``<plugin>_<field>``). ``PROC`` can be
pointed elsewhere by tests.
"""

from __future__ import annotations

import os
import time

PROC = os.environ.get("HYBRID_LAB_AGENT_PROC", "/proc")

# Filesystems that are never disks (the real agent's users add these to ignore_file_system_types).
_PSEUDO_FS = {
    "proc",
    "sysfs",
    "cgroup",
    "cgroup2",
    "devpts",
    "mqueue",
    "debugfs",
    "tracefs",
    "securityfs",
    "pstore",
    "bpf",
    "autofs",
    "hugetlbfs",
    "configfs",
    "fusectl",
    "binfmt_misc",
    "nsfs",
    "rpc_pipefs",
    "efivarfs",
    "selinuxfs",
}

UNITS = {
    "cpu": ("Percent", {}),
    "mem": ("Bytes", {"used_percent": "Percent", "available_percent": "Percent"}),
    "swap": ("Bytes", {"used_percent": "Percent"}),
    "disk": (
        "Bytes",
        {"used_percent": "Percent", "inodes_free": "Count", "inodes_used": "Count", "inodes_total": "Count"},
    ),
    "diskio": (
        "Count",
        {
            "read_bytes": "Bytes",
            "write_bytes": "Bytes",
            "read_time": "Milliseconds",
            "write_time": "Milliseconds",
            "io_time": "Milliseconds",
        },
    ),
    "net": ("Count", {"bytes_sent": "Bytes", "bytes_recv": "Bytes"}),
    "netstat": ("Count", {}),
    "processes": ("Count", {}),
}


def unit_for(plugin: str, field: str) -> str:
    default, special = UNITS.get(plugin, ("None", {}))
    if plugin == "cpu" and field.startswith("time_"):
        return "None"
    return special.get(field, default)


def _read(path: str) -> str:
    with open(os.path.join(PROC, path), encoding="utf-8", errors="replace") as fh:
        return fh.read()


# --- cpu -------------------------------------------------------------------------------------------

_CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guest_nice")


def cpu_times() -> dict[str, list[float]]:
    """Jiffies per CPU (``cpu-total`` and ``cpu0``…) from /proc/stat."""
    out = {}
    for line in _read("stat").splitlines():
        if not line.startswith("cpu"):
            continue
        parts = line.split()
        name = "cpu-total" if parts[0] == "cpu" else parts[0]
        values = [float(v) for v in parts[1:11]]
        out[name] = values + [0.0] * (10 - len(values))
    return out


class CpuCollector:
    """usage_* percentages over the interval since the previous call (since boot on the first)."""

    def __init__(self):
        self.previous: dict[str, list[float]] = {}

    def collect(self) -> dict[str, dict[str, float]]:
        now = cpu_times()
        result = {}
        hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        for name, values in now.items():
            before = self.previous.get(name, [0.0] * 10)
            delta = [max(a - b, 0.0) for a, b in zip(values, before, strict=False)]
            # guest time is already counted in user/nice by the kernel; exclude it from the total.
            total = sum(delta[:8]) or 1.0
            fields = {f"usage_{f}": 100.0 * d / total for f, d in zip(_CPU_FIELDS, delta, strict=False)}
            fields["usage_active"] = 100.0 - fields["usage_idle"] - fields["usage_iowait"]
            fields.update({f"time_{f}": v / hz for f, v in zip(_CPU_FIELDS, values, strict=False)})
            fields["time_active"] = sum(values[:8]) / hz - fields["time_idle"] - fields["time_iowait"]
            result[name] = fields
        self.previous = now
        return result


# --- memory ------------------------------------------------------------------------------------------


def meminfo() -> dict[str, int]:
    """/proc/meminfo in bytes."""
    out = {}
    for line in _read("meminfo").splitlines():
        key, _sep, rest = line.partition(":")
        parts = rest.split()
        if parts:
            out[key] = int(parts[0]) * (1024 if len(parts) > 1 and parts[1] == "kB" else 1)
    return out


def mem() -> dict[str, float]:
    info = meminfo()
    total = info.get("MemTotal", 0)
    available = info.get("MemAvailable", info.get("MemFree", 0))
    # gopsutil's Linux "used": total - free - buffers - cached (cached includes reclaimable slab)
    cached = info.get("Cached", 0) + info.get("SReclaimable", 0)
    used = total - info.get("MemFree", 0) - info.get("Buffers", 0) - cached
    return {
        "total": float(total),
        "available": float(available),
        "free": float(info.get("MemFree", 0)),
        "used": float(used),
        "cached": float(cached),
        "buffered": float(info.get("Buffers", 0)),
        "active": float(info.get("Active", 0)),
        "inactive": float(info.get("Inactive", 0)),
        "used_percent": 100.0 * used / total if total else 0.0,
        "available_percent": 100.0 * available / total if total else 0.0,
    }


def swap() -> dict[str, float]:
    info = meminfo()
    total, free = info.get("SwapTotal", 0), info.get("SwapFree", 0)
    used = total - free
    return {
        "total": float(total),
        "free": float(free),
        "used": float(used),
        "used_percent": 100.0 * used / total if total else 0.0,
    }


# --- disk ----------------------------------------------------------------------------------------------


def mounts() -> list[tuple[str, str, str]]:
    """(device, mount point, fstype) from /proc/self/mounts, pseudo filesystems dropped."""
    out = []
    seen = set()
    for line in _read("self/mounts").splitlines():
        parts = line.split()
        if len(parts) < 3 or parts[2] in _PSEUDO_FS or parts[1] in seen:
            continue
        seen.add(parts[1])
        out.append((parts[0], parts[1].replace("\\040", " "), parts[2]))
    return out


def disk(resources: list[str] | None = None, ignore_fs: list[str] | None = None) -> list[tuple[dict, dict]]:
    """[(dimensions {path, device, fstype}, fields)] for each mounted filesystem wanted."""
    wanted = None if not resources or "*" in resources else set(resources)
    ignore = set(ignore_fs or [])
    out = []
    for device, path, fstype in mounts():
        if fstype in ignore or (wanted is not None and path not in wanted):
            continue
        try:
            st = os.statvfs(path)
        except OSError:
            continue
        total = st.f_blocks * st.f_frsize
        free = st.f_bavail * st.f_frsize
        used = (st.f_blocks - st.f_bfree) * st.f_frsize
        fields = {
            "total": float(total),
            "free": float(free),
            "used": float(used),
            # as gopsutil: used / (used + available to non-root), so reserved blocks count as full
            "used_percent": 100.0 * used / (used + free) if used + free else 0.0,
            "inodes_total": float(st.f_files),
            "inodes_free": float(st.f_ffree),
            "inodes_used": float(st.f_files - st.f_ffree),
        }
        dims = {"path": path, "device": os.path.basename(device), "fstype": fstype}
        out.append((dims, fields))
    return out


def diskio(resources: list[str] | None = None) -> list[tuple[dict, dict]]:
    """[(dimensions {name}, fields)] from /proc/diskstats (counters since boot, like telegraf)."""
    wanted = None if not resources or "*" in resources else set(resources)
    out = []
    for line in _read("diskstats").splitlines():
        p = line.split()
        if len(p) < 14 or (wanted is not None and p[2] not in wanted):
            continue
        name = p[2]
        if name.startswith(("loop", "ram")) and wanted is None:
            continue
        fields = {
            "reads": float(p[3]),
            "read_bytes": float(p[5]) * 512,
            "read_time": float(p[6]),
            "writes": float(p[7]),
            "write_bytes": float(p[9]) * 512,
            "write_time": float(p[10]),
            "iops_in_progress": float(p[11]),
            "io_time": float(p[12]),
        }
        out.append(({"name": name}, fields))
    return out


# --- network ---------------------------------------------------------------------------------------------


def net(resources: list[str] | None = None) -> list[tuple[dict, dict]]:
    """[(dimensions {interface}, fields)] from /proc/net/dev; loopback only when asked for by name."""
    wanted = None if not resources or "*" in resources else set(resources)
    out = []
    for line in _read("net/dev").splitlines()[2:]:
        name, _sep, rest = line.partition(":")
        name = name.strip()
        v = rest.split()
        if len(v) < 16 or (wanted is None and name == "lo") or (wanted is not None and name not in wanted):
            continue
        fields = {
            "bytes_recv": float(v[0]),
            "packets_recv": float(v[1]),
            "err_in": float(v[2]),
            "drop_in": float(v[3]),
            "bytes_sent": float(v[8]),
            "packets_sent": float(v[9]),
            "err_out": float(v[10]),
            "drop_out": float(v[11]),
        }
        out.append(({"interface": name}, fields))
    return out


_TCP_STATES = {
    "01": "established",
    "02": "syn_sent",
    "03": "syn_recv",
    "04": "fin_wait1",
    "05": "fin_wait2",
    "06": "time_wait",
    "07": "close",
    "08": "close_wait",
    "09": "last_ack",
    "0A": "listen",
    "0B": "closing",
}


def netstat() -> dict[str, float]:
    counts = {f"tcp_{name}": 0.0 for name in _TCP_STATES.values()}
    counts["tcp_none"] = 0.0
    udp = 0.0
    for table in ("net/tcp", "net/tcp6"):
        try:
            lines = _read(table).splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) > 3:
                counts[f"tcp_{_TCP_STATES.get(parts[3], 'none')}"] += 1
    for table in ("net/udp", "net/udp6"):
        try:
            udp += max(len(_read(table).splitlines()) - 1, 0)
        except OSError:
            continue
    counts["udp_socket"] = udp
    return counts


def processes() -> dict[str, float]:
    states = {
        "R": "running",
        "S": "sleeping",
        "D": "blocked",
        "Z": "zombies",
        "T": "stopped",
        "t": "stopped",
        "I": "idle",
        "X": "dead",
        "W": "paging",
    }
    counts = {name: 0.0 for name in set(states.values())}
    total = threads = 0
    for entry in os.listdir(PROC):
        if not entry.isdigit():
            continue
        try:
            stat = _read(f"{entry}/stat")
        except OSError:
            continue  # the process ended while we looked
        fields = stat[stat.rfind(")") + 2 :].split()
        if not fields:
            continue
        total += 1
        counts[states.get(fields[0], "sleeping")] += 1
        threads += int(fields[17]) if len(fields) > 17 else 1
    counts["total"] = float(total)
    counts["total_threads"] = float(threads)
    return counts


def uptime() -> float:
    try:
        return float(_read("uptime").split()[0])
    except (OSError, ValueError, IndexError):
        return time.monotonic()
