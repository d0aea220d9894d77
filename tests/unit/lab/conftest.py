"""Shared fixtures for the lab's unit tests: one in-process AWS emulator per test session.

``emulator`` yields a :class:`LabEmulator` with ``.url``, ``.client(service)``, ``.calls()`` and helpers
for the ``/_lab/`` endpoints. Every lab test file shares the same emulator (moto keeps its state in
process-global backends anyway), so tests create their own resources and must not reset moto.
"""

from __future__ import annotations

import contextlib
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

LAB_DIR = Path(__file__).resolve().parents[2] / "lab"
if str(LAB_DIR) not in sys.path:
    sys.path.insert(0, str(LAB_DIR))

import labconst  # noqa: E402

# Direct opener: lab traffic is loopback only and must never go through an environment proxy.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class LabEmulator:
    """Client-side view of a running emulator (in-process here; the same API works on any URL)."""

    def __init__(self, url: str, handle: Any = None) -> None:
        self.url = url.rstrip("/")
        self.handle = handle

    def client(
        self, service: str, account_id: str | None = None, region: str = labconst.REGION, **config: Any
    ) -> Any:
        """A boto3 client for `service` pointed at the emulator. `config` goes to botocore Config.

        Retries are off unless `retries=` is given, so call counts and injected faults are exact.

        `account_id` selects another moto account (multi-account tests) via moto's account header.
        """
        import boto3
        from botocore.config import Config

        config.setdefault("retries", {"total_max_attempts": 1, "mode": "standard"})
        client = boto3.client(
            service,
            endpoint_url=self.url,
            region_name=region,
            aws_access_key_id=labconst.ACCESS_KEY,
            aws_secret_access_key=labconst.SECRET_KEY,
            config=Config(**config),
        )
        if account_id:

            def add_account(request: Any, **_kwargs: Any) -> None:
                request.headers["x-moto-account-id"] = account_id

            client.meta.events.register("before-sign", add_account)
        return client

    def lab(self, method: str, path: str, payload: Any = None) -> tuple[int, Any]:
        """Call a /_lab/ endpoint; returns (HTTP status, decoded JSON)."""
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(  # noqa: S310 - always the emulator's own http:// URL
            f"{self.url}{path}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with _OPENER.open(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def calls(self) -> dict[str, dict[str, int]]:
        status, payload = self.lab("GET", "/_lab/calls")
        assert status == 200, payload
        return payload

    def reset_calls(self) -> None:
        status, payload = self.lab("POST", "/_lab/calls/reset")
        assert status == 200, payload

    @contextlib.contextmanager
    def faults(self, **settings: Any) -> Iterator[dict[str, Any]]:
        """Apply fault settings for the duration of a `with` block, then switch faults off."""
        status, applied = self.lab("POST", "/_lab/faults", settings)
        assert status == 200, applied
        try:
            yield applied
        finally:
            self.lab("POST", "/_lab/faults", {"throttle_rate": 0, "error_5xx_rate": 0, "latency_ms": 0})

    def set_clock_offset(self, seconds: float) -> dict[str, Any]:
        status, payload = self.lab("POST", "/_lab/clock", {"offset_seconds": seconds})
        assert status == 200, payload
        return payload


@pytest.fixture(scope="session")
def emulator() -> Iterator[LabEmulator]:
    """The in-process emulator on a free loopback port, faults off whatever the environment says."""
    from emulator import server
    from emulator.middleware import FaultConfig

    handle = server.start_in_thread(port=0, faults=FaultConfig())
    try:
        yield LabEmulator(handle.url, handle)
    finally:
        handle.stop()
