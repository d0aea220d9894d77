"""Network-namespace plumbing for the VPC side: addresses on the VPC interface (via `ip -n`) and
sockets created inside the VPC namespace by one dedicated thread.

Why a thread: a socket belongs to the network namespace it was created in, for its whole life. The
follower stays in the root namespace (it must reach the emulator on 127.0.0.1), and one thread
enters the VPC namespace with setns(2) — per-thread, so the other threads are unaffected — and
creates every listening socket there. Python 3.11 has no os.setns, hence ctypes on libc.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import queue
import socket
import subprocess
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

log = logging.getLogger(__name__)

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"  # where `ip netns add` keeps the namespace handles
# Endpoint and resolver addresses are added as /32 beside the interface's base /16 address. The /16
# route of the base address already covers replies to the router, so a /32 adds no route and no
# prefix; and a /32 is never a "secondary" of the /16, so deleting one address can never take the
# others down with it (the kernel flushes secondaries when their primary goes). It also tells our
# addresses apart from the base one when cleaning up after a crash.
ADDRESS_PREFIX_LEN = 32

_libc = ctypes.CDLL(None, use_errno=True)


def setns(path: str, nstype: int = CLONE_NEWNET) -> None:
    """Move the calling thread into the namespace at `path`."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, nstype) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


def netns_path(name: str) -> str:
    return os.path.join(NETNS_DIR, name)


class NetnsExecutor:
    """Runs callables on one thread that lives in network namespace `name` (or, with name None, in
    the caller's namespace — for tests on loopback without root)."""

    def __init__(self, name: str | None):
        self.name = name
        self._queue: queue.Queue[tuple[Callable[[], Any], Future] | None] = queue.Queue()
        self._ready: Future = Future()
        self._thread = threading.Thread(target=self._run, name=f"netns-{name or 'here'}", daemon=True)
        self._thread.start()
        self._ready.result(timeout=10)  # raises if setns failed

    def _run(self) -> None:
        try:
            if self.name is not None:
                setns(netns_path(self.name))
        except BaseException as exc:
            self._ready.set_exception(exc)
            return
        self._ready.set_result(True)
        while (item := self._queue.get()) is not None:
            fn, future = item
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

    def call(self, fn: Callable[[], Any], timeout: float = 10) -> Any:
        future: Future = Future()
        self._queue.put((fn, future))
        return future.result(timeout=timeout)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)

    def tcp_listener(self, ip: str, port: int, backlog: int = 128) -> socket.socket:
        def make() -> socket.socket:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((ip, port))
                sock.listen(backlog)
            except OSError:
                sock.close()
                raise
            return sock

        return self.call(make)

    def udp_socket(self, ip: str, port: int) -> socket.socket:
        def make() -> socket.socket:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((ip, port))
            except OSError:
                sock.close()
                raise
            return sock

        return self.call(make)


def _ip(netns: str, *args: str) -> str:
    cmd = ["ip", "-n", netns, *args]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` failed: {result.stderr.strip() or result.returncode}")
    return result.stdout


def managed_addresses(netns: str, iface: str) -> set[str]:
    """IPv4 addresses on `iface` that the VPC side added (the /32s, see ADDRESS_PREFIX_LEN)."""
    data = json.loads(_ip(netns, "-j", "addr", "show", "dev", iface) or "[]")
    found = set()
    for link in data:
        for addr in link.get("addr_info", []):
            if addr.get("family") == "inet" and addr.get("prefixlen") == ADDRESS_PREFIX_LEN:
                found.add(addr["local"])
    return found


def add_address(netns: str, iface: str, ip: str) -> None:
    # nodad does not apply to IPv4; IPv4 addresses are usable as soon as they are added.
    _ip(netns, "addr", "add", f"{ip}/{ADDRESS_PREFIX_LEN}", "dev", iface)
    log.info("added %s/%d on %s in %s", ip, ADDRESS_PREFIX_LEN, iface, netns)


def del_address(netns: str, iface: str, ip: str) -> None:
    _ip(netns, "addr", "del", f"{ip}/{ADDRESS_PREFIX_LEN}", "dev", iface)
    log.info("removed %s/%d from %s in %s", ip, ADDRESS_PREFIX_LEN, iface, netns)
