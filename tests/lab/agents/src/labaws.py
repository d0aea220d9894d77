"""Stdlib-only AWS plumbing shared by the lab's agent stand-ins (installed on the on-prem hosts).

The hosts have python3 but no boto3, so this module carries what the real agents get from their SDK:
a SigV4 signer, HTTPS calls in the JSON (``X-Amz-Target``) and query protocols, AWS error parsing,
and Go-agent-like error text for network failures (what a user sees in the real agents' logs).

Test hooks (never set on a lab host unless a test asks for it):
- ``HYBRID_LAB_AGENT_ROOT``: prefix for every absolute file path the stand-ins touch.
- ``HYBRID_LAB_AGENT_ENDPOINT_URL``: connect to this URL instead of the regional name, keeping the
  regional ``Host`` header (exactly what the lab's VPC-side HTTPS front does), so unit tests can talk
  to a plain-HTTP emulator.
"""

from __future__ import annotations

import configparser
import datetime as _dt
import functools
import hashlib
import hmac
import http.client
import json
import logging
import os
import socket
import ssl
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

log = logging.getLogger("labaws")

ROOT_ENV = "HYBRID_LAB_AGENT_ROOT"
ENDPOINT_ENV = "HYBRID_LAB_AGENT_ENDPOINT_URL"


def root_path(path: str) -> str:
    """Absolute host path `path`, moved under ``$HYBRID_LAB_AGENT_ROOT`` when tests set it."""
    root = os.environ.get(ROOT_ENV, "")
    if not root or root == "/":
        return path
    return os.path.join(root, path.lstrip("/"))


# --- SigV4 -------------------------------------------------------------------------------------


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def _uri_encode(value: str, safe: str = "-_.~") -> str:
    return urllib.parse.quote(value, safe=safe)


def canonical_query(query: str) -> str:
    """SigV4 canonical query string: every key and value URI-encoded, sorted by key then value."""
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    encoded = sorted((_uri_encode(k), _uri_encode(v)) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)


def sigv4_sign(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    *,
    access_key: str,
    secret_key: str,
    region: str,
    service: str,
    session_token: str | None = None,
    amz_date: str | None = None,
) -> dict[str, str]:
    """Return `headers` plus ``X-Amz-Date``, ``X-Amz-Security-Token`` and ``Authorization``.

    `url` is the URL as the service sees it (regional host). `headers` must already hold every
    header that will be sent except the ones added here; all of them are signed, like botocore does
    for the JSON and query protocols.
    """
    if amz_date is None:
        amz_date = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    parts = urllib.parse.urlsplit(url)
    out = dict(headers)
    out.setdefault("Host", parts.netloc)
    out["X-Amz-Date"] = amz_date
    if session_token:
        out["X-Amz-Security-Token"] = session_token
    lowered = {k.lower().strip(): " ".join(str(v).split()) for k, v in out.items()}
    signed_names = sorted(lowered)
    canonical_headers = "".join(f"{name}:{lowered[name]}\n" for name in signed_names)
    signed_headers = ";".join(signed_names)
    path = _uri_encode(parts.path or "/", safe="/-_.~")
    payload_hash = hashlib.sha256(body).hexdigest()
    canonical_request = "\n".join(
        [method.upper(), path, canonical_query(parts.query), canonical_headers, signed_headers, payload_hash]
    )
    datestamp = amz_date[:8]
    scope = f"{datestamp}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = _hmac(("AWS4" + secret_key).encode("utf-8"), datestamp)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    out["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
    return out


# --- Errors --------------------------------------------------------------------------------------


class AwsError(Exception):
    """An error the service returned (HTTP 4xx/5xx with an AWS error body)."""

    def __init__(self, code: str, message: str, status: int):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


class RequestError(Exception):
    """The request never got an AWS answer (DNS, TCP, TLS, proxy); text shaped like the Go SDK's."""


def _describe_network_error(method: str, url: str, host: str, exc: BaseException) -> str:
    # The real agents are Go programs; their users search for these phrasings, so keep them.
    reason = getattr(exc, "reason", exc)
    prefix = f'RequestError: send request failed\ncaused by: {method.title()} "{url}": '
    if isinstance(reason, socket.gaierror):
        return prefix + f"dial tcp: lookup {host}: no such host ({reason.strerror})"
    if isinstance(reason, ssl.SSLCertVerificationError):
        return prefix + f"tls: failed to verify certificate: x509: {reason.verify_message or reason}"
    if isinstance(reason, ssl.SSLError):
        return prefix + f"tls: handshake failure: {reason}"
    if isinstance(reason, ConnectionRefusedError):
        return prefix + f"dial tcp {host}:443: connect: connection refused"
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return prefix + f"dial tcp {host}:443: i/o timeout"
    if isinstance(reason, OSError) and reason.strerror:
        return prefix + f"dial tcp {host}:443: connect: {reason.strerror.lower()}"
    return prefix + str(reason)


