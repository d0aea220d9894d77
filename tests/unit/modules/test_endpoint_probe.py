"""endpoint_probe: its logic run locally against real sockets on 127.0.0.1 (a TLS server with a throwaway CA,
a refused port, a listener whose backlog is full), with the resolver injected, and once through Ansible."""

from __future__ import annotations

import datetime as dt
import email.utils
import ipaddress
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

MODULE = "endpoint_probe"
REGION = "eu-west-1"


# --- a throwaway CA and a small HTTPS server ------------------------------------------------------------------


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(tmp: Path):
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(_name("preflight test CA")).issuer_name(_name("preflight test CA"))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    bundle = tmp / "ca.pem"
    bundle.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert, bundle


def make_server_cert(tmp: Path, ca_key, ca_cert, names):
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    sans = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder().subject_name(_name(names[0])).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_file, key_file = tmp / "server.pem", tmp / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


class HttpsServer:
    """HTTPS on 127.0.0.1: ``mode`` ok (answers with a Date ``clock_offset`` s off), close (accepts and closes at
    once, as the lab front does for a security group without 443), silent (accepts, never speaks)."""

    def __init__(self, cert_file, key_file, mode="ok", clock_offset=0.0):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert_file, key_file)
        self.mode = mode
        self.clock_offset = clock_offset
        self.requests = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stopped = False
        self.held = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while not self.stopped:
            try:
                conn, _peer = self.sock.accept()
            except OSError:
                return
            if self.mode == "close":
                conn.close()
                continue
            if self.mode == "silent":
                self.held.append(conn)
                continue
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn):
        try:
            conn.settimeout(5)
            tls = self.context.wrap_socket(conn, server_side=True)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = tls.recv(4096)
                if not chunk:
                    return
                data += chunk
            method, path = data.split(b" ", 2)[:2]
            self.requests.append((method.decode(), path.decode()))
            status = "200 OK" if path == b"/" or b"amazon-ssm-agent" in path else "404 Not Found"
            # S3's SlowDown: /slowdown/ paths answer 503 to their first two requests, /always503/ to all.
            if path.startswith(b"/slowdown/") and sum(1 for r in self.requests if r[1] == path.decode()) <= 2:
                status = "503 Slow Down"
            if path.startswith(b"/always503/"):
                status = "503 Slow Down"
            # A busy endpoint: /slowfirst/ paths keep their first request waiting 2 s, /alwaysslow/ every request.
            if (path.startswith(b"/slowfirst/") and sum(1 for r in self.requests if r[1] == path.decode()) == 1
                    or path.startswith(b"/alwaysslow/")):
                time.sleep(2)
            date = email.utils.formatdate(time.time() + self.clock_offset, usegmt=True)
            tls.sendall(f"HTTP/1.1 {status}\r\nDate: {date}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
            tls.close()
        except (OSError, ssl.SSLError):
            conn.close()

    def stop(self):
        self.stopped = True
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pki")
    ca_key, ca_cert, bundle = make_ca(tmp)
    cert_file, key_file = make_server_cert(tmp, ca_key, ca_cert, ["localhost", f"ssm.{REGION}.amazonaws.com",
                                                                  f"*.s3.{REGION}.amazonaws.com"])
    return {"bundle": str(bundle), "cert": cert_file, "key": key_file}


@pytest.fixture
def https(pki):
    servers = []

    def start(mode="ok", clock_offset=0.0):
        server = HttpsServer(pki["cert"], pki["key"], mode, clock_offset)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def probe_module(plugin):
    return plugin("modules", MODULE)


def params(port, **extra):
    base = {
        "region": REGION, "services": ["ssm"], "agent_buckets": False, "extra_names": [], "vpc_cidrs": ["127.0.0.0/8"],
        "port": port, "timeout": 2.0, "ca_bundle": None, "package_url": None, "package_method": "HEAD",
        "clock_max_offset": 300, "clock_warn_offset": 60, "disk_min_free_mb": {"/var/lib": 1}, "workers": 4,
    }
    base.update(extra)
    return base


def fixed_resolver(table):
    def resolve(name, port):
        if name not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(table[name])
    return resolve


def make_probe(mod, tmp_path, port, resolver, **extra):
    os_release = tmp_path / "os-release"
    if not os_release.exists():
        os_release.write_text('ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n')
    return mod.Probe(params(port, **extra), resolver=resolver, os_release_path=str(os_release), machine="x86_64",
                     resolv_conf=str(tmp_path / "resolv.conf"), free=lambda path: 10_000)


def by_kind(result, kind, name=None):
    return [c for c in result["checks"] if c["kind"] == kind and (name is None or c["name"] == name)]


def codes(result):
    return [p["code"] for p in result["problems"]]


SSM = f"ssm.{REGION}.amazonaws.com"


# --- the happy path and each failure, as a user would see it -------------------------------------------------


def test_all_checks_pass_against_a_private_tls_endpoint(probe_module, https, pki, tmp_path):
    server = https()
    probe = make_probe(probe_module, tmp_path, server.port, fixed_resolver({SSM: ["127.0.0.1"]}),
                       ca_bundle=pki["bundle"])
    result, warnings = probe.run()
    assert result["ok"], result["problems"]
    assert [c["ok"] for c in result["checks"] if c["name"] == SSM] == [True, True, True]
    assert by_kind(result, "tls")[0]["http_status"] == 200
    assert abs(result["clock_offset"]) < 3
    assert result["platform"]["arch"] == "amd64" and result["platform"]["pkg"] == "deb"
    assert warnings == []
    assert ("GET", "/") in server.requests


def test_names_resolving_outside_the_vpc_are_public_with_the_s3_hint(probe_module, tmp_path):
    s3 = f"s3.{REGION}.amazonaws.com"
    resolver = fixed_resolver({SSM: ["10.0.1.10"], s3: ["203.0.113.9"]})
    probe = make_probe(probe_module, tmp_path, 1, resolver, services=["ssm", "s3"], vpc_cidrs=["10.0.0.0/16"],
                       timeout=0.5)
    probe.connect = lambda address, port, timeout: (_none for _none in ()).throw(ConnectionRefusedError())
    result, _warnings = probe.run()
    (public,) = [p for p in result["problems"] if p["name"] == s3]
    assert public["code"] == "dns_public_s3"
    assert "S3 resolves public: no private DNS for S3" in public["problem"] and "203.0.113.9" in public["problem"]
    assert "hosted zone" in public["hint"]
    # No TCP attempt to a public address on a closed network.
    assert by_kind(result, "tcp443", s3)[0]["ok"] is None


def test_unresolvable_name_is_a_dns_problem(probe_module, tmp_path):
    probe = make_probe(probe_module, tmp_path, 1, fixed_resolver({}))
    result, _warnings = probe.run()
    assert codes(result)[0] == "dns_unresolved" and not result["ok"]
    assert "playbooks/onprem_dns.yml" in result["problems"][0]["hint"]


def test_refused_port_is_blocked_by_the_endpoint_sg(probe_module, tmp_path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now: connections are refused
    result, _warnings = make_probe(probe_module, tmp_path, port, fixed_resolver({SSM: ["127.0.0.1"]})).run()
    (tcp,) = by_kind(result, "tcp443")
    assert tcp["failures"] == [{"address": "127.0.0.1", "error": "refused"}]
    assert codes(result) == ["tcp_blocked"]
    assert f"TCP {port} blocked by the endpoint SG (or routing)" in result["problems"][0]["problem"]


def test_connect_that_never_completes_times_out(probe_module, tmp_path):
    # A listener that never accepts: once its backlog is full the kernel drops further SYNs, like a dropping SG.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    held = []
    try:
        for _i in range(4):
            client = socket.socket()
            client.settimeout(0.3)
            try:
                client.connect(("127.0.0.1", port))
                held.append(client)
            except OSError:
                client.close()
                break
        else:
            pytest.skip("this kernel accepts beyond the listen backlog")
        probe = make_probe(probe_module, tmp_path, port, fixed_resolver({SSM: ["127.0.0.1"]}), timeout=1.0)
        started = time.monotonic()
        result, _warnings = probe.run()
        assert time.monotonic() - started < 5
    finally:
        for client in held:
            client.close()
        listener.close()
    assert by_kind(result, "tcp443")[0]["failures"] == [{"address": "127.0.0.1", "error": "timeout"}]
    assert codes(result) == ["tcp_blocked"]


def test_every_address_is_connected_and_no_route_is_told_apart(probe_module, tmp_path):
    def connect(address, port, timeout):
        if address == "10.0.2.10":
            raise OSError(113, "No route to host")
        raise TimeoutError("timed out")

    probe = make_probe(probe_module, tmp_path, 443, fixed_resolver({SSM: ["10.0.1.10", "10.0.2.10"]}),
                       vpc_cidrs=["10.0.0.0/16"])
    probe.connect = connect
    result, _warnings = probe.run()
    assert by_kind(result, "tcp443")[0]["failures"] == [
        {"address": "10.0.1.10", "error": "timeout"}, {"address": "10.0.2.10", "error": "unreachable"}]
    assert codes(result) == ["tcp_blocked"]

    probe.connect = lambda address, port, timeout: (_none for _none in ()).throw(OSError(101, "Network is unreachable"))
    result, _warnings = probe.run()
    assert codes(result) == ["tcp_no_route"]


def test_untrusted_certificate_without_the_ca_bundle(probe_module, https, tmp_path):
    server = https()
    result, _warnings = make_probe(probe_module, tmp_path, server.port, fixed_resolver({SSM: ["127.0.0.1"]})).run()
    assert codes(result) == ["tls_untrusted"]
    assert "TLS: certificate not trusted (ca_bundle?) or wrong name" in result["problems"][0]["problem"]


def test_certificate_for_another_name_is_refused(probe_module, https, pki, tmp_path):
    server = https()
    other = f"kms.{REGION}.amazonaws.com"  # not in the server certificate
    result, _warnings = make_probe(probe_module, tmp_path, server.port, fixed_resolver({other: ["127.0.0.1"]}),
                                   services=["kms"], ca_bundle=pki["bundle"]).run()
    assert codes(result) == ["tls_untrusted"]


def test_connection_closed_before_tls_is_the_sg_verdict(probe_module, https, pki, tmp_path):
    server = https(mode="close")
    result, _warnings = make_probe(probe_module, tmp_path, server.port, fixed_resolver({SSM: ["127.0.0.1"]}),
                                   ca_bundle=pki["bundle"]).run()
    assert codes(result) == ["tcp_blocked"]
    assert "closed before the TLS handshake" in result["problems"][0]["problem"]


def test_tls_handshake_that_never_answers_times_out(probe_module, https, pki, tmp_path):
    server = https(mode="silent")
    result, _warnings = make_probe(probe_module, tmp_path, server.port, fixed_resolver({SSM: ["127.0.0.1"]}),
                                   ca_bundle=pki["bundle"], timeout=1.0).run()
    assert codes(result) == ["tls_timeout"]


@pytest.mark.parametrize(("offset", "problem", "warned"), [(-400, True, False), (90, False, True), (10, False, False)])
def test_clock_offset_from_the_date_header(probe_module, https, pki, tmp_path, offset, problem, warned):
    server = https(clock_offset=offset)
    result, warnings = make_probe(probe_module, tmp_path, server.port, fixed_resolver({SSM: ["127.0.0.1"]}),
                                  ca_bundle=pki["bundle"]).run()
    # The server is `offset` s off, so the host is -offset s off the server.
    assert abs(result["clock_offset"] + offset) <= 2
    assert ("clock_skew" in codes(result)) is problem
    assert bool(warnings) is warned
    if problem:
        (skew,) = [p for p in result["problems"] if p["code"] == "clock_skew"]
        assert skew["problem"].startswith("clock 40") and "fix NTP before registering" in skew["problem"]


def test_clock_unknown_when_no_endpoint_answers(probe_module, tmp_path):
    result, _warnings = make_probe(probe_module, tmp_path, 1, fixed_resolver({})).run()
    (clock,) = by_kind(result, "clock")
    assert clock["ok"] is None and result["clock_offset"] is None
    assert "clock_skew" not in codes(result)


def test_package_url_placeholders_and_status(probe_module, https, pki, tmp_path):
    server = https()
    url = f"https://localhost:{server.port}/amazon-ssm-{REGION}/latest/{{ssm_platform}}/amazon-ssm-agent.{{pkg}}"
    resolver = fixed_resolver({SSM: ["127.0.0.1"]})
    result, _warnings = make_probe(probe_module, tmp_path, server.port, resolver, ca_bundle=pki["bundle"],
                                   package_url=url).run()
    (package,) = by_kind(result, "package")
    assert package["ok"] and package["http_status"] == 200
    assert ("HEAD", f"/amazon-ssm-{REGION}/latest/debian_amd64/amazon-ssm-agent.deb") in server.requests

    missing = f"https://localhost:{server.port}/nothing/here.{{pkg}}"
    result, _warnings = make_probe(probe_module, tmp_path, server.port, resolver, ca_bundle=pki["bundle"],
                                   package_url=missing).run()
    assert codes(result) == ["package_unreachable"] and "HTTP 404" in result["problems"][0]["problem"]


def test_package_probe_retries_what_s3_asks_to_retry(probe_module, https, pki, tmp_path):
    server = https()
    resolver = fixed_resolver({SSM: ["127.0.0.1"]})
    flaky = f"https://localhost:{server.port}/slowdown/amazon-ssm-agent.{{pkg}}"
    result, _warnings = make_probe(probe_module, tmp_path, server.port, resolver, ca_bundle=pki["bundle"],
                                   package_url=flaky).run()
    (package,) = by_kind(result, "package")
    assert package["ok"] and package["detail"] == "HTTP 200 after 3 attempts", package
    assert "package_unreachable" not in codes(result)

    down = f"https://localhost:{server.port}/always503/amazon-ssm-agent.{{pkg}}"
    result, _warnings = make_probe(probe_module, tmp_path, server.port, resolver, ca_bundle=pki["bundle"],
                                   package_url=down).run()
    assert codes(result) == ["package_unreachable"] and "HTTP 503" in result["problems"][0]["problem"]
    assert sum(1 for r in server.requests if r[1].startswith("/always503/")) == 4


def test_package_probe_asks_again_when_the_answer_is_slow_but_not_when_it_cannot_connect(
        probe_module, https, pki, tmp_path):
    server = https()
    resolver = fixed_resolver({SSM: ["127.0.0.1"]})
    slow = f"https://localhost:{server.port}/slowfirst/amazon-ssm-agent.{{pkg}}"
    result, _warnings = make_probe(probe_module, tmp_path, server.port, resolver, ca_bundle=pki["bundle"],
                                   package_url=slow, timeout=1.0).run()
    (package,) = by_kind(result, "package")
    assert package["ok"] and package["detail"] == "HTTP 200 after 2 attempts", package

    silent = f"https://localhost:{server.port}/alwaysslow/amazon-ssm-agent.{{pkg}}"
    result, _warnings = make_probe(probe_module, tmp_path, server.port, resolver, ca_bundle=pki["bundle"],
                                   package_url=silent, timeout=1.0).run()
    assert codes(result) == ["package_unreachable"], result["problems"]
    assert "no answer within 1 s" in result["problems"][0]["problem"]
    assert sum(1 for r in server.requests if r[1].startswith("/alwaysslow/")) == 4

    # Nothing listens: refused at once, asked once.
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    result, _warnings = make_probe(probe_module, tmp_path, server.port, resolver, ca_bundle=pki["bundle"],
                                   package_url=f"https://localhost:{port}/amazon-ssm-agent.{{pkg}}", timeout=1.0).run()
    (package,) = by_kind(result, "package")
    assert package["ok"] is False and "after" not in package["detail"], package


OS_RELEASES = {
    "debian12": ('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n',
                 "debian", "deb"),
    "ubuntu": ('NAME="Ubuntu"\nVERSION_ID="24.04"\nID=ubuntu\nID_LIKE=debian\n', "debian", "deb"),
    "rocky9": ('NAME="Rocky Linux"\nVERSION_ID="9.4"\nID="rocky"\nID_LIKE="rhel centos fedora"\n', "rhel", "rpm"),
    "rhel8": ("NAME='Red Hat Enterprise Linux'\nVERSION_ID='8.10'\nID='rhel'\nID_LIKE='fedora'\n", "rhel", "rpm"),
    "al2023": ('NAME="Amazon Linux"\nVERSION_ID="2023"\nID="amzn"\nID_LIKE="fedora"\n', "amazon", "rpm"),
    "sles15": ('NAME="SLES"\nVERSION_ID="15.5"\nID="sles"\nID_LIKE="suse"\n', "suse", "rpm"),
    "alpine": ('NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.20.0\n', None, None),
}


@pytest.mark.parametrize("fixture", sorted(OS_RELEASES))
def test_os_release_fixtures(probe_module, tmp_path, fixture):
    text, family, pkg = OS_RELEASES[fixture]
    path = tmp_path / fixture
    path.write_text(text)
    info = probe_module.platform_info(probe_module.read_os_release(str(path)), "aarch64")
    assert (info["os_family"], info["pkg"], info["arch"]) == (family, pkg, "arm64")
    result, _warnings = probe_module.Probe(params(1), resolver=fixed_resolver({}), os_release_path=str(path),
                                           machine="aarch64", free=lambda p: 10_000).run()
    assert ("os_unsupported" in codes(result)) is (family is None)


@pytest.mark.parametrize(("machine", "arch"), [("x86_64", "amd64"), ("aarch64", "arm64"), ("i686", None),
                                               ("armv7l", None), ("s390x", None)])
def test_architectures(probe_module, tmp_path, machine, arch):
    probe = make_probe(probe_module, tmp_path, 1, fixed_resolver({}))
    probe.machine = machine
    result, _warnings = probe.run()
    assert result["platform"]["arch"] == arch
    if arch is None:
        (found,) = [p for p in result["problems"] if p["code"] == "arch_unsupported"]
        assert found["problem"] == f"unsupported architecture {machine}"


def test_disk_thresholds(probe_module, tmp_path):
    probe = make_probe(probe_module, tmp_path, 1, fixed_resolver({}), disk_min_free_mb={"/var/lib": 500, "/tmp": 50})
    probe.free = lambda path: 100
    result, _warnings = probe.run()
    (low,) = [p for p in result["problems"] if p["code"] == "disk_low"]
    assert low["name"] == "/var/lib" and low["problem"] == "only 100 MB free on /var/lib (need 500 MB)"


def test_free_space_of_a_missing_path_is_its_parent(probe_module, tmp_path):
    assert probe_module.free_mb(str(tmp_path / "not" / "there")) == probe_module.free_mb(str(tmp_path))


def test_default_names_cover_services_and_agent_buckets(probe_module):
    vpce = "bucket.vpce-1-a.s3.eu-west-1.vpce.amazonaws.com"
    probe = probe_module.Probe({"region": REGION, "vpc_cidrs": ["10.0.0.0/16"], "services": None,
                                "agent_buckets": True, "extra_names": [vpce]})
    names = probe.names()
    assert names[:7] == [f"{s}.{REGION}.amazonaws.com" for s in
                         ("ssm", "ssmmessages", "ec2messages", "kms", "s3", "logs", "monitoring")]
    assert f"amazon-ssm-{REGION}.s3.{REGION}.amazonaws.com" in names
    assert f"amazoncloudwatch-agent-{REGION}.s3.{REGION}.amazonaws.com" in names
    assert names[-1] == "bucket.vpce-1-a.s3.eu-west-1.vpce.amazonaws.com"


def test_nameservers_are_reported(probe_module, tmp_path):
    (tmp_path / "resolv.conf").write_text("# site\nsearch lab\nnameserver 172.16.10.53\nnameserver 10.1.1.1\n")
    result, _warnings = make_probe(probe_module, tmp_path, 1, fixed_resolver({})).run()
    assert result["nameservers"] == ["172.16.10.53", "10.1.1.1"]


def test_the_module_is_python36_syntax(probe_module):
    import ast

    for path in (Path(probe_module.__file__),
                 Path(probe_module.__file__).parents[1] / "module_utils" / "hybrid_preflight.py"):
        ast.parse(path.read_text(), feature_version=(3, 6))


# --- through Ansible, as the role runs it ------------------------------------------------------------------


def test_through_ansible_in_check_mode(run_module, https, pki, tools):
    server = https(clock_offset=400)
    args = {"region": REGION, "services": [], "agent_buckets": False, "extra_names": ["localhost"],
            "vpc_cidrs": ["127.0.0.0/8"], "port": server.port, "timeout": 3, "ca_bundle": pki["bundle"],
            "disk_min_free_mb": {"/tmp": 1}}
    result = run_module(MODULE, args, check=True, via="ansible")
    assert not result.get("failed"), result
    assert result["changed"] is False and result["ok"] is False
    assert [p["code"] for p in result["problems"]] == ["clock_skew"]
    assert [c["ok"] for c in result["checks"] if c["name"] == "localhost"] == [True, True, True]
    ansible_keys = {k for k in result if k.startswith("_ansible") or k == "action"}
    assert set(result) - tools.STANDARD_KEYS - ansible_keys == tools.return_keys(MODULE)


def test_bad_input_fails_before_probing(run_module):
    result = run_module(MODULE, {"region": REGION, "vpc_cidrs": ["10.0.0.0/33"]})
    assert result["failed"] and "vpc_cidrs must be CIDRs" in result["msg"]
    result = run_module(MODULE, {"region": REGION, "vpc_cidrs": ["10.0.0.0/16"], "ca_bundle": "/nonexistent.pem"})
    assert result["failed"] and "ca_bundle" in result["msg"]
