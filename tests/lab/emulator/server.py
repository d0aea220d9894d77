"""Build and serve the lab's AWS emulator: moto's dispatcher wrapped in the lab middleware.

``build_app()`` installs the lab extensions into moto (in this process), seeds the account and
returns the WSGI app; ``serve()`` runs it threaded on loopback (the CLI); ``start_in_thread()``
does the same on a background thread for tests and returns a handle with ``.url`` and ``.stop()``.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import labconst

log = logging.getLogger(__name__)


def _require_loopback(host: str) -> None:
    # The emulator accepts anything as credentials; it must never listen beyond this machine.
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ValueError(f"the lab emulator listens on loopback only, refusing host {host!r}")


def _ensure_managed_policies() -> None:
    """AWS managed policies (AmazonSSMManagedInstanceCore, ...) exist only with this moto setting.

    The setting is read whenever an IAM backend is created, so it must be set before the first IAM
    call; a backend created earlier in this process (tests) is topped up in place.
    """
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    from moto.iam.models import iam_backends

    for per_account in iam_backends.values():
        for backend in per_account.values():
            if not backend.aws_managed_policies:
                backend.aws_managed_policies = backend._init_aws_policies()
                for policy in backend.aws_managed_policies:
                    backend.managed_policies.setdefault(policy.arn, policy)


def _install_ssm_ext() -> object | None:
    try:
        from . import ssm_ext
    except ImportError as exc:
        log.warning("emulator.ssm_ext is not available (%s); SSM lab extensions are off", exc)
        return None
    install = getattr(ssm_ext, "install", None)
    if install is None:
        log.warning("emulator.ssm_ext has no install(); SSM lab extensions are off")
        return None
    install()
    return getattr(ssm_ext, "wsgi_intercept", None)


_build_lock = threading.Lock()


def build_app(faults: object | None = None):  # noqa: ANN201 - returns LabMiddleware (import is lazy)
    """Install extensions, seed, and return the middleware-wrapped moto WSGI app."""
    # moto is imported here, after the IAM setting, so the first IAM backend sees it.
    with _build_lock:
        _ensure_managed_policies()
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        from . import cloudwatch_ext, ec2_ext, iam_ext, route53_ext, seed, tagging_ext
        from .middleware import FaultConfig, LabMiddleware

        cloudwatch_ext.install()
        ec2_ext.install()
        route53_ext.install()
        iam_ext.install()
        tagging_ext.install()
        intercept = _install_ssm_ext()
        seed.seed()

        def after_reset() -> None:
            _ensure_managed_policies()
            seed.seed()

        dispatcher = DomainDispatcherApplication(create_backend_app)
        return LabMiddleware(dispatcher, faults or FaultConfig.from_env(), intercept, after_reset=after_reset)


def make_server(host: str, port: int, app: object):  # noqa: ANN201 - werkzeug BaseWSGIServer
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server as werkzeug_make_server

    _require_loopback(host)
    return werkzeug_make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)


def serve(host: str = labconst.EMULATOR_HOST, port: int = labconst.EMULATOR_PORT) -> None:
    """Serve until interrupted (the CLI's main loop).

    POST /_lab/restart {"down_seconds": N} closes the listening socket, refuses connections for N seconds and
    listens again on the same port, with the same state: what a client sees when an AWS endpoint restarts.
    """
    _require_loopback(host)
    app = build_app()
    down = {"seconds": 0.0}
    current: dict[str, Any] = {}

    def restart(seconds: float) -> None:
        down["seconds"] = seconds
        # shutdown() waits for serve_forever to return: not from the request thread that asked for it.
        threading.Thread(target=current["server"].shutdown, name="lab-emulator-restart", daemon=True).start()

    app.on_restart = restart
    while True:
        server = make_server(host, port, app)
        current["server"] = server
        log.info(
            "lab AWS emulator listening on http://%s:%d (region %s)", host, server.server_port, labconst.REGION
        )
        try:
            server.serve_forever()
        finally:
            server.server_close()
        if not down["seconds"]:
            return
        log.warning("restart: refusing connections for %.0f s", down["seconds"])
        time.sleep(down["seconds"])
        down["seconds"] = 0.0


@dataclass
class EmulatorHandle:
    """A running in-process emulator. `app` is the LabMiddleware (for direct access in tests)."""

    url: str
    host: str
    port: int
    app: object
    _server: object = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def start_in_thread(port: int = 0, host: str = "127.0.0.1", faults: object | None = None) -> EmulatorHandle:
    """Start the emulator on a background thread; port 0 picks a free port."""
    app = build_app(faults)
    server = make_server(host, port, app)
    thread = threading.Thread(target=server.serve_forever, name="lab-emulator", daemon=True)
    thread.start()
    real_port = server.server_port
    return EmulatorHandle(f"http://{host}:{real_port}", host, real_port, app, server, thread)
