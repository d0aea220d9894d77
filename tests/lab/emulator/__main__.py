"""Command line: ``PYTHONPATH=tests/lab python -m emulator [--host 127.0.0.1] [--port 4566]``.

The process re-executes itself once with ``--process-marker hybrid-onboard-lab-emulator`` in its
argv, so ``pkill -f hybrid-onboard-lab-emulator`` finds a stale emulator whatever launched it. A private
emulator (scripts/run-molecule's) is started with ``--process-marker hybrid-onboard-molecule-emulator``: the lab's
up/down leave it alone, so molecule and a lab can run side by side. The
kernel thread name is set to ``holab-emulator`` for ``ps``/``top``.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import signal
import sys

import labconst

from . import PROCESS_MARKER


def _set_thread_name(name: str) -> None:
    try:
        libc = ctypes.CDLL(None)
        libc.prctl(15, name.encode()[:15], 0, 0, 0)  # 15 = PR_SET_NAME
    except (OSError, AttributeError):
        pass  # cosmetic only


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--process-marker" not in argv:
        # Same interpreter and module, argv list (no shell): only the marker is added. A private emulator (molecule's)
        # passes its own marker, one that `scripts/lab up/down` do not stop.
        os.execv(  # noqa: S606
            sys.executable, [sys.executable, "-m", "emulator", *argv, "--process-marker", PROCESS_MARKER]
        )

    parser = argparse.ArgumentParser(
        prog="python -m emulator", description="The lab's AWS emulator (moto + lab extensions)."
    )
    parser.add_argument("--host", default=labconst.EMULATOR_HOST, help="loopback address to listen on")
    parser.add_argument(
        "--port", type=int, default=labconst.EMULATOR_PORT, help="TCP port (default %(default)s)"
    )
    parser.add_argument("--log-level", default=os.environ.get("HYBRID_LAB_LOG_LEVEL", "INFO"))
    parser.add_argument("--process-marker", default=PROCESS_MARKER, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    _set_thread_name("holab-emulator")
    # SIGTERM (from `scripts/lab down`) ends serve_forever the same way Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)

    from .server import serve

    try:
        serve(args.host, args.port)
    except KeyboardInterrupt:
        logging.getLogger(__name__).info("emulator stopped")
    except (ValueError, OSError) as exc:
        logging.getLogger(__name__).error("cannot start the emulator: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