def _parse_error(status: int, body: bytes) -> AwsError:
    text = body.decode("utf-8", "replace")
    try:
        data = json.loads(text)
        code = str(data.get("__type") or data.get("code") or "UnknownError").rsplit("#", 1)[-1]
        message = data.get("message") or data.get("Message") or ""
        return AwsError(code, message, status)
    except (ValueError, AttributeError):
        pass
    try:
        root = ET.fromstring(text)  # noqa: S314 - error bodies from the lab emulator; stdlib only on hosts
        code = next((e.text for e in root.iter() if e.tag.endswith("Code")), None)
        message = next((e.text for e in root.iter() if e.tag.endswith("Message")), "")
        if code:
            return AwsError(code, message or "", status)
    except ET.ParseError:
        pass
    return AwsError(f"HTTP{status}", text[:500], status)


# --- HTTP ------------------------------------------------------------------------------------------


def ssl_context(ca_bundle: str | None = None) -> ssl.SSLContext:
    """System trust store (where the lab CA is installed), or an explicit bundle.

    Loaded once per process and bundle, as the real agents (Go programs) load the system roots once: building a
    context reads the whole trust store, about 20 ms of CPU, which every call used to pay.
    """
    return _context_for(ca_bundle or os.environ.get("AWS_CA_BUNDLE") or None)


@functools.lru_cache(maxsize=8)
def _context_for(ca_bundle: str | None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_bundle)


def http_request(
    method: str,
    url: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    *,
    timeout: float = 30.0,
    ca_bundle: str | None = None,
    proxies: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """Send one request; return (status, headers, body) for any HTTP answer, RequestError otherwise.

    Proxies come from ``https_proxy``/``no_proxy`` in the environment (urllib's own rules) unless
    `proxies` is given, which is how the agents honour their systemd drop-ins and common-config.
    """
    headers = dict(headers or {})
    parts = urllib.parse.urlsplit(url)
    connect_url = url
    override = os.environ.get(ENDPOINT_ENV)
    if override:
        # Connect elsewhere but present the regional Host, like the lab's VPC-side front forwards.
        headers.setdefault("Host", parts.netloc)
        o = urllib.parse.urlsplit(override)
        connect_url = urllib.parse.urlunsplit((o.scheme, o.netloc, parts.path, parts.query, ""))
    handlers: list[urllib.request.BaseHandler] = [
        urllib.request.HTTPSHandler(context=ssl_context(ca_bundle)),
        urllib.request.ProxyHandler(proxies) if proxies is not None else urllib.request.ProxyHandler(),
    ]
    opener = urllib.request.build_opener(*handlers)
    req = urllib.request.Request(connect_url, data=body if method != "GET" else None, method=method)  # noqa: S310 - http(s) URLs only
    for k, v in headers.items():
        req.add_header(k, v)
    try:
        with opener.open(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers.items()) if exc.headers else {}, exc.read()
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise RequestError(_describe_network_error(method, url, parts.hostname or "", exc)) from exc


def service_url(service: str, region: str, endpoint: str = "") -> str:
    """``https://<service>.<region>.amazonaws.com/`` or a configured endpoint (host or URL)."""
    if endpoint:
        return endpoint if "://" in endpoint else f"https://{endpoint}"
    return f"https://{service}.{region}.amazonaws.com"


class Credentials:
    """Access key, secret and optional session token."""

    def __init__(self, access_key: str, secret_key: str, token: str | None = None):
        self.access_key = access_key
        self.secret_key = secret_key
        self.token = token or None


def json_call(
    url: str,
    target: str,
    payload: dict,
    *,
    region: str,
    service: str,
    creds: Credentials | None = None,
    extra_headers: dict[str, str] | None = None,
    content_type: str = "application/x-amz-json-1.1",
    timeout: float = 30.0,
    **http_kwargs,
) -> dict:
    """One JSON-protocol call (SSM, ec2messages, CloudWatch Logs); raises AwsError/RequestError."""
    body = json.dumps(payload).encode("utf-8")
    url = url.rstrip("/") + "/"
    headers = {"Content-Type": content_type, "X-Amz-Target": target}
    headers.update(extra_headers or {})
    headers["Host"] = urllib.parse.urlsplit(url).netloc
    data = _post(url, headers, body, creds, region, service, timeout, http_kwargs)
    return json.loads(data.decode("utf-8") or "{}") if data.strip() else {}


def query_call(
    url: str,
    params: dict[str, str],
    *,
    region: str,
    service: str,
    creds: Credentials,
    timeout: float = 30.0,
    **http_kwargs,
) -> bytes:
    """One query-protocol call (CloudWatch PutMetricData); returns the XML body."""
    body = urllib.parse.urlencode(params).encode("utf-8")
    url = url.rstrip("/") + "/"
    headers = {
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
        "Host": urllib.parse.urlsplit(url).netloc,
    }
    return _post(url, headers, body, creds, region, service, timeout, http_kwargs)


def _post(url, headers, body, creds, region, service, timeout, http_kwargs) -> bytes:
    """Sign (unless anonymous: ``creds`` None), POST, and raise the AWS error of a failed call."""
    if creds is not None:
        headers = sigv4_sign(
            "POST",
            url,
            headers,
            body,
            access_key=creds.access_key,
            secret_key=creds.secret_key,
            session_token=creds.token,
            region=region,
            service=service,
        )
    status, _headers, data = http_request("POST", url, headers, body, timeout=timeout, **http_kwargs)
    if status >= 300:
        raise _parse_error(status, data)
    return data


# --- Shared credentials file -------------------------------------------------------------------


def read_profile(path: str, profile: str) -> dict[str, str] | None:
    """Keys of `profile` in an AWS shared credentials/config file, or None when absent."""
    parser = configparser.RawConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError) as exc:
        log.warning("cannot parse %s: %s", path, exc)
        return None
    for section in (profile, f"profile {profile}"):
        if parser.has_section(section):
            return {k: v.strip() for k, v in parser.items(section)}
    return None


