"""Command line for the on-prem side alone: `python -m onprem up --hosts N | status | down | link`.

Run as root with PYTHONPATH=tests/lab. `scripts/lab` drives the whole lab; this is for working on
the on-prem side by itself.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

import labconst

from . import cleanup, hosts, image, topology
from .system import OnpremError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m onprem", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log every command")
    sub = parser.add_subparsers(dest="action", required=True)
    p_up = sub.add_parser("up", help="(re)create namespaces and boot the hosts")
    p_up.add_argument(
        "--hosts", type=int, default=3, help=f"on-prem hosts besides dns1 (0..{labconst.MAX_HOSTS})"
    )
    sub.add_parser("down", help="remove every trace of the lab (also after a crash)")
    sub.add_parser("status", help="hosts, containers, links and memory per host (JSON)")
    sub.add_parser("image", help="build the cached image if missing and print its path")
    p_link = sub.add_parser("link", help="cut or restore one host's network link")
    p_link.add_argument("name")
    p_link.add_argument("state", choices=["up", "down"])
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if os.geteuid() != 0:
        print("the lab needs root (network namespaces, mounts, containers)", file=sys.stderr)
        return 2
    try:
        if args.action == "up":
            started = time.monotonic()
            result = hosts.up(args.hosts)
            print(json.dumps({"hosts": result, "seconds": round(time.monotonic() - started, 1)}, indent=2))
        elif args.action == "down":
            left = cleanup.down()
            if left:
                print(json.dumps({"left": left}, indent=2))
                return 1
        elif args.action == "status":
            print(json.dumps(hosts.status(), indent=2))
        elif args.action == "image":
            print(image.ensure_image())
        elif args.action == "link":
            topology.set_link(args.name, args.state == "up")
    except (OnpremError, ValueError) as exc:
        logging.getLogger("onprem").error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
