"""One lab for the whole integration session, asserted from outside (AWS CLI, boto3, dig, ssh, curl).

The lab is started once with `scripts/lab up --hosts 3` (as a user would) and torn down at the end with
`scripts/lab down`. Tests that need a lab of their own (the lifecycle test) run last and bring their own.
"""

from __future__ import annotations

import os

import pytest
from labtools import LAB, N_HOSTS, Lab, read_inventory, run


def pytest_collection_modifyitems(config, items):
    """Mark every test on the shared lab `lab_hosts`, so `-m lab_hosts` / `-m "not lab_hosts"` split the suite
    into the lab stream and the AWS-only stream (make test runs them side by side); order the lab's modules."""
    for item in items:
        if "lab" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.lab_hosts)
    # The lab modules in the order of the phases: from the preflight's on, each starts where the one before left
    # off (labtools.stage). Those before it, and any module not listed (it runs first), leave the lab as they
    # found it. The end-to-end module brings the lab up afresh and leaves it fully onboarded; the lifecycle test
    # takes the lab down.
    items.sort(key=lambda item: LAB_ORDER.index(item.path.name) + 1 if item.path.name in LAB_ORDER else 0)


LAB_ORDER = ("test_lab.py", "test_agents_manual.py", "test_network_phase_lab.py", "test_onprem_dns_lab.py",
             "test_preflight_lab.py", "test_ssm_agent_lab.py", "test_cloudwatch_agent_lab.py", "test_fleet_lab.py",
             "test_end_to_end_lab.py", "test_zz_lab_lifecycle.py")


@pytest.fixture(scope="session")
def lab():
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (network namespaces, systemd-nspawn)")
    run([str(LAB), "up", "--hosts", str(N_HOSTS)], timeout=1800)
    hosts, dns_host = read_inventory()
    try:
        yield Lab(hosts=hosts, dns_host=dns_host)
    finally:
        if os.environ.get("HYBRID_TEST_KEEP_LAB") != "1":  # keep it for a post-mortem when asked
            run([str(LAB), "down"], check=False, timeout=300)


@pytest.fixture(scope="session")
def aws_only():
    """An AWS emulator without the lab network, for AWS-side phases (no root needed).

    Yields the environment that points ansible-playbook and boto3 at it.
    """
    from emulator import server

    handle = server.start_in_thread(port=0)
    env = {"AWS_ENDPOINT_URL": handle.url}
    try:
        yield env
    finally:
        handle.stop()
