"""HTTPS front of the interface endpoints: terminates TLS on an endpoint ENI IP with a certificate
chosen by SNI (issued on the fly by the lab CA) and forwards each HTTP/1.1 request to the emulator.

Requests pass through unchanged (method, path, headers, body, chunked framing) except:
  - Host is rewritten where moto cannot route the endpoint-specific forms (`rewrite_host`);
  - `Expect: 100-continue` is answered here and not forwarded (the emulator's HTTP server does not
    implement it, and boto3 waits for the 100 before sending S3 bodies);
  - `X-Forwarded-For: <client ip>` is appended, so the emulator can tell hosts apart.
Responses stream back as they arrive; hop-by-hop headers are re-framed for the client connection.

Security groups: a connection is served only when one of the endpoint's groups admits TCP 443 from
the client. Otherwise it is closed at once; real AWS silently drops the SYN, so a real client
times out where the lab's client sees a reset/EOF — faster tests, same verdict.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import re
import socket
import ssl
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import labca

from vpcside.policy import https_allowed
from vpcside.state import Snapshot

log = logging.getLogger(__name__)

_REGION = r"[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d+"
# vpce-<id>-<suffix>[-<az>].<service>.<region>.vpce.amazonaws.com, optionally below a first label
# (bucket., accesspoint., control.) for S3.
_VPCE_HOST = re.compile(
    rf"^(?:(?P<prefix>[a-z0-9-]+)\.)?vpce-[0-9a-f]+-[0-9a-z]+(?:-{_REGION}[a-z])?"
    rf"\.(?P<service>[a-z0-9-]+(?:\.[a-z0-9-]+)*?)\.(?P<region>{_REGION})\.vpce\.amazonaws\.com$"
)
_VALID_SNI = re.compile(r"^(?:\*\.)?[a-z0-9-]+(?:\.[a-z0-9-]+)*$")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "upgrade", "trailer"}
NO_BODY_STATUS = {204, 304}
IO_BLOCK = 64 * 1024
CLIENT_IDLE_TIMEOUT = 60.0
HANDSHAKE_TIMEOUT = 10.0
MAX_LINE = 65536


def rewrite_host(host: str) -> str:
    """The Host header to forward for `host` (port kept): endpoint-specific names become the regional
    service name moto routes; every other name is returned unchanged.

    vpce-….ssm.<r>.vpce.amazonaws.com         → ssm.<r>.amazonaws.com
    bucket.vpce-….s3.<r>.vpce.amazonaws.com   → s3.<r>.amazonaws.com (the URL is path-style)
    """
    name, sep, port = host.partition(":")
    match = _VPCE_HOST.match(name.lower().rstrip("."))
    if match is None:
        return host
    service, region, prefix = match["service"], match["region"], match["prefix"]
    if prefix is not None and service != "s3":
        return host  # only S3 endpoint names have names below them
    return f"{service}.{region}.amazonaws.com" + (sep + port if sep else "")


class CertStore:
    """SSL server contexts per server name, certificates issued by the lab CA on first use."""

    def __init__(self, ca_dir: Path | None = None, max_entries: int = 1024):
        self.ca_dir = ca_dir
        self.max_entries = max_entries
        self._contexts: OrderedDict[str, ssl.SSLContext] = OrderedDict()
        self._lock = threading.Lock()
        self.issued = 0  # certificates issued so far; the tests check the cache with it

    def context_for(self, name: str) -> ssl.SSLContext:
        name = name.lower().rstrip(".")
        with self._lock:
            ctx = self._contexts.get(name)
            if ctx is not None:
                self._contexts.move_to_end(name)
                return ctx
        cert_pem, key_pem = labca.issue_cert([name], ca_dir=self.ca_dir)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_alpn_protocols(["http/1.1"])  # never let a client pick h2: we speak HTTP/1.1
        with tempfile.TemporaryDirectory(prefix="holab-cert-") as tmp:  # load_cert_chain wants files
            cert_file, key_file = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
            cert_file.write_bytes(cert_pem)
            key_file.touch(mode=0o600)
            key_file.write_bytes(key_pem)
            ctx.load_cert_chain(cert_file, key_file)
        with self._lock:
            self.issued += 1
            self._contexts[name] = ctx
            while len(self._contexts) > self.max_entries:
                self._contexts.popitem(last=False)
        log.debug("issued certificate for %s", name)
        return ctx

    def server_context(self, default_name: str) -> ssl.SSLContext:
        """A context presenting `default_name` (clients without SNI) that switches by SNI."""
        base = self.context_for(default_name)

        def pick(sslobj: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
            if server_name and _VALID_SNI.match(server_name.lower()) and len(server_name) <= 253:
                sslobj.context = self.context_for(server_name)
            return None

        base.sni_callback = pick
        return base


class _ClientGone(Exception):
    pass


def _read_line(rfile) -> bytes:
    try:
        line = rfile.readline(MAX_LINE + 1)
    except OSError as exc:  # the client side failed, not the emulator
        raise _ClientGone() from exc
    if len(line) > MAX_LINE:
        raise ValueError("header line too long")
    return line


class HttpsFront:
    """TLS + HTTP forwarding on one listening socket bound to one endpoint ENI IP."""

    def __init__(
        self,
        sock: socket.socket,
        local_ip: str,
        get_snapshot: Callable[[], Snapshot],
        certs: CertStore,
        upstream: tuple[str, int],
        sg_check: bool = True,
    ):
        self.sock = sock
        self.local_ip = local_ip
        self.get_snapshot = get_snapshot
        self.certs = certs
        self.upstream = upstream
        self.sg_check = sg_check
        # Certificate for clients that send no SNI: the ENI's address itself.
        self.context = certs.server_context(local_ip)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.sock.settimeout(0.5)  # lets the accept loop notice stop()
        self._thread = threading.Thread(target=self._accept_loop, name=f"https-{self.local_ip}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        # Wakes a blocked accept() at once (Linux), instead of waiting for its timeout.
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=3)
        self.sock.close()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, addr = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                if not self._stop.is_set():
                    log.exception("https %s: accept failed", self.local_ip)
                return
            threading.Thread(target=self._serve, args=(conn, addr[0]), daemon=True).start()

    def allowed(self, client_ip: str) -> bool:
        if not self.sg_check:
            return True
        ok = https_allowed(self.get_snapshot(), self.local_ip, client_ip)
        if not ok:
            log.info("https %s from %s: not allowed by security groups, closing", self.local_ip, client_ip)
        return ok

    def _serve(self, conn: socket.socket, client_ip: str) -> None:
        if not self.allowed(client_ip):
            conn.close()
            return
        try:
            conn.settimeout(HANDSHAKE_TIMEOUT)
            tls = self.context.wrap_socket(conn, server_side=True)
        except (OSError, ssl.SSLError) as exc:
            log.info("https %s from %s: TLS handshake failed: %s", self.local_ip, client_ip, exc)
            conn.close()
            return
        tls.settimeout(CLIENT_IDLE_TIMEOUT)
        upstream = http.client.HTTPConnection(*self.upstream, timeout=120)
        rfile = tls.makefile("rb")
        try:
            while self._serve_one(tls, rfile, upstream, client_ip):
                pass
        except (_ClientGone, OSError, ssl.SSLError, TimeoutError):
            pass
        except Exception:
            log.exception("https %s from %s: request failed", self.local_ip, client_ip)
        finally:
            upstream.close()
            rfile.close()
            with contextlib.suppress(OSError):
                tls.close()

    def _serve_one(
        self, tls: ssl.SSLSocket, rfile, upstream: http.client.HTTPConnection, client_ip: str
    ) -> bool:
        """Forward one request and its response; True when the client connection stays open."""
        line = _read_line(rfile)
        if not line:
            return False
        try:
            method, target, version = line.decode("latin-1").rstrip("\r\n").split(" ")
        except ValueError:
            self._simple_response(tls, 400, "malformed request line")
            return False
        headers = http.client.parse_headers(rfile)
        keep_alive = _client_keeps_alive(version, headers.get("Connection", ""))
        chunked = "chunked" in headers.get("Transfer-Encoding", "").lower()
        length = int(headers.get("Content-Length", "0") or 0) if not chunked else None
        if headers.get("Expect", "").lower() == "100-continue":
            tls.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")

        upstream_host = rewrite_host(headers.get("Host", ""))
        try:
            upstream.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            for key, value in headers.items():
                lower = key.lower()
                if lower == "host":
                    value = upstream_host
                elif lower == "expect" or (lower in HOP_BY_HOP and lower != "transfer-encoding"):
                    continue
                upstream.putheader(key, value)
            upstream.putheader("X-Forwarded-For", client_ip)
            upstream.endheaders()
            if chunked:
                self._pass_chunked(rfile, upstream)
            else:
                _copy_exact(rfile, upstream, length or 0)
            response = upstream.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            log.warning("https %s: emulator %s:%d unreachable: %s", self.local_ip, *self.upstream, exc)
            upstream.close()
            self._simple_response(tls, 502, f"lab emulator unreachable: {exc}")
            return False
        try:
            self._relay_response(tls, method, response, keep_alive)
        finally:
            response.close()
            if response.will_close:
                upstream.close()  # HTTPConnection reopens on the next request
        log.debug("https %s %s %s %s -> %d", client_ip, method, upstream_host, target, response.status)
        return keep_alive

    @staticmethod
    def _pass_chunked(rfile, upstream: http.client.HTTPConnection) -> None:
        # Chunk framing and trailers are forwarded as they come, so bodies of any size stream.
        while True:
            size_line = _read_line(rfile)
            if not size_line:
                raise _ClientGone()
            upstream.send(size_line)
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while True:  # trailers, ended by an empty line
                    trailer = _read_line(rfile)
                    if not trailer:
                        raise _ClientGone()
                    upstream.send(trailer)
                    if trailer in (b"\r\n", b"\n"):
                        return
            _copy_exact(rfile, upstream, size + 2)  # data + CRLF

    @staticmethod
    def _relay_response(
        tls: ssl.SSLSocket, method: str, response: http.client.HTTPResponse, keep_alive: bool
    ):
        has_body = method != "HEAD" and response.status not in NO_BODY_STATUS and response.status >= 200
        length = response.getheader("Content-Length")
        head = [f"HTTP/1.1 {response.status} {response.reason}"]
        for key, value in response.msg.items():
            if key.lower() not in HOP_BY_HOP:
                head.append(f"{key}: {value}")
        use_chunked = has_body and length is None
        if use_chunked:
            head.append("Transfer-Encoding: chunked")
        head.append("Connection: keep-alive" if keep_alive else "Connection: close")
        tls.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        if not has_body:
            return
        while True:
            block = response.read1(IO_BLOCK)
            if not block:
                break
            tls.sendall(b"%x\r\n%s\r\n" % (len(block), block) if use_chunked else block)
        if use_chunked:
            tls.sendall(b"0\r\n\r\n")

    @staticmethod
    def _simple_response(tls: ssl.SSLSocket, status: int, text: str) -> None:
        body = (text + "\n").encode()
        reason = http.client.responses.get(status, "")
        with contextlib.suppress(OSError):
            tls.sendall(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
                f"Connection: close\r\n\r\n".encode()
                + body
            )


def _client_keeps_alive(version: str, connection: str) -> bool:
    tokens = {t.strip().lower() for t in connection.split(",")}
    if version == "HTTP/1.0":
        return "keep-alive" in tokens
    return "close" not in tokens


def _copy_exact(rfile, upstream: http.client.HTTPConnection, n: int) -> None:
    while n > 0:
        try:
            block = rfile.read(min(n, IO_BLOCK))
        except OSError as exc:
            raise _ClientGone() from exc
        if not block:
            raise _ClientGone()
        upstream.send(block)
        n -= len(block)