def write_profile(path: str, profile: str, values: dict[str, str], mode: int = 0o600) -> None:
    """Replace section `profile` of `path`, leaving every other line of the file untouched."""
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        lines = []
    out: list[str] = []
    skipping = False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            skipping = stripped[1:-1].strip() == profile
        if not skipping:
            out.append(line)
    while out and not out[-1].strip():
        out.pop()
    if out:
        out.append("")
    out.append(f"[{profile}]")
    out.extend(f"{k} = {v}" for k, v in values.items())
    atomic_write(path, ("\n".join(out) + "\n").encode("utf-8"), mode)


def atomic_write(path: str, data: bytes, mode: int = 0o644) -> None:
    """Write `data` to `path` via a temp file + rename, with `mode` from the start."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def setup_file_logging(logger_name: str, main_log: str, error_log: str | None = None) -> logging.Logger:
    """Log to `main_log` (and WARNING+ to `error_log`) in the real agents' line shape."""
    logger = logging.getLogger(logger_name)
    logger.setLevel(logging.DEBUG if os.environ.get("HYBRID_LAB_AGENT_DEBUG") else logging.INFO)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
    for path, level in ((main_log, logging.DEBUG), (error_log, logging.WARNING)):
        if not path:
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        handler = logging.FileHandler(path)
        handler.setLevel(level)
        handler.setFormatter(fmt)
        logger.addHandler(handler)
    return logger


def read_os_release() -> dict[str, str]:
    """Fields of /etc/os-release (NAME, VERSION_ID, …)."""
    result: dict[str, str] = {}
    try:
        with open(root_path("/etc/os-release"), encoding="utf-8") as fh:
            for line in fh:
                if "=" in line and not line.startswith("#"):
                    key, _sep, value = line.strip().partition("=")
                    result[key] = value.strip().strip('"')
    except OSError:
        pass
    return result


def primary_ip(towards_host: str = "") -> str:
    """The address this host uses to reach `towards_host` (no packet is sent: UDP connect only)."""
    try:
        target = socket.gethostbyname(towards_host) if towards_host else "10.0.0.1"
    except OSError:
        target = "10.0.0.1"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect((target, 9))
            return s.getsockname()[0]
        except OSError:
            return "127.0.0.1"
