#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hybrid-onboard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Ansible's module layout: documentation before the imports. Runs on the managed host: standard library only,
# Python 3.6 syntax (RHEL 8's platform Python).
# ruff: noqa: E402

DOCUMENTATION = r"""
---
module: endpoint_probe
short_description: Check from an on-prem host that the AWS endpoints the agents need are reachable privately
version_added: 0.1.0
description:
  - Runs on the managed host (Python standard library only) and checks, for every name the SSM and CloudWatch
    agents use, that it resolves with the system resolver to addresses inside the VPC CIDRs, that TCP 443
    connects to every address, and that a TLS handshake with SNI and certificate verification succeeds.
  - Also checks, optionally, that the agent package URL answers HTTP 200; the host clock against the C(Date)
    header of the AWS endpoints' HTTPS answers; that OS and architecture are supported by the agents; and the
    free disk space.
  - Never changes anything and always reports C(changed=false); it runs the same in check mode.
  - Does not fail when a check fails; it returns C(ok), the per-check results and the problems, each with a
    hint, so the caller decides (the C(endpoint_preflight) role fails the host).
author:
  - hybrid-onboard maintainers (@hybrid-onboard)
options:
  region:
    description: AWS region; the regional service names are C(<service>.<region>.amazonaws.com).
    type: str
    required: true
  services:
    description: Short names of the services whose regional names are checked.
    type: list
    elements: str
    default: [ssm, ssmmessages, ec2messages, kms, s3, logs, monitoring]
  agent_buckets:
    description:
      - Also check the agents' download buckets by their virtual-hosted names,
        C(amazon-ssm-<region>.s3.<region>.amazonaws.com) and
        C(amazoncloudwatch-agent-<region>.s3.<region>.amazonaws.com).
    type: bool
    default: true
  extra_names:
    description:
      - Further names to check, e.g. the S3 endpoint-specific name
        C(bucket.vpce-<id>-<suffix>.s3.<region>.vpce.amazonaws.com).
    type: list
    elements: str
    default: []
  vpc_cidrs:
    description: CIDRs of the VPC; every address a name resolves to must be inside one of them.
    type: list
    elements: str
    required: true
  port:
    description: TCP port of the endpoints.
    type: int
    default: 443
  timeout:
    description: Seconds to wait for each TCP connect, TLS handshake, HTTP answer.
    type: float
    default: 5.0
  ca_bundle:
    description: PEM file of the CAs to trust for the endpoints' certificates; the system trust store when unset.
    type: path
  package_url:
    description:
      - URL of an agent package to fetch the headers of (expects HTTP 200); not checked when unset.
      - An answer of 500, 502, 503 or 504 (S3's InternalError and SlowDown), or no answer within O(timeout) to a
        request sent, is asked again, up to 4 attempts with backoff; only an error that stays is reported. A
        connection that cannot be made is reported at once.
      - C({arch}) (amd64, arm64), C({pkg}) (deb, rpm) and C({ssm_platform}) (C(debian_amd64), C(linux_arm64), ...)
        are replaced with this host's values.
    type: str
  package_method:
    description: HTTP method of the package check.
    type: str
    choices: [HEAD, GET]
    default: HEAD
  clock_max_offset:
    description: Seconds of clock offset to AWS above which the host fails (SigV4 rejects requests above 300 s).
    type: int
    default: 300
  clock_warn_offset:
    description: Seconds of clock offset above which a warning is given.
    type: int
    default: 60
  disk_min_free_mb:
    description: Minimum free space in MB per path (a missing path is measured at its nearest existing parent).
    type: dict
    default: {/var/lib: 500, /tmp: 200}
  workers:
    description: Names checked in parallel.
    type: int
    default: 8
notes:
  - Supports check mode; it never changes anything.
  - The clock offset is measured against the C(Date) header of the endpoints' HTTPS answers (AWS answers every
    HTTPS request with one), to one second.
seealso:
  - module: hybrid.onboard.dns_path_diagnosis
"""

