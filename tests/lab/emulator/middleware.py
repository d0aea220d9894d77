"""WSGI middleware in front of moto: call counting, fault injection and ``/_lab/`` endpoints.

Order for an AWS request: buffer the body (so several readers can see it) → classify it
(service, action) → count it → inject a fault if one is drawn → let the SSM extension intercept
what moto cannot route → hand it to moto. Requests marked ``X-Hybrid-Lab-Internal: 1`` (the lab's
own state pollers) and moto's ``/moto-api/`` are neither counted nor faulted, so benchmarks count
only what the product sends.
"""

from __future__ import annotations

import io
import json
import logging
import os
import random
import re
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qs

from . import clock

log = logging.getLogger(__name__)

INTERNAL_HEADER_ENVIRON = "HTTP_X_HYBRID_LAB_INTERNAL"
LAB_PREFIX = "/_lab/"

# botocore service model names differ from SigV4 signing names for a few services.
_SIGNING_TO_MODEL = {"monitoring": "cloudwatch", "email": "ses", "states": "stepfunctions"}
# Host prefix (first label of <prefix>.<region>.amazonaws.com) → signing name, for unsigned calls.
_HOST_RE = re.compile(
    r"^(?:[^.]+\.)*?(?P<svc>[a-z0-9-]+)\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d)\.amazonaws\.com"
)
_CBOR_PATH_RE = re.compile(r"^/service/[^/]+/operation/(?P<op>[^/?]+)")

Intercept = Callable[[dict[str, Any]], "tuple[int, list[tuple[str, str]], bytes] | None"]


# --- classification -------------------------------------------------------------------------


def service_of(environ: dict[str, Any]) -> str:
    """The AWS service a request is for: SigV4 credential scope first, then the Host name."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    match = re.search(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request", auth)
    if match:
        return match.group(1).lower()
    # Presigned URLs carry the scope in the query string.
    query = parse_qs(environ.get("QUERY_STRING", ""))
    cred = query.get("X-Amz-Credential", [""])[0]
    parts = cred.split("/")
    if len(parts) == 5:
        return parts[3].lower()
    host = environ.get("HTTP_HOST", "").split(":")[0].lower()
    match = _HOST_RE.match(host)
    if match:
        return match.group("svc")
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target.startswith("AmazonSSM."):
        return "ssm"
    if target.startswith("EC2WindowsMessageDeliveryService."):
        return "ec2messages"
    if host.startswith("s3") or ".s3." in host:
        return "s3"
    return "unknown"


def _form_action(environ: dict[str, Any], body: bytes) -> str | None:
    action = parse_qs(environ.get("QUERY_STRING", "")).get("Action")
    if action:
        return action[0]
    if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded") and body:
        action = parse_qs(body.decode("utf-8", "replace")).get("Action")
        if action:
            return action[0]
    return None


def _rest_action(service: str, environ: dict[str, Any], body: bytes) -> str | None:
    """Match a REST request against the botocore model's URI templates (moto's own router)."""
    try:
        from moto.core.request import Request
        from moto.core.routing import get_service_router

        copy = dict(environ)
        copy["wsgi.input"] = io.BytesIO(body)
        operation, _params = get_service_router(_SIGNING_TO_MODEL.get(service, service)).match(Request(copy))
        return operation.name
    except Exception:  # noqa: BLE001 - best effort: any routing failure falls back to METHOD path
        return None


def action_of(service: str, environ: dict[str, Any], body: bytes) -> str:
    """The API action: X-Amz-Target, the Action parameter, an RPCv2 path, or the REST model."""
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return target.rsplit(".", 1)[-1]
    action = _form_action(environ, body)
    if action:
        return action
    path = environ.get("PATH_INFO", "")
    match = _CBOR_PATH_RE.match(path)
    if match:
        return match.group("op")
    action = _rest_action(service, environ, body)
    if action:
        return action
    return f"{environ.get('REQUEST_METHOD', 'GET')} {path}"


# --- state ------------------------------------------------------------------------------------


_CREDENTIAL_RE = re.compile(r"Credential=([^/,\s]+)/")


def caller_of(environ: dict[str, Any]) -> str:
    """The access key id a request is signed with (SigV4 Authorization header), or ``anonymous``."""
    match = _CREDENTIAL_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
    return match.group(1) if match else "anonymous"


class CallCounter:
    """Thread-safe {service: {action: count}}, also kept per caller (access key id)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._by_caller: dict[str, dict[str, dict[str, int]]] = defaultdict(
            lambda: defaultdict(lambda: defaultdict(int))
        )

    def record(self, service: str, action: str, caller: str = "anonymous") -> None:
        with self._lock:
            self._counts[service][action] += 1
            self._by_caller[caller][service][action] += 1

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {svc: dict(actions) for svc, actions in self._counts.items()}

    def snapshot_by_caller(self) -> dict[str, dict[str, dict[str, int]]]:
        """{access key id: {service: {action: count}}}: the controller's calls apart from the agents'."""
        with self._lock:
            return {
                caller: {svc: dict(actions) for svc, actions in services.items()}
                for caller, services in self._by_caller.items()
            }

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
            self._by_caller.clear()


