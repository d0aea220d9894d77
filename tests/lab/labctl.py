"""`scripts/lab up [--hosts N] | status | env | down` — start, inspect and tear down the lab.

Order of `up`: clear whatever an earlier (possibly killed) lab left; start the AWS emulator; build the
agent stand-in packages (cached) and publish them where AWS keeps the real ones; create the network and
boot the on-prem hosts; start the VPC side (endpoint IPs, HTTPS front, Resolver stand-in) which follows
the emulator's state from then on; write `inventory/lab/onprem.yml` for the hosts that were booted.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import labconst as C

INVENTORY_FILE = C.PROJECT_DIR / "inventory" / "lab" / "onprem.yml"
PYTHON = sys.executable


def log(msg: str) -> None:
    print(f"lab: {msg}", flush=True)


def start_process(name: str, argv: list[str], env_extra: dict[str, str] | None = None) -> int:
    """Start a lab daemon in its own session; its log and pid file live in the run dir."""
    C.LOG_DIR.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(C.PROJECT_DIR / "tests" / "lab")
    env.update(env_extra or {})
    with open(C.LOG_DIR / f"{name}.log", "ab") as out:
        proc = subprocess.Popen(  # noqa: S603 - fixed argv of our own daemons
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True, cwd=C.PROJECT_DIR,
        )
    (C.RUN_DIR / f"{name}.pid").write_text(str(proc.pid))
    return proc.pid


def wait_for(what: str, check, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:  # noqa: BLE001 - reported if it never succeeds
            last = exc
        time.sleep(0.2)
    raise SystemExit(f"lab: {what} did not come up within {timeout:.0f}s ({last}); logs in {C.LOG_DIR}")


def emulator_get(path: str) -> dict:
    with urllib.request.urlopen(f"{C.EMULATOR_URL}{path}", timeout=5) as resp:  # noqa: S310 - loopback
        return json.loads(resp.read() or b"{}")


def boto3_client(service: str):
    import boto3

    return boto3.client(
        service, endpoint_url=C.EMULATOR_URL, region_name=C.REGION,
        aws_access_key_id=C.ACCESS_KEY, aws_secret_access_key=C.SECRET_KEY,
    )


def write_inventory(hosts: dict[str, str]) -> None:
    """inventory/lab/onprem.yml: the DNS server and the servers to onboard, as booted."""
    lines = [
        "---",
        "# Written by `scripts/lab up`; removed by `scripts/lab down`. Do not edit.",
        "all:",
        "  children:",
        "    onprem:",
        "      children:",
        "        onprem_dns:",
        "          hosts:",
        f"            {C.DNS_HOST_NAME}:",
        f"              ansible_host: {hosts[C.DNS_HOST_NAME]}",
        "        onprem_hosts:",
        "          hosts:",
    ]
    for name, ip in sorted(hosts.items(), key=lambda kv: (len(kv[0]), kv[0])):
        if name == C.DNS_HOST_NAME:
            continue
        lines += [f"            {name}:", f"              ansible_host: {ip}"]
    # Atomic: playbooks of other test streams (AWS-side, localhost only) read this directory while a lab comes up.
    partial = INVENTORY_FILE.with_name(f".{INVENTORY_FILE.name}.partial")
    partial.write_text("\n".join(lines) + "\n")
    partial.replace(INVENTORY_FILE)


def env_lines() -> list[str]:
    return [f"export {k}={shlex.quote(v)}" for k, v in C.controller_env().items()]


def raise_inotify_limit(n_hosts: int) -> None:
    """Each booted host holds a few inotify instances; the kernel default (128) fits about 25 hosts."""
    knob = Path("/proc/sys/fs/inotify/max_user_instances")
    wanted = 512 + 10 * n_hosts
    if int(knob.read_text()) < wanted:
        log(f"raising fs.inotify.max_user_instances to {wanted} for {n_hosts} hosts")
        knob.write_text(str(wanted))


def cmd_up(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        raise SystemExit("lab: `up` needs root (network namespaces, systemd-nspawn)")
    if not 1 <= args.hosts <= C.MAX_HOSTS:
        raise SystemExit(f"lab: --hosts must be 1..{C.MAX_HOSTS}, got {args.hosts}")
    started = time.monotonic()
    from onprem import cleanup, hosts

    cleanup.down()
    INVENTORY_FILE.unlink(missing_ok=True)
    raise_inotify_limit(args.hosts)

    log(f"booting {args.hosts} on-prem host(s) and the on-prem DNS server")
    booted = hosts.up(args.hosts)

    log(f"starting the AWS emulator on {C.EMULATOR_URL}")
    start_process("emulator", [PYTHON, "-m", "emulator", "--host", C.EMULATOR_HOST, "--port", str(C.EMULATOR_PORT)])
    wait_for("the AWS emulator", lambda: emulator_get("/_lab/health") is not None, 60)

    log("building the agent stand-in packages (cached) and publishing them to the emulator's S3")
    from agents import build as agents

    # The packages, their signatures and the lab's GPG public key (what a user would be handed to verify
    # with) land in the run dir; the build itself is cached.
    built = agents.build_all(C.RUN_DIR / "agents")
    agents.publish(boto3_client("s3"), built)

    log("starting the VPC side (endpoint IPs, HTTPS front, Resolver inbound stand-in)")
    start_process("vpcside", [PYTHON, "-m", "vpcside"])
    wait_for("the VPC side", (C.RUN_DIR / "vpcside.json").exists, 30)

    write_inventory(booted)
    (C.RUN_DIR / "env.sh").write_text("\n".join(env_lines()) + "\n")
    log(f"up in {time.monotonic() - started:.1f}s")
    cmd_status(args)
    return 0


def cmd_status(_args: argparse.Namespace) -> int:
    print("\n".join(env_lines()))
    if not C.RUN_DIR.exists():
        print("# lab: not running")
        return 1
    if INVENTORY_FILE.exists():
        print(f"# hosts (inventory {INVENTORY_FILE.relative_to(C.PROJECT_DIR)}):")
        for line in INVENTORY_FILE.read_text().splitlines():
            if "ansible_host" in line:
                print(f"#   {line.strip()}")
    try:
        calls = emulator_get("/_lab/calls")
        total = sum(sum(actions.values()) for actions in calls.values())
        print(f"# emulator: up, {total} AWS call(s) so far")
        for service in sorted(calls):
            for action, count in sorted(calls[service].items()):
                print(f"#   {service:18} {action:40} {count}")
    except (OSError, urllib.error.URLError) as exc:
        print(f"# emulator: DOWN ({exc})")
    vpc = C.RUN_DIR / "vpcside.json"
    if vpc.exists():
        state = json.loads(vpc.read_text())
        listeners = ", ".join(f"{item['kind']} {item['ip']}" for item in state.get("listeners", [])
                              if item.get("proto") != "udp") or "none yet"
        running = "running" if state.get("running") else "STOPPED"
        print(f"# vpc side: {running}; listeners: {listeners}")
        for what, error in (state.get("errors") or {}).items():
            print(f"#   error ({what}): {error}")
    return 0


def cmd_env(_args: argparse.Namespace) -> int:
    print("\n".join(env_lines()))
    return 0


def cmd_down(_args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        raise SystemExit("lab: `down` needs root")
    from onprem import cleanup

    cleanup.down()
    INVENTORY_FILE.unlink(missing_ok=True)
    log("down: no lab namespace, link, mount or process is left")
    return 0


def cmd_fault(args: argparse.Namespace) -> int:
    """Break (or mend) one on-prem host the way a datacenter does: clock, architecture, cable."""
    if os.geteuid() != 0:
        raise SystemExit("lab: `fault` needs root")
    from onprem import hosts, topology

    state = json.loads(hosts.STATE_FILE.read_text()) if hosts.STATE_FILE.exists() else {"hosts": {}}
    if args.host not in state["hosts"]:
        raise SystemExit(f"lab: no host {args.host!r}; hosts: {', '.join(sorted(state['hosts'])) or 'none'}")
    if args.kind == "clock":
        try:
            seconds = int(args.value)
        except ValueError:
            raise SystemExit(f"lab: clock offset must be whole seconds (400, -400, 0), got {args.value!r}") from None
        hosts.set_clock_offset(args.host, seconds)
    elif args.kind == "arch":
        choices = {"i686": "x86", "native": ""}
        if args.value not in choices:
            raise SystemExit(f"lab: arch must be one of {', '.join(choices)}, got {args.value!r}")
        hosts.set_personality(args.host, choices[args.value])
    else:
        if args.value not in ("down", "up"):
            raise SystemExit(f"lab: link must be down or up, got {args.value!r}")
        topology.set_link(args.host, args.value == "up")
    log(f"fault: {args.host} {args.kind} {args.value}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/lab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the lab (clears a stale one first)")
    up.add_argument("--hosts", type=int, default=3, help="number of on-prem servers to boot (besides dns1)")
    up.set_defaults(func=cmd_up)
    sub.add_parser("status", help="controller environment, hosts, emulator call counts").set_defaults(func=cmd_status)
    sub.add_parser("env", help="just the export lines: eval \"$(scripts/lab env)\"").set_defaults(func=cmd_env)
    sub.add_parser("down", help="stop everything and remove every trace").set_defaults(func=cmd_down)
    fault = sub.add_parser("fault", help="skew a host's clock, give it another architecture, cut its link")
    fault.add_argument("host", help="host name (host1, ...)")
    fault.add_argument("kind", choices=("clock", "arch", "link"))
    fault.add_argument("value", help="clock: offset in seconds (0 = none); arch: i686|native; link: down|up")
    fault.set_defaults(func=cmd_fault)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