EXAMPLES = r"""
- name: Probe the endpoints from every host
  hybrid.onboard.endpoint_probe:
    region: eu-west-1
    vpc_cidrs: [10.0.0.0/16]
    extra_names:
      - bucket.vpce-0a1b2c3d4e5f60718-abcdefgh.s3.eu-west-1.vpce.amazonaws.com
    package_url: >-
      https://bucket.vpce-0a1b2c3d4e5f60718-abcdefgh.s3.eu-west-1.vpce.amazonaws.com/amazon-ssm-eu-west-1/latest/{ssm_platform}/amazon-ssm-agent.{pkg}
  register: probe

- name: Show the problems
  ansible.builtin.debug:
    msg: "{{ probe.problems | map(attribute='problem') | list }}"
"""

RETURN = r"""
ok:
  description: Whether every check passed.
  returned: always
  type: bool
names:
  description: The names that were checked.
  returned: always
  type: list
  elements: str
checks:
  description:
    - One entry per check. C(kind) is C(dns), C(tcp443), C(tls), C(package), C(clock), C(os), C(arch) or C(disk);
      C(ok) is null for a check skipped because an earlier one failed.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The DNS name, URL, path, or C(clock)/C(os)/C(arch).
      type: str
    kind:
      description: Kind of check.
      type: str
    ok:
      description: Result; null when skipped.
      type: bool
    detail:
      description: What was seen.
      type: str
    addresses:
      description: Addresses (C(dns) - all resolved; C(tcp443) - those that connected).
      type: list
      elements: str
  sample:
    - {name: ssm.eu-west-1.amazonaws.com, kind: dns, ok: true, detail: "10.0.1.10, 10.0.2.10",
       addresses: [10.0.1.10, 10.0.2.10]}
problems:
  description: What is wrong, each with a hint saying what to do.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The name, URL or path concerned.
      type: str
    check:
      description: Kind of the failed check.
      type: str
    code:
      description: Stable code, e.g. C(dns_public_s3), C(tcp_blocked), C(tls_untrusted), C(clock_skew).
      type: str
    problem:
      description: The problem in words.
      type: str
    hint:
      description: What to do.
      type: str
clock_offset:
  description: Host clock minus AWS's clock in seconds (positive - the host is ahead); null when no endpoint answered.
  returned: always
  type: float
platform:
  description: OS and architecture of the host as the agents see them.
  returned: always
  type: dict
  contains:
    os_id:
      description: C(ID) of /etc/os-release.
      type: str
    os_version:
      description: C(VERSION_ID) of /etc/os-release.
      type: str
    os_name:
      description: C(PRETTY_NAME) of /etc/os-release.
      type: str
    os_family:
      description: C(debian), C(rhel), C(suse), C(amazon), or null when unsupported.
      type: str
    pkg:
      description: C(deb) or C(rpm).
      type: str
    machine:
      description: C(uname -m).
      type: str
    arch:
      description: C(amd64), C(arm64), or null when unsupported.
      type: str
nameservers:
  description: The nameservers of /etc/resolv.conf (the host's DNS path starts there).
  returned: always
  type: list
  elements: str
"""

import errno
import os
import platform
import socket
import ssl
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime

try:  # Python 3
    from urllib.error import HTTPError, URLError
    from urllib.request import HTTPSHandler, Request, build_opener
except ImportError:  # pragma: no cover - Python 2 is not a target
    pass

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hybrid.onboard.plugins.module_utils.hybrid_preflight import (
    DEFAULT_SERVICES,
    clock_problem,
    clock_warning,
    default_names,
    disk_problem,
    dns_problem,
    package_problem,
    platform_info,
    platform_problems,
    split_addresses,
    tcp_problem,
    tls_problem,
)

