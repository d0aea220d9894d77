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
    # The end-to-end module brings the lab up afresh and leaves it fully onboarded: it runs after the other lab
    # modules (which each leave the lab as they found it), and before the lifecycle test that takes the lab down.
    last = ("test_end_to_end_lab.py", "test_zz_lab_lifecycle.py")
    items.sort(key=lambda item: last.index(item.path.name) + 1 if item.path.name in last else 0)


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
