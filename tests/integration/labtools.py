"""Helpers of the integration tests: run commands, reach lab hosts over SSH, call the emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "lab"))
import labconst as C  # noqa: E402

LAB = ROOT / "scripts" / "lab"
N_HOSTS = int(os.environ.get("HYBRID_TEST_HOSTS", "3"))


def run(argv, check=True, timeout=600, env=None, **kw) -> subprocess.CompletedProcess:
    full_env = dict(os.environ)
    full_env.update(env or {})
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=full_env, **kw)
    if check and result.returncode != 0:
        raise AssertionError(f"{argv} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@dataclass
class Lab:
    hosts: dict[str, str]  # name -> IP, servers to onboard
    dns_host: tuple[str, str]
    env: dict[str, str] = field(default_factory=C.controller_env)

    def ssh(self, host: str, command: str, check=True, timeout=60) -> subprocess.CompletedProcess:
        ip = self.hosts.get(host) or (self.dns_host[1] if host == self.dns_host[0] else host)
        return run(
            ["ssh", "-i", str(C.SSH_KEY), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new",
             "-o", f"UserKnownHostsFile={C.RUN_DIR / 'ssh' / 'known_hosts'}", "-o", "ConnectTimeout=10",
             f"root@{ip}", command],
            check=check, timeout=timeout,
        )

    def fault(self, host: str, kind: str, value: str) -> None:
        """`scripts/lab fault HOST clock SECONDS | arch i686|native | link down|up`."""
        run([str(LAB), "fault", host, kind, value], timeout=120)

    def aws(self, *args: str, check=True) -> subprocess.CompletedProcess:
        return run([str(ROOT / ".venv" / "bin" / "aws"), *args, "--output", "json"], check=check, env=self.env)

    def aws_json(self, *args: str) -> dict:
        return json.loads(self.aws(*args).stdout or "{}")

    def client(self, service: str):
        return boto3.client(
            service, endpoint_url=C.EMULATOR_URL, region_name=C.REGION,
            aws_access_key_id=C.ACCESS_KEY, aws_secret_access_key=C.SECRET_KEY,
        )


def read_inventory() -> tuple[dict[str, str], tuple[str, str]]:
    data = yaml.safe_load((ROOT / "inventory" / "lab" / "onprem.yml").read_text())
    groups = data["all"]["children"]["onprem"]["children"]
    hosts = {name: v["ansible_host"] for name, v in groups["onprem_hosts"]["hosts"].items()}
    ((dns_name, dns_vars),) = groups["onprem_dns"]["hosts"].items()
    return hosts, (dns_name, dns_vars["ansible_host"])


@dataclass
class PlaybookRun:
    rc: int
    stdout: str
    stderr: str
    recap: dict[str, dict[str, int]]  # host -> {ok, changed, unreachable, failed, skipped, rescued, ignored}

    def changed(self, host: str = "localhost") -> int:
        return self.recap.get(host, {}).get("changed", 0)

    @property
    def total_changed(self) -> int:
        return sum(h.get("changed", 0) for h in self.recap.values())


def parse_recap(stdout: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP lines -> {host: {ok: n, changed: n, ...}} (the last recap wins)."""
    recap: dict[str, dict[str, int]] = {}
    in_recap = False
    for line in stdout.splitlines():
        if line.startswith("PLAY RECAP"):
            in_recap, recap = True, {}
            continue
        if in_recap and " : " in line:
            host, counts = line.split(" : ", 1)
            recap[host.strip()] = {k: int(v) for k, v in (item.split("=") for item in counts.split())}
    return recap


def playbook(name: str, *args: str, env: dict[str, str] | None = None, inventory: str | None = None,
             extra_vars: dict | None = None, check_mode: bool = False, timeout: int = 1200) -> PlaybookRun:
    """Run playbooks/<name> as a user would (ansible.cfg of the project, lab inventory by default)."""
    argv = [str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", inventory or str(ROOT / "inventory" / "lab"),
            str(ROOT / "playbooks" / name), *args]
    if extra_vars:
        argv += ["-e", json.dumps(extra_vars)]
    if check_mode:
        argv += ["--check", "--diff"]
    full_env = {"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0",
                "ANSIBLE_NOCOLOR": "1", **C.controller_env(), **(env or {})}
    result = run(argv, check=False, timeout=timeout, env=full_env, cwd=str(ROOT))
    return PlaybookRun(result.returncode, result.stdout, result.stderr, parse_recap(result.stdout))


def wait_until(what, check, timeout=60.0, interval=1.0):
    """Poll ``check`` until it returns something truthy; fail with the last result after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last result: {last!r}")
