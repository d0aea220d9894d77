"""`python -m vpcside` (PYTHONPATH=tests/lab, as root, from the root network namespace): run the VPC-side
follower until SIGTERM/SIGINT. Every process of it carries `hybrid-onboard-lab-vpcside` in its
argv, so `lab down` and `lab status` find it with `pgrep -f` without guessing.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import logging
import os
import signal
import sys
import threading
from pathlib import Path

import labconst

from vpcside import PROCESS_MARKER
from vpcside.follower import Follower, FollowerConfig

log = logging.getLogger("vpcside")
PR_SET_NAME = 15


def _ensure_marker() -> None:
    """Re-exec once with the marker appended when started without it (argv is what pgrep sees)."""
    if not any(PROCESS_MARKER in arg for arg in sys.argv):
        # Same interpreter, same arguments: only the marker is added.
        os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:], f"--marker={PROCESS_MARKER}"])  # noqa: S606
    with contextlib.suppress(OSError, AttributeError):  # the short comm name ps shows (15 bytes max)
        ctypes.CDLL(None).prctl(PR_SET_NAME, b"holab-vpcside", 0, 0, 0)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    defaults = FollowerConfig()
    p = argparse.ArgumentParser(prog="python -m vpcside", description=__doc__)
    p.add_argument("--netns", default=defaults.netns, help="VPC network namespace (default %(default)s)")
    p.add_argument("--iface", default=defaults.iface, help="interface in it (default %(default)s)")
    p.add_argument("--emulator-url", default=defaults.emulator_url, help="default %(default)s")
    p.add_argument("--region", default=defaults.region)
    p.add_argument("--vpc-id", default=defaults.vpc_id)
    p.add_argument("--status-file", type=Path, default=defaults.status_file)
    p.add_argument("--https-port", type=int, default=defaults.https_port)
    p.add_argument("--dns-port", type=int, default=defaults.dns_port)
    p.add_argument("--interval", type=float, default=defaults.interval, help="seconds between polls")
    p.add_argument("--ca-dir", type=Path, default=None, help=f"lab CA directory (default {labconst.CA_DIR})")
    p.add_argument("--keep-addresses", action="store_true", help="leave addresses in place on exit")
    p.add_argument("--log-level", default=os.environ.get("HYBRID_LAB_LOG_LEVEL", "INFO"))
    p.add_argument("--marker", default=PROCESS_MARKER, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        _ensure_marker()
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    config = FollowerConfig(
        netns=args.netns,
        iface=args.iface,
        emulator_url=args.emulator_url,
        region=args.region,
        vpc_id=args.vpc_id,
        status_file=args.status_file,
        https_port=args.https_port,
        dns_port=args.dns_port,
        interval=args.interval,
        ca_dir=args.ca_dir,
    )
    # Handlers first: a SIGTERM that arrives while starting still ends in a clean shutdown.
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    follower = Follower(config)
    try:
        follower.start()
    except Exception as exc:
        log.error("cannot start: %s", exc)
        return 2
    log.info(
        "following %s in %s for %s; serving in %s/%s",
        config.vpc_id,
        config.emulator_url,
        config.region,
        config.netns,
        config.iface,
    )
    try:
        follower.run(stop)
    finally:
        follower.shutdown(remove_addresses=not args.keep_addresses)
        log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
