"""Helpers of the integration tests: run commands, reach lab hosts over SSH, call the emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "lab"))
import labconst as C  # noqa: E402

LAB = ROOT / "scripts" / "lab"
N_HOSTS = int(os.environ.get("HYBRID_TEST_HOSTS", "3"))
SSM_VAULT_KEY = "/var/lib/amazon/ssm/Vault/Store/RegistrationKey"


def run(argv, check=True, timeout=600, env=None, **kw) -> subprocess.CompletedProcess:
    full_env = dict(os.environ)
    full_env.update(env or {})
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=full_env, check=False, **kw)
    if check and result.returncode != 0:
        raise AssertionError(f"{argv} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@dataclass
class Lab:
    hosts: dict[str, str]  # name -> IP, servers to onboard
    dns_host: tuple[str, str]
    env: dict[str, str] = field(default_factory=C.controller_env)
    # The playbooks the shared lab is converged to, as the module before handed it over (see `stage`); None when
    # no one vouches for its state (a module failed, or left it changed): the next stage brings it up afresh.
    ready: frozenset[str] | None = frozenset()

    def ssh(self, host: str, command: str, check=True, timeout=60) -> subprocess.CompletedProcess:
        ip = self.hosts.get(host) or (self.dns_host[1] if host == self.dns_host[0] else host)
        return run(
            ["ssh", "-i", str(C.SSH_KEY), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
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

    def nodes(self) -> list[dict]:
        """Every managed node SSM knows (DescribeInstanceInformation, all pages)."""
        pages = self.client("ssm").get_paginator("describe_instance_information").paginate()
        return [node for page in pages for node in page["InstanceInformationList"]]

    def vault_id(self, host: str) -> str | None:
        """The mi- id the host's SSM Agent registered as (its Vault), None when it has none."""
        result = self.ssh(host, f"cat {SSM_VAULT_KEY}", check=False)
        return json.loads(result.stdout)["instanceID"] if result.returncode == 0 and result.stdout.strip() else None

    def dig(self, host: str, name: str, server: str | None = None) -> set[str]:
        """The A records `host` gets for `name` (from its resolver, or from `server`), as a user's dig shows."""
        at = f"@{server} " if server else ""
        out = self.ssh(host, f"dig +short +time=2 +tries=3 {at}{name} A", check=False).stdout
        return {line for line in out.split() if line.count(".") == 3 and line.replace(".", "").isdigit()}

    def interface_endpoints(self) -> dict[str, tuple[set[str], dict]]:
        """The lab VPC's available interface endpoints: short service name -> (ENI IPs, the endpoint)."""
        ec2 = self.client("ec2")
        found = {}
        for ep in ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [C.VPC_ID]}])["VpcEndpoints"]:
            if ep["State"].lower() == "available" and ep["VpcEndpointType"] == "Interface":
                enis = ec2.describe_network_interfaces(NetworkInterfaceIds=ep["NetworkInterfaceIds"])
                ips = {eni["PrivateIpAddress"] for eni in enis["NetworkInterfaces"]}
                found[ep["ServiceName"].rsplit(".", 1)[1]] = (ips, ep)
        return found

    def endpoint_ips(self) -> dict[str, set[str]]:
        """Short service name -> the ENI IPs of its interface endpoint."""
        return {service: ips for service, (ips, _dns) in self.interface_endpoints().items()}


def read_inventory() -> tuple[dict[str, str], tuple[str, str]]:
    data = yaml.safe_load((ROOT / "inventory" / "lab" / "onprem.yml").read_text())
    groups = data["all"]["children"]["onprem"]["children"]
    hosts = {name: v["ansible_host"] for name, v in groups["onprem_hosts"]["hosts"].items()}
    ((dns_name, dns_vars),) = groups["onprem_dns"]["hosts"].items()
    return hosts, (dns_name, dns_vars["ansible_host"])


def afresh(lab: Lab) -> Lab:
    """The shared lab brought up afresh (`scripts/lab up` clears the old one): a new AWS account, clean hosts.

    How a stage starts when nobody vouches for the lab (see `stage`): cheaper than undoing phases playbook by
    playbook (the absent paths have tests of their own), and nothing a failed module made can leak into the next.
    """
    run([str(LAB), "up", "--hosts", str(len(lab.hosts))], timeout=1800)
    assert read_inventory() == (lab.hosts, lab.dns_host)
    return lab


@contextmanager
def stage(lab: Lab, request, needs: Sequence[str], leaves: Sequence[str] | None = None,
          fresh: bool = False) -> Iterator[Lab]:
    """A lab module's setting: the shared lab converged by the playbooks `needs` (in order), then handed over.

    The lab modules run in the order of the phases (conftest), each starting where the one before left off: a
    playbook the module before handed over as converged (run there, or put back after a fault, and not changed
    since) is not run again, the others are. At the end the module hands the lab over converged by `leaves`, only
    if every one of its tests passed; when one failed (or `leaves` is None: the module leaves the lab changed),
    nobody vouches for the lab and the next stage brings it up afresh. `fresh` always starts from a lab brought up
    afresh (a new AWS account, clean hosts). A module run on its own starts from nothing and runs every playbook
    of `needs`.
    """
    converged = lab.ready
    if fresh or converged is None:
        afresh(lab)
        converged = frozenset()
    lab.ready = None  # the lab is this module's until it hands it over
    failed = request.session.testsfailed
    for name in needs:
        if name not in converged:
            result = playbook(name)
            assert result.rc == 0, f"{name}:\n{result.stdout[-3000:]}"
    try:
        yield lab
    finally:
        if leaves is not None and request.session.testsfailed == failed:
            lab.ready = frozenset(leaves)


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
            items = [item.split("=") for item in counts.split()]
            if items and all(len(kv) == 2 and kv[1].isdigit() for kv in items):  # not a line printed after it
                recap[host.strip()] = {k: int(v) for k, v in items}
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