@dataclass
class FaultConfig:
    """Fault rates (probabilities 0..1) and a fixed added latency."""

    throttle_rate: float = 0.0
    error_5xx_rate: float = 0.0
    latency_ms: float = 0.0
    seed: int | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> FaultConfig:
        env = dict(os.environ if env is None else env)
        seed = env.get("HYBRID_LAB_FAULT_SEED")
        config = cls(
            throttle_rate=float(env.get("HYBRID_LAB_FAULT_THROTTLE_RATE", "0") or 0),
            error_5xx_rate=float(env.get("HYBRID_LAB_FAULT_5XX_RATE", "0") or 0),
            latency_ms=float(env.get("HYBRID_LAB_FAULT_LATENCY_MS", "0") or 0),
            seed=int(seed) if seed not in (None, "") else None,
        )
        config.validate()
        return config

    def validate(self) -> None:
        for name in ("throttle_rate", "error_5xx_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"fault {name} must be between 0 and 1, got {value}")
        if self.throttle_rate + self.error_5xx_rate > 1.0:
            raise ValueError("throttle_rate + error_5xx_rate must not exceed 1")
        if self.latency_ms < 0:
            raise ValueError(f"fault latency_ms must be >= 0, got {self.latency_ms}")


class FaultInjector:
    """Draws faults from a seeded RNG so a run with the same seed sees the same fault sequence."""

    def __init__(self, config: FaultConfig) -> None:
        self._lock = threading.Lock()
        self.configure(config)

    def configure(self, config: FaultConfig) -> None:
        config.validate()
        with self._lock:
            self.config = config
            self._rng = random.Random(config.seed)
            self.injected: dict[str, int] = {}  # fault kind -> how many were answered since this configuration

    def draw(self) -> str | None:
        """'throttle', 'unavailable' (503), 'internal' (500) or None for one request."""
        with self._lock:
            if not (self.config.throttle_rate or self.config.error_5xx_rate):
                return None
            roll = self._rng.random()
            kind = None
            if roll < self.config.throttle_rate:
                kind = "throttle"
            elif roll < self.config.throttle_rate + self.config.error_5xx_rate:
                kind = "unavailable" if self._rng.random() < 0.5 else "internal"
            if kind:
                self.injected[kind] = self.injected.get(kind, 0) + 1
            return kind


# --- error bodies shaped per protocol so botocore parses (and retries) them like AWS's ---------

_CBOR_SERVICES = {"monitoring"}
_EC2_SERVICES = {"ec2"}
_S3_SERVICES = {"s3"}


def _cbor_text(value: str) -> bytes:
    data = value.encode()
    if len(data) < 24:
        return bytes([0x60 | len(data)]) + data
    if len(data) < 256:
        return bytes([0x78, len(data)]) + data
    return bytes([0x79]) + len(data).to_bytes(2, "big") + data


def _cbor_map(items: dict[str, str]) -> bytes:
    # Only the tiny subset of CBOR an error body needs: a map of short text strings.
    out = bytes([0xA0 | len(items)])
    for key, value in items.items():
        out += _cbor_text(key) + _cbor_text(value)
    return out


def _is_json(environ: dict[str, Any]) -> bool:
    return "json" in environ.get("CONTENT_TYPE", "") or bool(environ.get("HTTP_X_AMZ_TARGET"))


def error_response(
    service: str, environ: dict[str, Any], kind: str
) -> tuple[int, list[tuple[str, str]], bytes]:
    """The AWS-shaped error for a fault kind (see FaultInjector.draw) on this service's protocol."""
    request_id = str(uuid.uuid4())
    if kind == "throttle":
        status = 503 if service in _S3_SERVICES else 400
        json_code, query_code, message = "ThrottlingException", "Throttling", "Rate exceeded"
        if service in _EC2_SERVICES:
            query_code, message = "RequestLimitExceeded", "Request limit exceeded."
        if service in _S3_SERVICES:
            query_code, message = "SlowDown", "Please reduce your request rate."
    elif kind == "unavailable":
        status = 503
        json_code = query_code = "ServiceUnavailable"
        message = "Service is unavailable. Please try again later."
    else:
        status = 500
        json_code = query_code = (
            "InternalError" if service in _S3_SERVICES | _EC2_SERVICES else "InternalFailure"
        )
        message = "We encountered an internal error. Please try again."
    headers = [("x-amzn-RequestId", request_id), ("x-amz-request-id", request_id)]
    if service in _CBOR_SERVICES and environ.get("HTTP_SMITHY_PROTOCOL") == "rpc-v2-cbor":
        body = _cbor_map({"__type": json_code, "message": message})
        headers += [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")]
    elif _is_json(environ):
        body = json.dumps({"__type": json_code, "message": message}).encode()
        headers += [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", json_code)]
    elif service in _EC2_SERVICES:
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{query_code}</Code>'
            f"<Message>{message}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
        ).encode()
        headers.append(("Content-Type", "text/xml"))
    elif service in _S3_SERVICES:
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{query_code}</Code>'
            f"<Message>{message}</Message><RequestId>{request_id}</RequestId></Error>"
        ).encode()
        headers.append(("Content-Type", "application/xml"))
    else:
        error_type = "Sender" if kind == "throttle" else "Receiver"
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse><Error><Type>{error_type}</Type>'
            f"<Code>{query_code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers.append(("Content-Type", "text/xml"))
    return status, headers, body


# --- the middleware ---------------------------------------------------------------------------

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class LabMiddleware:
    """Wraps moto's WSGI app. `after_reset` runs after moto's own `/moto-api/reset` (re-seeding)."""

    def __init__(
        self,
        app: Callable[..., Iterable[bytes]],
        faults: FaultConfig | None = None,
        intercept: Intercept | None = None,
        after_reset: Callable[[], None] | None = None,
    ) -> None:
        self.app = app
        self.calls = CallCounter()
        self.faults = FaultInjector(faults or FaultConfig())
        self.intercept = intercept
        self.after_reset = after_reset
        # Set by server.serve(): closes the listening socket for N seconds and opens it again (POST /_lab/restart).
        self.on_restart: Callable[[float], None] | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(LAB_PREFIX):
            return self._lab(environ, start_response)
        body = self._buffer_body(environ)
        if path.startswith("/moto-api/"):
            result = self.app(environ, start_response)
            if path.rstrip("/") == "/moto-api/reset" and self.after_reset:
                self.after_reset()
            return result

        internal = environ.get(INTERNAL_HEADER_ENVIRON) == "1"
        service = service_of(environ)
        if not internal:
            action = action_of(service, environ, body)
            self.calls.record(service, action, caller_of(environ))
            latency = self.faults.config.latency_ms
            if latency:
                time.sleep(latency / 1000.0)
            kind = self.faults.draw()
            if kind:
                log.info("injecting %s fault into %s %s", kind, service, action)
                return self._respond(start_response, *error_response(service, environ, kind))

        if self.intercept is not None:
            intercepted = self.intercept(environ)
            if intercepted is not None:
                return self._respond(start_response, *intercepted)
            environ["wsgi.input"] = io.BytesIO(body)  # the interceptor may have consumed it
        return self.app(environ, start_response)

    @staticmethod
    def _buffer_body(environ: dict[str, Any]) -> bytes:
        """Read the body once and re-wrap it so later readers (interceptor, moto) see all of it."""
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        stream = environ.get("wsgi.input")
        if length > 0 and stream is not None:
            body = stream.read(length)
        elif stream is not None and environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked":
            # werkzeug de-chunks for us when it marks the input as terminated.
            body = stream.read() if environ.get("wsgi.input_terminated") else b""
        else:
            body = b""
        environ["wsgi.input"] = io.BytesIO(body)
        if body:
            environ["CONTENT_LENGTH"] = str(len(body))
        return body

    @staticmethod
    def _respond(
        start_response: Callable[..., Any], status: int, headers: list[tuple[str, str]], body: bytes
    ) -> list[bytes]:
        headers = [h for h in headers if h[0].lower() != "content-length"]
        headers.append(("Content-Length", str(len(body))))
        start_response(f"{status} {_REASONS.get(status, 'Status')}", headers)
        return [body]

    def _json(self, start_response: Callable[..., Any], status: int, payload: Any) -> list[bytes]:
        return self._respond(
            start_response,
            status,
            [("Content-Type", "application/json")],
            json.dumps(payload, sort_keys=True).encode(),
        )

    def _lab(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "").rstrip("/")
        body = self._buffer_body(environ)
        routes: dict[tuple[str, str], Callable[[bytes], tuple[int, Any]]] = {
            ("GET", "/_lab/health"): lambda _b: (
                200,
                {"status": "ok", "clock_offset_seconds": clock.offset()},
            ),
            ("GET", "/_lab/calls"): lambda _b: (200, self.calls.snapshot()),
            ("GET", "/_lab/calls/by-caller"): lambda _b: (200, self.calls.snapshot_by_caller()),
            ("POST", "/_lab/calls/reset"): self._reset_calls,
            ("GET", "/_lab/faults"): lambda _b: (200, {**asdict(self.faults.config), "injected": self.faults.injected}),
            ("POST", "/_lab/faults"): self._set_faults,
            ("GET", "/_lab/clock"): lambda _b: (200, self._clock_state()),
            ("POST", "/_lab/clock"): self._set_clock,
            ("POST", "/_lab/restart"): self._restart,
        }
        handler = routes.get((method, path))
        if handler is None:
            known = sorted({p for _m, p in routes})
            if any(p == path for p in known):
                return self._json(start_response, 405, {"error": f"method {method} not allowed on {path}"})
            return self._json(start_response, 404, {"error": f"unknown lab endpoint {path}", "known": known})
        try:
            status, payload = handler(body)
        except (ValueError, TypeError, KeyError) as exc:
            return self._json(start_response, 400, {"error": str(exc)})
        return self._json(start_response, status, payload)

    def _reset_calls(self, _body: bytes) -> tuple[int, Any]:
        self.calls.reset()
        return 200, {}

    def _set_faults(self, body: bytes) -> tuple[int, Any]:
        """Change any of throttle_rate / error_5xx_rate / latency_ms / seed; the rest is kept."""
        data = json.loads(body or b"{}")
        if not isinstance(data, dict):
            raise ValueError("faults body must be a JSON object")
        unknown = set(data) - {"throttle_rate", "error_5xx_rate", "latency_ms", "seed"}
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}")
        current = asdict(self.faults.config)
        current.update(data)
        config = FaultConfig(
            throttle_rate=float(current["throttle_rate"]),
            error_5xx_rate=float(current["error_5xx_rate"]),
            latency_ms=float(current["latency_ms"]),
            seed=None if current["seed"] is None else int(current["seed"]),
        )
        self.faults.configure(config)
        log.info("faults now %s", config)
        return 200, asdict(config)

    def _restart(self, body: bytes) -> tuple[int, Any]:
        """The API endpoint restarts: connections are refused for down_seconds (1-300), then served again. The
        state is kept, as AWS's is when one of its endpoints restarts. Only the CLI's server (serve()) can."""
        data = json.loads(body or b"{}")
        if not isinstance(data, dict) or set(data) - {"down_seconds"}:
            raise ValueError('restart body must be {"down_seconds": N}')
        seconds = float(data.get("down_seconds", 10))
        if not 1 <= seconds <= 300:
            raise ValueError("down_seconds must be between 1 and 300")
        if self.on_restart is None:
            return 409, {"error": "this emulator is not served by `python -m emulator`: it cannot restart"}
        self.on_restart(seconds)
        return 202, {"down_seconds": seconds}

    @staticmethod
    def _clock_state() -> dict[str, Any]:
        return {"offset_seconds": clock.offset(), "now": clock.now().isoformat()}

    def _set_clock(self, body: bytes) -> tuple[int, Any]:
        data = json.loads(body or b"{}")
        if not isinstance(data, dict) or "offset_seconds" not in data:
            raise ValueError('clock body must be {"offset_seconds": N}')
        clock.set_offset(float(data["offset_seconds"]))
        return 200, self._clock_state()