USER_AGENT = "hybrid-onboard-preflight/1"
# HTTP answers S3 gives for a moment (InternalError, SlowDown, gateway errors): the package probe asks again.
TRANSIENT_HTTP = (500, 502, 503, 504)
PACKAGE_ATTEMPTS = 4


def system_resolver(name, port):
    """Addresses of ``name`` from the system resolver (getaddrinfo: /etc/hosts, DNS, nsswitch), in order."""
    seen = []
    for _family, _type, _proto, _canon, sockaddr in socket.getaddrinfo(name, port, 0, socket.SOCK_STREAM):
        if sockaddr[0] not in seen:
            seen.append(sockaddr[0])
    return seen


def system_connect(address, port, timeout):
    return socket.create_connection((address, port), timeout=timeout)


def read_os_release(path="/etc/os-release"):
    """KEY=value pairs of an os-release file (quotes removed); {} when it does not exist."""
    fields = {}
    try:
        with open(path) as handle:
            lines = handle.read().splitlines()
    except (IOError, OSError):
        return fields
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        fields[key.strip()] = value.replace('\\"', '"').replace("\\$", "$").replace("\\\\", "\\")
    return fields


def read_nameservers(path="/etc/resolv.conf"):
    try:
        with open(path) as handle:
            words = [line.split() for line in handle]
    except (IOError, OSError):
        return []
    return [w[1] for w in words if len(w) > 1 and w[0] == "nameserver"]


def free_mb(path):
    """Free MB for unprivileged writers at ``path`` or its nearest existing parent."""
    while path and not os.path.exists(path):
        parent = os.path.dirname(path.rstrip("/")) or "/"
        if parent == path:
            break
        path = parent
    stat = os.statvfs(path or "/")
    return stat.f_bavail * stat.f_frsize // (1024 * 1024)


def tcp_error_kind(exc):
    if isinstance(exc, socket.timeout):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, OSError) and exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return "unreachable"
    return "error"


def tls_error_kind(exc):
    """verify (certificate), closed (reset/EOF right after connect), timeout, error."""
    text = str(exc)
    if getattr(ssl, "SSLCertVerificationError", None) and isinstance(exc, ssl.SSLCertVerificationError):
        return "verify"
    if isinstance(exc, getattr(ssl, "CertificateError", ())) or "CERTIFICATE_VERIFY_FAILED" in text:
        return "verify"
    if isinstance(exc, socket.timeout) or "timed out" in text:
        return "timeout"
    if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionResetError, BrokenPipeError)):
        return "closed"
    if "EOF" in text or "reset" in text.lower():
        return "closed"
    return "error"


def parse_http_head(data):
    """(status, headers) of the start of an HTTP response."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("iso-8859-1")
    lines = head.split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            key, value = line.split(":", 1)
            headers[key.strip().lower()] = value.strip()
    return status, headers


def http_date_offset(date_header, local_time):
    """Seconds the local clock is ahead of the server's ``Date`` (negative: behind); None when unparsable."""
    try:
        server = parsedate_to_datetime(date_header)
    except (TypeError, ValueError, IndexError):
        return None
    if server is None:
        return None
    # Date has whole seconds (truncated): the server's clock was, on average, half a second later.
    return local_time - (server.timestamp() + 0.5)


