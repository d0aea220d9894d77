"""Small wrappers over the Linux facilities the on-prem side drives: commands, /proc, mounts.

Kept apart from the lab logic so the pure parts (address plan, command lists) stay testable
without root, and so cleanup can reuse the same process and mount scans the builders use.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


class OnpremError(RuntimeError):
    """A step of the on-prem lab failed; the message says which and what to do."""


def run(
    cmd: Sequence[str], *, check: bool = True, timeout: float | None = 120, input_text: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `cmd` (no shell); on failure raise OnpremError carrying the command and its stderr."""
    log.debug("run: %s", " ".join(cmd))
    try:
        proc = subprocess.run(
            list(cmd), capture_output=True, text=True, timeout=timeout, input=input_text, check=False
        )
    except FileNotFoundError as exc:
        raise OnpremError(f"command not found: {cmd[0]} (install it; see the lab README)") from exc
    except subprocess.TimeoutExpired as exc:
        raise OnpremError(f"command timed out after {timeout}s: {' '.join(cmd)}") from exc
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        raise OnpremError(f"command failed (exit {proc.returncode}): {' '.join(cmd)}: {detail}")
    return proc


@dataclass(frozen=True)
class Proc:
    """One process as seen in /proc; `netns` is the inode of its network namespace (0 if unknown)."""

    pid: int
    ppid: int
    state: str
    cmdline: tuple[str, ...]
    netns: int


def _read_proc(pid: int) -> Proc | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None  # exited while we looked
    # comm (field 2) may contain spaces and parens; the fields after the last ")" are fixed.
    after = stat.rsplit(")", 1)[1].split()
    try:
        netns = os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        netns = 0
    args = tuple(a.decode(errors="replace") for a in raw.split(b"\0") if a)
    return Proc(pid=pid, ppid=int(after[1]), state=after[0], cmdline=args, netns=netns)


def processes() -> Iterator[Proc]:
    """Every live process (zombies excluded: they hold nothing and cannot be killed)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            proc = _read_proc(int(entry))
            if proc is not None and proc.state != "Z":
                yield proc


def pid_alive(pid: int) -> bool:
    """True while `pid` runs. A zombie counts as gone; if it is our child we reap it here."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass  # not our child: look at /proc instead
    proc = _read_proc(pid)
    return proc is not None and proc.state != "Z"


def own_lineage() -> set[int]:
    """This process and its ancestors: never signalled by cleanup, whatever their command lines say."""
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        proc = _read_proc(pid)
        if proc is None:
            break
        pid = proc.ppid
    return pids


def signal_pids(pids: Sequence[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def terminate(pids: Sequence[int], grace: float, what: str) -> list[int]:
    """SIGTERM `pids`, wait up to `grace` seconds, SIGKILL what is left; return pids that survived."""
    pids = [p for p in pids if pid_alive(p)]
    if not pids:
        return []
    signal_pids(pids, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.1)
    left = [p for p in pids if pid_alive(p)]
    if left:
        log.info("%s: %d process(es) ignored SIGTERM for %.0fs, killing", what, len(left), grace)
        signal_pids(left, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(pid_alive(p) for p in left):
            time.sleep(0.05)
    return [p for p in left if pid_alive(p)]


def _unescape_mount(path: str) -> str:
    # /proc/mounts escapes space, tab, newline and backslash as octal.
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        path = path.replace(code, char)
    return path


def mountpoints() -> list[str]:
    """Mount points of this mount namespace, in mount order."""
    lines = Path("/proc/self/mounts").read_text().splitlines()
    return [_unescape_mount(line.split()[1]) for line in lines if line.strip()]


def mounts_under(prefix: Path, points: Sequence[str] | None = None) -> list[str]:
    """Mount points at or below `prefix`, deepest first (the order they must be unmounted in)."""
    base = str(prefix).rstrip("/")
    found = [
        p for p in (mountpoints() if points is None else points) if p == base or p.startswith(base + "/")
    ]
    return sorted(set(found), key=lambda p: p.count("/"), reverse=True)


def unmount_under(prefix: Path) -> list[str]:
    """Unmount everything at or below `prefix` (lazily, so a busy mount cannot block cleanup)."""
    done = []
    for _mount in range(5):  # stacked mounts on one point need one umount each
        points = mounts_under(prefix)
        if not points:
            break
        for point in points:
            proc = run(["umount", "-l", point], check=False)
            if proc.returncode == 0:
                done.append(point)
            else:
                log.warning("could not unmount %s: %s", point, proc.stderr.strip())
    return done
