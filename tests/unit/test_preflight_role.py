"""playbooks/preflight.yml (role endpoint_preflight) run by ansible-playbook against a local "on-prem host"
(connection local), the in-thread AWS emulator for the look-ups, an HTTPS endpoint and DNS stand-ins on 127.0.0.x.
No lab, no traffic beyond loopback: the probed names resolve through /etc/hosts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "unit" / "modules"))
sys.path.insert(0, str(ROOT / "tests" / "unit"))

import labconst  # noqa: E402
from test_dns_path_diagnosis import DnsServer  # noqa: E402
from test_endpoint_probe import HttpsServer, make_ca, make_server_cert  # noqa: E402


@pytest.fixture(scope="module")
def aws_env():
    from emulator import server

    handle = server.start_in_thread(port=0)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BOTO_"))}
    env.update(AWS_ENDPOINT_URL=handle.url, AWS_REGION=labconst.REGION, AWS_DEFAULT_REGION=labconst.REGION,
               AWS_ACCESS_KEY_ID=labconst.ACCESS_KEY, AWS_SECRET_ACCESS_KEY=labconst.SECRET_KEY,
               NO_PROXY="127.0.0.1,localhost", ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_INJECT_FACT_VARS="false")
    try:
        yield env
    finally:
        handle.stop()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("preflight")
    ca_key, ca_cert, bundle = make_ca(tmp)
    cert, key = make_server_cert(tmp, ca_key, ca_cert, ["localhost"])
    inventory = tmp / "inventory"
    (inventory / "group_vars" / "all").mkdir(parents=True)
    (inventory / "hosts.yml").write_text(yaml.safe_dump({"all": {
        "hosts": {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}},
        "children": {"onprem_hosts": {"hosts": {"probe1": {"ansible_connection": "local",
                                                           "ansible_python_interpreter": sys.executable}}}}}}))
    (inventory / "group_vars" / "all" / "main.yml").write_text(yaml.safe_dump({
        "hybrid_name": "lab", "hybrid_region": labconst.REGION, "hybrid_vpc_id": labconst.VPC_ID,
        "hybrid_vpc_cidrs": ["127.0.0.0/8"]}))
    return {"tmp": tmp, "bundle": str(bundle), "cert": cert, "key": key, "inventory": str(inventory)}


def run(site, env, server, **extra):
    extra_vars = {"endpoint_preflight_services": [], "endpoint_preflight_agent_buckets": False,
                  "endpoint_preflight_extra_names": ["localhost"], "endpoint_preflight_port": server.port,
                  "endpoint_preflight_ca_bundle": site["bundle"], "endpoint_preflight_check_package": False,
                  "endpoint_preflight_disk_min_free_mb": {"/tmp": 1}, "endpoint_preflight_timeout": 3}
    extra_vars.update(extra)
    argv = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", site["inventory"],
            str(ROOT / "playbooks" / "preflight.yml"), "-e", json.dumps(extra_vars)]
    return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=str(ROOT), timeout=300, check=False)


def test_preflight_passes_and_prints_one_table(site, aws_env):
    server = HttpsServer(site["cert"], site["key"])
    try:
        proc = run(site, aws_env, server)
    finally:
        server.stop()
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "host   | dns | tcp443 | tls | clock" in proc.stdout
    assert "probe1 | ok  | ok     | ok  | ok" in proc.stdout
    assert "changed=0" in proc.stdout and "failed=0" in proc.stdout


def test_clock_off_fails_the_host_and_the_run_with_the_hint(site, aws_env):
    server = HttpsServer(site["cert"], site["key"], clock_offset=-400)
    try:
        proc = run(site, aws_env, server, endpoint_preflight_check_package=True,
                   endpoint_preflight_package_url=f"https://localhost:{server.port}/amazon-ssm-agent.{{pkg}}")
    finally:
        server.stop()
    assert proc.returncode != 0, proc.stdout
    assert re.search(r"clock 40[01] s off: fix NTP before registering \(SigV4 fails above 5 minutes\)", proc.stdout)
    assert "probe1: 1 preflight problem(s), nothing was changed" in proc.stdout
    assert ("HEAD", "/amazon-ssm-agent.deb") in server.requests or ("HEAD", "/amazon-ssm-agent.rpm") in server.requests


def test_public_answer_is_diagnosed_from_the_controller(site, aws_env):
    server = HttpsServer(site["cert"], site["key"])
    port_probe = DnsServer("127.0.0.41", 0, lambda name: ["10.0.1.10"])
    onprem = DnsServer("127.0.0.42", port_probe.port, lambda name: "servfail")
    try:
        proc = run(site, aws_env, server, endpoint_preflight_vpc_cidrs=["10.0.0.0/16"],
                   endpoint_preflight_resolver_ips=["127.0.0.41"], endpoint_preflight_onprem_dns_servers=["127.0.0.42"],
                   endpoint_preflight_dns_port=port_probe.port, endpoint_preflight_fail_run=False)
    finally:
        server.stop()
        port_probe.stop()
        onprem.stop()
    assert proc.returncode != 0
    assert "localhost resolves outside the VPC (127.0.0.1)" in proc.stdout
    assert "DNS path: on-prem DNS does not forward" in proc.stdout
    assert "FAIL: on-prem DNS does not forward" in proc.stdout  # the table's verdict column