class Probe:
    """The checks, with the system pieces injectable (resolver, connect, clock, files) for tests."""

    def __init__(self, params, resolver=system_resolver, connect=system_connect, now=time.time,
                 os_release_path="/etc/os-release", machine=None, resolv_conf="/etc/resolv.conf", free=free_mb):
        self.params = params
        self.resolver = resolver
        self.connect = connect
        self.now = now
        self.os_release_path = os_release_path
        self.machine = machine if machine is not None else platform.machine()
        self.resolv_conf = resolv_conf
        self.free = free
        self.port = params.get("port") or 443
        self.timeout = float(params.get("timeout") or 5.0)
        self.cidrs = params["vpc_cidrs"]

    def names(self):
        params = self.params
        services = params.get("services")
        names = default_names(params["region"], DEFAULT_SERVICES if services is None else services,
                              params.get("agent_buckets", True))
        for name in params.get("extra_names") or []:
            if name not in names:
                names.append(name)
        return names

    def ssl_context(self):
        context = ssl.create_default_context(cafile=self.params.get("ca_bundle") or None)
        context.check_hostname = True
        context.verify_mode = ssl.CERT_REQUIRED
        return context

    # --- per name: DNS -> TCP -> TLS (+ HTTP Date) -------------------------------------------------------------

    def check_name(self, name):
        checks, problems, offsets = [], [], []
        try:
            addresses = list(self.resolver(name, self.port))
            error = None if addresses else "no addresses"
        except (socket.gaierror, socket.herror, OSError, UnicodeError) as exc:
            addresses, error = [], str(exc)
        inside, outside = split_addresses(addresses, self.cidrs)
        dns_ok = error is None and not outside
        checks.append({"name": name, "kind": "dns", "ok": dns_ok, "addresses": addresses, "outside": outside,
                       "detail": error or ", ".join(addresses)})
        if not dns_ok:
            problems.append(dns_problem(name, error=error, outside=outside))
        if not inside:
            checks.append({"name": name, "kind": "tcp443", "ok": None, "addresses": [],
                           "detail": "skipped: no address inside the VPC CIDRs"})
            checks.append({"name": name, "kind": "tls", "ok": None, "detail": "skipped: no address to connect to"})
            return checks, problems, offsets

        connected, failures = [], []
        for address in inside:
            try:
                sock = self.connect(address, self.port, self.timeout)
            except (OSError, socket.timeout) as exc:
                failures.append((address, tcp_error_kind(exc)))
                continue
            sock.close()
            connected.append(address)
        checks.append({
            "name": name, "kind": "tcp443", "ok": not failures, "addresses": connected,
            "failures": [{"address": a, "error": k} for a, k in failures],
            "detail": "; ".join(["%s connected" % a for a in connected] + ["%s %s" % (a, k) for a, k in failures]),
        })
        if failures:
            problems.append(tcp_problem(name, self.port, failures))
        if not connected:
            checks.append({"name": name, "kind": "tls", "ok": None, "detail": "skipped: TCP failed"})
            return checks, problems, offsets

        tls = self.check_tls(name, connected[0])
        checks.append(tls)
        if not tls["ok"]:
            problems.append(tls_problem(name, self.port, tls.pop("error_kind"), tls["detail"]))
        else:
            tls.pop("error_kind", None)
        if tls.get("offset") is not None:
            offsets.append(tls["offset"])
        return checks, problems, offsets

    def check_tls(self, name, address):
        """TLS handshake (SNI ``name``, verified), then one HTTP request to read the status and Date header."""
        result = {"name": name, "kind": "tls", "ok": False, "address": address, "http_status": None, "date": None,
                  "offset": None, "error_kind": None}
        try:
            sock = self.connect(address, self.port, self.timeout)
        except (OSError, socket.timeout) as exc:
            result.update(error_kind="closed" if tcp_error_kind(exc) != "timeout" else "timeout",
                          detail="reconnect failed: %s" % exc)
            return result
        try:
            sock.settimeout(self.timeout)
            tls = self.ssl_context().wrap_socket(sock, server_hostname=name)
        except (ssl.SSLError, OSError, socket.timeout, ValueError) as exc:
            sock.close()
            result.update(error_kind=tls_error_kind(exc), detail=str(exc) or exc.__class__.__name__)
            return result
        result.update(ok=True, detail="%s verified" % tls.version())
        try:
            request = "GET / HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\nAccept: */*\r\nConnection: close\r\n\r\n" % (
                name, USER_AGENT)
            sent = self.now()
            tls.sendall(request.encode("ascii"))
            data = b""
            while b"\r\n\r\n" not in data and len(data) < 65536:
                chunk = tls.recv(4096)
                if not chunk:
                    break
                data += chunk
            received = self.now()
        except (OSError, socket.timeout, ssl.SSLError) as exc:
            result["detail"] += "; no HTTP answer (%s)" % exc
            return result
        finally:
            tls.close()
        status, headers = parse_http_head(data) if data else (None, {})
        result["http_status"] = status
        result["date"] = headers.get("date")
        if result["date"]:
            result["offset"] = http_date_offset(result["date"], (sent + received) / 2.0)
        result["detail"] += "; HTTP %s" % status
        return result

    # --- host-wide checks ------------------------------------------------------------------------------------

    def check_package(self, platform_facts):
        url = self.params.get("package_url")
        if not url:
            return None, None
        values = {"{arch}": platform_facts.get("arch"), "{pkg}": platform_facts.get("pkg")}
        if values["{arch}"] and values["{pkg}"]:
            values["{ssm_platform}"] = "%s_%s" % ("debian" if values["{pkg}"] == "deb" else "linux", values["{arch}"])
        for key, value in values.items():
            if key in url:
                if not value:
                    return ({"name": url, "kind": "package", "ok": None,
                             "detail": "skipped: %s unknown on this host" % key}, None)
                url = url.replace(key, value)
        method = self.params.get("package_method") or "HEAD"
        opener = build_opener(HTTPSHandler(context=self.ssl_context()))
        if not url.lower().startswith(("https://", "http://")):
            return ({"name": url, "kind": "package", "ok": False, "detail": "not an http(s) URL"},
                    package_problem(url, None, "not an http(s) URL"))
        request = Request(url, method=method, headers={"User-Agent": USER_AGENT})  # noqa: S310 - scheme checked
        # S3 answers 500/503 (InternalError, SlowDown) now and then and asks to be retried, and a busy endpoint can
        # be slow to answer a request it has accepted: only an answer that stays an error, or silence that lasts,
        # after the retries is a problem of the path. A connection that cannot be made is not asked again (urllib
        # reports it as URLError; a timeout waiting for the answer comes through as socket.timeout itself).
        attempts = 0
        while True:
            attempts += 1
            status, detail, slow = None, "", False
            try:
                response = opener.open(request, timeout=self.timeout)
                status = response.getcode()
                response.close()
            except HTTPError as exc:
                status = exc.code
            except socket.timeout:
                detail, slow = "no answer within %g s" % self.timeout, True
            except (URLError, OSError, ssl.SSLError) as exc:
                detail = str(getattr(exc, "reason", exc))
            if not (status in TRANSIENT_HTTP or slow) or attempts >= PACKAGE_ATTEMPTS:
                break
            time.sleep(min(4.0, 0.5 * 2 ** (attempts - 1)))
        check = {"name": url, "kind": "package", "ok": status == 200, "http_status": status,
                 "detail": ("HTTP %s" % status) if status else detail}
        if attempts > 1:
            check["detail"] += " after %d attempts" % attempts
        return check, (None if status == 200 else package_problem(url, status, detail))

    def check_clock(self, offsets):
        max_offset = self.params.get("clock_max_offset", 300)
        warn_offset = self.params.get("clock_warn_offset", 60)
        if not offsets:
            return None, {"name": "clock", "kind": "clock", "ok": None, "offset": None,
                          "detail": "unknown: no endpoint answered over HTTPS"}, None, None
        offset = statistics.median(offsets)
        found = clock_problem(offset, max_offset)
        warning = clock_warning(offset, warn_offset, max_offset)
        check = {"name": "clock", "kind": "clock", "ok": found is None, "offset": offset, "warning": bool(warning),
                 "detail": "host clock %+.0f s from AWS's (Date headers of %d answer(s))" % (offset, len(offsets))}
        return offset, check, found, warning

    def check_disk(self):
        checks, problems = [], []
        for path, minimum in sorted((self.params.get("disk_min_free_mb") or {}).items()):
            try:
                free = self.free(path)
            except OSError as exc:
                checks.append({"name": path, "kind": "disk", "ok": None, "detail": "cannot measure: %s" % exc})
                continue
            found = disk_problem(path, free, int(minimum))
            checks.append({"name": path, "kind": "disk", "ok": found is None, "free_mb": free, "min_mb": int(minimum),
                           "detail": "%d MB free (need %d)" % (free, int(minimum))})
            if found:
                problems.append(found)
        return checks, problems

    def run(self):
        names = self.names()
        checks, problems, offsets, warnings = [], [], [], []
        workers = max(1, min(int(self.params.get("workers") or 8), len(names) or 1))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for name_checks, name_problems, name_offsets in pool.map(self.check_name, names):
                checks.extend(name_checks)
                problems.extend(name_problems)
                offsets.extend(name_offsets)

        facts = platform_info(read_os_release(self.os_release_path), self.machine)
        package_check, package_found = self.check_package(facts)
        if package_check:
            checks.append(package_check)
        if package_found:
            problems.append(package_found)

        offset, clock_check, clock_found, warning = self.check_clock(offsets)
        checks.append(clock_check)
        if clock_found:
            problems.append(clock_found)
        if warning:
            warnings.append(warning)

        platform_found = platform_problems(facts)
        checks.append({"name": "os", "kind": "os", "ok": bool(facts["os_family"]),
                       "detail": "%s (%s)" % (facts["os_name"] or "no /etc/os-release", facts["os_family"])})
        checks.append({"name": "arch", "kind": "arch", "ok": bool(facts["arch"]),
                       "detail": "%s -> %s" % (facts["machine"], facts["arch"])})
        problems.extend(platform_found)

        disk_checks, disk_found = self.check_disk()
        checks.extend(disk_checks)
        problems.extend(disk_found)
        return {
            "ok": not problems,
            "names": names,
            "checks": checks,
            "problems": problems,
            "clock_offset": offset,
            "platform": facts,
            "nameservers": read_nameservers(self.resolv_conf),
        }, warnings


