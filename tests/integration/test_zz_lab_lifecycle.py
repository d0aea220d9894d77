"""`scripts/lab down` leaves nothing behind, even after a SIGKILL mid-way; `up` clears stale state first.

Runs last (file name): it tears down the shared lab and brings up small labs of its own.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from labtools import LAB, C, run

pytestmark = pytest.mark.integration


def leftovers() -> list[str]:
    found = []
    found += [f"netns {ns}" for ns in run(["ip", "netns", "list"]).stdout.split() if ns.startswith(C.NS_PREFIX)]
    found += [f"link {line.split(':')[1].strip()}" for line in run(["ip", "-o", "link"]).stdout.splitlines()
              if C.NS_PREFIX in line]
    found += [f"mount {line.split()[1]}" for line in Path("/proc/mounts").read_text().splitlines()
              if "hybrid-onboard-lab" in line.split()[1] or "/netns/holab-" in line.split()[1]]
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(pid) != os.getpid() and ("hybrid-onboard-lab-" in cmd or ("systemd-nspawn" in cmd and "holab-" in cmd)):
            found.append(f"process {pid}: {cmd[:80]}")
    if C.RUN_DIR.exists():
        found.append(f"dir {C.RUN_DIR}")
    return found


def pid_of(name: str) -> int:
    return int((C.RUN_DIR / f"{name}.pid").read_text())


def test_down_leaves_nothing_and_up_recovers_from_sigkill(lab):
    run([str(LAB), "down"], timeout=300)
    assert leftovers() == []

    run([str(LAB), "up", "--hosts", "1"], timeout=900)
    assert leftovers(), "a running lab must be visible to the leftovers check (else the check proves nothing)"
    # A crash: the emulator and the VPC side die with SIGKILL; namespaces, veths and hosts stay behind.
    for name in ("emulator", "vpcside"):
        os.kill(pid_of(name), signal.SIGKILL)
    # `up` on top of the wreck clears it first and comes up working.
    run([str(LAB), "up", "--hosts", "1"], timeout=900)
    status = run([str(LAB), "status"]).stdout
    assert "emulator: up" in status
    # A crash again, then down: still nothing left.
    os.kill(pid_of("emulator"), signal.SIGKILL)
    run([str(LAB), "down"], timeout=300)
    assert leftovers() == []
