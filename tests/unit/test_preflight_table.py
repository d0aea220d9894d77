"""The preflight report filters (plugins/filter/preflight_table.py): one table for all hosts."""

from __future__ import annotations

import pytest
from ansible_collections.hybrid.onboard.plugins.module_utils import hybrid_preflight as rules

SSM = "ssm.eu-west-1.amazonaws.com"
S3 = "s3.eu-west-1.amazonaws.com"


@pytest.fixture
def table(plugin):
    return plugin("filter", "preflight_table")


def good_checks(*names):
    checks = []
    for name in names:
        checks += [{"name": name, "kind": "dns", "ok": True}, {"name": name, "kind": "tcp443", "ok": True},
                   {"name": name, "kind": "tls", "ok": True}]
    return checks + [{"name": "clock", "kind": "clock", "ok": True}, {"name": "os", "kind": "os", "ok": True},
                     {"name": "arch", "kind": "arch", "ok": True}, {"name": "/var/lib", "kind": "disk", "ok": True}]


RESULTS = {
    "host1": {"checks": good_checks(SSM, S3), "problems": [], "clock_offset": 1.2,
              "platform": {"os_id": "debian", "arch": "amd64", "machine": "x86_64"}},
    "host2": {"checks": [c if c["name"] != S3 or c["kind"] != "dns" else dict(c, ok=False)
                         for c in good_checks(SSM, S3) if not (c["name"] == S3 and c["kind"] != "dns")]
              + [{"name": S3, "kind": "tcp443", "ok": None}],
              "problems": [rules.dns_problem(S3, outside=["203.0.113.9"])], "clock_offset": -0.4,
              "platform": {"os_id": "debian", "arch": "amd64", "machine": "x86_64"}},
    "host3": {"unreachable": True, "msg": "Failed to connect to the host via ssh: timed out"},
}
DIAGNOSIS = [{"name": S3, "code": "s3_public", "verdict": rules.VERDICTS["s3_public"], "hint": "zone"}]


def test_one_table_for_all_hosts(table):
    lines = table.preflight_table(RESULTS, DIAGNOSIS)
    assert [c.strip() for c in lines[0].split("|")] == ["host", "dns", "tcp443", "tls", "clock", "os/arch", "disk",
                                                        "verdict"]
    rows = {line.split("|")[0].strip(): [c.strip() for c in line.split("|")] for line in lines[2:]}
    assert rows["host1"][1:] == ["ok", "ok", "ok", "ok +1s", "ok debian/amd64", "ok", "ok"]
    assert rows["host2"][1] == "FAIL" and rows["host2"][-1] == "FAIL: S3 resolves public: no private DNS for S3"
    assert rows["host3"][-1].startswith("NOT PROBED: Failed to connect")
    rule = [i for i, c in enumerate(lines[1]) if c == "+"]
    assert all([i for i, c in enumerate(line) if c == "|"] == rule for line in lines[:1] + lines[2:])


def test_failed_names_hosts_and_control_names(table):
    assert table.preflight_failed_names(RESULTS) == [S3]
    assert table.preflight_failed_hosts(RESULTS) == ["host2"]
    assert table.preflight_control_names(RESULTS) == [SSM]


def test_results_from_hostvars_tolerate_hosts_without_a_result(table):
    hostvars = {"host1": {"__probe": RESULTS["host1"]}, "host2": {}}
    assert table.preflight_results(hostvars, ["host1", "host2"], "__probe") == {"host1": RESULTS["host1"], "host2": {}}


def test_host_message_filter(table):
    message = table.preflight_host_message(RESULTS["host2"], "host2", DIAGNOSIS)
    assert message.startswith("host2: 1 preflight problem(s), nothing was changed:")
    assert message.endswith("-> zone")