def main():
    module = AnsibleModule(
        argument_spec=dict(
            region=dict(type="str", required=True),
            services=dict(type="list", elements="str", default=list(DEFAULT_SERVICES)),
            agent_buckets=dict(type="bool", default=True),
            extra_names=dict(type="list", elements="str", default=[]),
            vpc_cidrs=dict(type="list", elements="str", required=True),
            port=dict(type="int", default=443),
            timeout=dict(type="float", default=5.0),
            ca_bundle=dict(type="path"),
            package_url=dict(type="str"),
            package_method=dict(type="str", default="HEAD", choices=["HEAD", "GET"]),
            clock_max_offset=dict(type="int", default=300),
            clock_warn_offset=dict(type="int", default=60),
            disk_min_free_mb=dict(type="dict", default={"/var/lib": 500, "/tmp": 200}),  # noqa: S108 - measured, not written
            workers=dict(type="int", default=8),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        split_addresses([], params["vpc_cidrs"])
    except ValueError as exc:
        module.fail_json(msg="vpc_cidrs must be CIDRs like 10.0.0.0/16: %s" % exc)
    if params["ca_bundle"] and not os.path.isfile(params["ca_bundle"]):
        module.fail_json(msg="ca_bundle %s does not exist on this host" % params["ca_bundle"])
    if params["timeout"] <= 0:
        module.fail_json(msg="timeout must be positive")
    for path, minimum in (params["disk_min_free_mb"] or {}).items():
        try:
            int(minimum)
        except (TypeError, ValueError):
            module.fail_json(msg="disk_min_free_mb[%s] must be a number of MB; got %r" % (path, minimum))
    result, warnings = Probe(params).run()
    for warning in warnings:
        module.warn(warning)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
