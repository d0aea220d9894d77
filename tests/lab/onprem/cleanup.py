"""Tearing the lab down, also after a crash: processes, mounts, namespaces, links, run directory.

Nothing here trusts that the previous run ended well. Pid files are used when present, and /proc
is scanned as well, so containers whose nspawn was SIGKILLed and processes whose pid files are
gone are still found. Every step is idempotent; `down()` on a clean machine does nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import time
from collections.abc import Iterable
from pathlib import Path

import labconst

from .system import (
    Proc,
    mounts_under,
    own_lineage,
    pid_alive,
    processes,
    run,
    signal_pids,
    terminate,
    unmount_under,
)

log = logging.getLogger(__name__)

NETNS_DIR = Path("/run/netns")
# The emulator and the VPC-side processes put this in their command lines so cleanup can find them.
PROCESS_MARKER = "hybrid-onboard-lab-"
NSPAWN_PROPAGATE = Path("/run/systemd/nspawn/propagate")
NSPAWN_LOCKS = Path("/run/systemd/nspawn/locks")
CONTAINER_STOP_GRACE = 15.0  # seconds for systemd in a container to power off cleanly


def lab_netns_names() -> list[str]:
    try:
        return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(labconst.NS_PREFIX))
    except FileNotFoundError:
        return []


def lab_netns_inodes() -> set[int]:
    inodes = set()
    for name in lab_netns_names():
        with contextlib.suppress(OSError):
            inodes.add(os.stat(NETNS_DIR / name).st_ino)
    return inodes


def lab_links() -> list[str]:
    """`holab-*` links in the root namespace (names as `ip` prints them, without `@peer`)."""
    out = run(["ip", "-o", "link", "show"]).stdout
    names = [line.split(":", 2)[1].strip().split("@")[0] for line in out.splitlines() if ":" in line]
    return [n for n in names if n.startswith(labconst.NS_PREFIX)]


def is_lab_nspawn(proc: Proc) -> bool:
    """An nspawn (or its helper child) started by the lab, judged by its command line alone."""
    if not proc.cmdline or not os.path.basename(proc.cmdline[0]).startswith("systemd-nspawn"):
        return False
    needles = (str(labconst.RUN_DIR), f"{NETNS_DIR}/{labconst.NS_PREFIX}", str(labconst.CACHE_DIR))
    return any(n in arg for arg in proc.cmdline for n in needles)


def has_marker(proc: Proc) -> bool:
    return any(PROCESS_MARKER in arg for arg in proc.cmdline)


def _pids_from_files(pidfiles: Iterable[Path]) -> list[int]:
    pids = []
    for pidfile in pidfiles:
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            continue
        # Only trust a pid file if the pid still is an nspawn: pids are reused after a crash.
        try:
            argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if os.path.basename(argv0.decode(errors="replace")).startswith("systemd-nspawn"):
            pids.append(pid)
    return pids


def stop_containers(pidfiles: Iterable[Path] | None = None) -> None:
    """Power off lab containers. With `pidfiles`, only those; otherwise every lab nspawn found."""
    if pidfiles is not None:
        pids = _pids_from_files(pidfiles)
    else:
        pids = _pids_from_files((labconst.RUN_DIR / "hosts").glob("*/nspawn.pid"))
        pids += [p.pid for p in processes() if is_lab_nspawn(p)]
    pids = sorted(set(pids) - own_lineage())
    if pids:
        # nspawn turns SIGTERM into a clean poweroff of the container (SIGRTMIN+3 to its systemd).
        log.info("stopping %d container(s)", len(pids))
        survivors = terminate(pids, CONTAINER_STOP_GRACE, "containers")
        if survivors:
            log.warning("nspawn process(es) %s survived SIGKILL", survivors)


def _kill_namespace_residents(inodes: set[int]) -> None:
    """SIGKILL whatever still lives in a lab namespace (e.g. a container whose nspawn was killed:
    its systemd keeps running, orphaned, until its PID namespace's init dies)."""
    mine = own_lineage()
    for _attempt in range(3):
        residents = [p.pid for p in processes() if p.netns in inodes and p.pid not in mine]
        if not residents:
            return
        log.info("killing %d leftover process(es) inside lab namespaces", len(residents))
        signal_pids(residents, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(pid_alive(p) for p in residents):
            time.sleep(0.05)


def stop_marked_processes() -> None:
    mine = own_lineage()
    pids = [p.pid for p in processes() if has_marker(p) and p.pid not in mine]
    if pids:
        log.info("stopping %d lab service process(es)", len(pids))
        terminate(pids, 5.0, "lab services")


def _delete_netns(name: str) -> None:
    proc = run(["ip", "netns", "delete", name], check=False)
    if proc.returncode != 0:
        log.info("ip netns delete %s: %s; removing its handle by hand", name, proc.stderr.strip())
        # A half-made namespace (crash between mount and bind) may refuse; drop its handle by hand.
        unmount_under(NETNS_DIR / name)
        try:
            (NETNS_DIR / name).unlink(missing_ok=True)
        except OSError as exc:  # EBUSY while a dying mount namespace still holds a copy of it
            log.info("cannot remove %s yet: %s", NETNS_DIR / name, exc)


def _remove_namespaces_and_links(settle: float = 10.0) -> None:
    """Delete lab namespaces and root-namespace links until none is left. Namespace and veth
    teardown in the kernel is asynchronous (a just-killed container's mount namespace can still pin
    a handle for a moment), so one pass is not always enough."""
    deadline = time.monotonic() + settle
    while True:
        names, links = lab_netns_names(), lab_links()
        if not names and not links:
            return
        for name in names:
            _delete_netns(name)
        for link in links:
            run(["ip", "link", "delete", link], check=False)
        if time.monotonic() > deadline:
            return
        time.sleep(0.1)


def leftovers() -> dict[str, list[str]]:
    """What of the lab still exists; empty lists mean a clean machine."""
    inodes = lab_netns_inodes()
    mine = own_lineage()
    procs = [
        f"{p.pid} {' '.join(p.cmdline)[:120]}"
        for p in processes()
        if (is_lab_nspawn(p) or has_marker(p) or p.netns in inodes) and p.pid not in mine
    ]
    points = [labconst.RUN_DIR, *labconst.CACHE_DIR.glob("image-*")]
    mounts = [m for prefix in points for m in mounts_under(prefix)]
    return {
        "namespaces": lab_netns_names(),
        "links": lab_links(),
        "processes": procs,
        "mounts": mounts,
        "run_dir": [str(labconst.RUN_DIR)] if labconst.RUN_DIR.exists() else [],
    }


def down() -> dict[str, list[str]]:
    """Remove every trace of the on-prem side (and stop the lab's marked service processes).
    Returns what could not be removed (see `leftovers`)."""
    stop_containers()
    stop_marked_processes()
    _kill_namespace_residents(lab_netns_inodes())
    for prefix in (labconst.RUN_DIR, *labconst.CACHE_DIR.glob("image-*")):
        for point in unmount_under(prefix):
            log.info("unmounted %s", point)
    for lockref in (labconst.RUN_DIR / "hosts").glob("*/nspawn.lock"):
        lock = Path(lockref.read_text().strip())
        if lock.parent == NSPAWN_LOCKS:  # never follow a pid-file-style pointer anywhere else
            lock.unlink(missing_ok=True)
    if NSPAWN_PROPAGATE.is_dir():
        for stale in NSPAWN_PROPAGATE.glob(f"{labconst.NS_PREFIX}*"):
            shutil.rmtree(stale, ignore_errors=True)
    _remove_namespaces_and_links()
    if labconst.RUN_DIR.exists():
        shutil.rmtree(labconst.RUN_DIR, ignore_errors=True)
    left = {k: v for k, v in leftovers().items() if v}
    if left:
        log.warning("lab teardown left: %s", left)
    else:
        log.info("lab is down: no namespace, link, process, mount or run dir left")
    return left
