"""The VPC-side follower: keeps the VPC namespace in step with the emulator.

About once a second it reads a `Snapshot`, puts every interface-endpoint ENI IP and every INBOUND
Resolver IP on the VPC interface, runs the HTTPS front on the ENI IPs and DNS on the resolver IPs,
and takes down addresses and listeners of endpoints that are gone. The process stays in the root
namespace (it reaches the emulator on 127.0.0.1); listening sockets are made by a `NetnsExecutor`
thread inside the VPC namespace. A status JSON is written for `lab status`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import labca
import labconst

from vpcside import PROCESS_MARKER, netns
from vpcside.front import CertStore, HttpsFront
from vpcside.resolver import DnsServer
from vpcside.state import Snapshot, make_session_clients, read_snapshot

log = logging.getLogger(__name__)


@dataclass
class FollowerConfig:
    netns: str = labconst.NS_VPC
    iface: str = labconst.VPC_IFACE
    emulator_url: str = labconst.EMULATOR_URL
    region: str = labconst.REGION
    vpc_id: str = labconst.VPC_ID
    status_file: Path = labconst.RUN_DIR / "vpcside.json"
    https_port: int = 443
    dns_port: int = 53
    interval: float = 1.0
    ca_dir: Path | None = None  # None: labconst.CA_DIR


class Follower:
    def __init__(self, config: FollowerConfig):
        self.config = config
        url = urlsplit(config.emulator_url)
        self.upstream = (url.hostname or labconst.EMULATOR_HOST, url.port or 80)
        self._snapshot = Snapshot(region=config.region, vpc_id=config.vpc_id)
        self._lock = threading.Lock()
        self.https: dict[str, HttpsFront] = {}
        self.dns: dict[str, DnsServer] = {}
        self.errors: dict[str, str] = {}  # what failed in the last round, by subject
        self.last_ok: float | None = None
        self.running = False
        self.executor: netns.NetnsExecutor | None = None
        self._netns_inode = 0
        self.certs = CertStore(config.ca_dir)
        self._clients = make_session_clients(config.emulator_url, config.region)

    def snapshot(self) -> Snapshot:
        with self._lock:
            return self._snapshot

    def start(self) -> None:
        labca.ensure_ca(self.config.ca_dir)
        if not os.path.exists(netns.netns_path(self.config.netns)):
            raise RuntimeError(
                f"network namespace {self.config.netns} does not exist; bring the lab network up first"
            )
        self.executor = netns.NetnsExecutor(self.config.netns)
        self._netns_inode = os.stat(netns.netns_path(self.config.netns)).st_ino
        self.running = True

    def _check_namespace(self) -> bool:
        """False while the namespace is missing. When it was deleted and made again (lab network
        rebuilt under a running follower), the listeners live in the dead one: start over."""
        try:
            inode = os.stat(netns.netns_path(self.config.netns)).st_ino
        except FileNotFoundError:
            self.errors["namespace"] = f"network namespace {self.config.netns} is gone"
            return False
        self.errors.pop("namespace", None)
        if inode != self._netns_inode:
            log.warning("namespace %s was recreated; rebuilding listeners in the new one", self.config.netns)
            self.shutdown(remove_addresses=False, final=False)
            self.executor = netns.NetnsExecutor(self.config.netns)
            self._netns_inode = inode
        return True

    def sync_once(self) -> None:
        """One round: read the emulator, then bring addresses and listeners in step with it."""
        self.errors.pop("emulator", None)
        try:
            snap = read_snapshot(region=self.config.region, vpc_id=self.config.vpc_id, clients=self._clients)
        except Exception as exc:
            # Keep serving from the last good snapshot: a restarting emulator must not take the
            # VPC side down with it.
            self.errors["emulator"] = f"cannot read {self.config.emulator_url}: {exc}"
            log.warning("%s", self.errors["emulator"])
            return
        with self._lock:
            self._snapshot = snap
        self.last_ok = time.time()
        if self._check_namespace():
            self.apply(snap)

    def apply(self, snap: Snapshot) -> None:
        cfg = self.config
        want_https, want_dns = snap.endpoint_ips(), snap.inbound_resolver_ips()
        want = want_https | want_dns
        have = netns.managed_addresses(cfg.netns, cfg.iface)
        for ip in list(self.https):
            if ip not in want_https:
                self.https.pop(ip).stop()
                log.info("stopped https on %s", ip)
        for ip in list(self.dns):
            if ip not in want_dns:
                self.dns.pop(ip).stop()
                log.info("stopped dns on %s", ip)
        for ip in sorted(have - want):
            self._attempt(ip, netns.del_address, cfg.netns, cfg.iface, ip)
        for ip in sorted(want - have):
            self._attempt(ip, netns.add_address, cfg.netns, cfg.iface, ip)
        for ip in sorted(want_https - set(self.https)):
            self._attempt(ip, self._start_https, ip)
        for ip in sorted(want_dns - set(self.dns)):
            self._attempt(ip, self._start_dns, ip)
        for subject in list(self.errors):
            if subject != "emulator" and subject not in want | have:
                del self.errors[subject]

    def _attempt(self, subject: str, fn, *args) -> None:
        try:
            fn(*args)
            self.errors.pop(subject, None)
        except Exception as exc:  # one bad address must not stop the others; retried next round
            self.errors[subject] = f"{getattr(fn, '__name__', fn)}: {exc}"
            log.error("%s: %s", subject, self.errors[subject])

    def _start_https(self, ip: str) -> None:
        assert self.executor is not None
        sock = self.executor.tcp_listener(ip, self.config.https_port)
        front = HttpsFront(sock, ip, self.snapshot, self.certs, self.upstream)
        front.start()
        self.https[ip] = front
        log.info("https on %s:%d", ip, self.config.https_port)

    def _start_dns(self, ip: str) -> None:
        assert self.executor is not None
        udp = self.executor.udp_socket(ip, self.config.dns_port)
        try:
            tcp = self.executor.tcp_listener(ip, self.config.dns_port)
        except OSError:
            udp.close()
            raise
        server = DnsServer(ip, udp, tcp, self.snapshot)
        server.start()
        self.dns[ip] = server
        log.info("dns on %s:%d (udp+tcp)", ip, self.config.dns_port)

    def status(self) -> dict:
        snap = self.snapshot()
        listeners = []
        for ip in sorted(self.https):
            endpoint = snap.endpoint_for_ip(ip)
            listeners.append(
                {
                    "ip": ip,
                    "port": self.config.https_port,
                    "proto": "tcp",
                    "kind": "https",
                    "endpoint_id": endpoint.endpoint_id if endpoint else None,
                    "service": endpoint.service_name if endpoint else None,
                }
            )
        for ip in sorted(self.dns):
            resolver = snap.inbound_resolver_for_ip(ip)
            for proto in ("udp", "tcp"):
                listeners.append(
                    {
                        "ip": ip,
                        "port": self.config.dns_port,
                        "proto": proto,
                        "kind": "dns",
                        "endpoint_id": resolver.endpoint_id if resolver else None,
                    }
                )
        try:
            addresses = sorted(netns.managed_addresses(self.config.netns, self.config.iface))
        except Exception as exc:
            addresses = []
            self.errors["namespace"] = str(exc)
        return {
            "marker": PROCESS_MARKER,
            "pid": os.getpid(),
            "running": self.running,
            "netns": self.config.netns,
            "iface": self.config.iface,
            "emulator_url": self.config.emulator_url,
            "vpc_id": self.config.vpc_id,
            "updated_at": time.time(),
            "last_snapshot_at": self.last_ok,
            "addresses": addresses,
            "listeners": listeners,
            "certificates_issued": self.certs.issued,
            "errors": dict(self.errors),
        }

    def write_status(self) -> None:
        path = Path(self.config.status_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(self.status(), indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)  # `lab status` never reads half a file

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                self.sync_once()
            except Exception:
                log.exception("sync round failed")
            try:
                self.write_status()
            except OSError as exc:
                log.error("cannot write status %s: %s", self.config.status_file, exc)
            stop.wait(max(0.0, self.config.interval - (time.monotonic() - started)))

    def shutdown(self, remove_addresses: bool = True, final: bool = True) -> None:
        self.running = not final
        for front in self.https.values():
            front.stop()
        for server in self.dns.values():
            server.stop()
        self.https.clear()
        self.dns.clear()
        if remove_addresses:
            try:
                for ip in netns.managed_addresses(self.config.netns, self.config.iface):
                    netns.del_address(self.config.netns, self.config.iface, ip)
            except Exception as exc:  # the namespace may already be gone (lab down)
                log.info("not removing addresses: %s", exc)
        if self.executor is not None:
            self.executor.close()
            self.executor = None
        if final:
            with contextlib.suppress(OSError):
                self.write_status()
