"""plugins/filter/ssm_fleet.py: when the fleet phase's wait is over, and which nodes it names."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from plugin_loader import load_plugin

fleet = load_plugin("filter", "ssm_fleet")

OLD = "2026-12-05T05:00:00+00:00"
NEW = "2026-12-05T05:01:30+00:00"


def node(instance_id, status=None, last=None):
    out = {"instance_id": instance_id, "ping_status": "Online"}
    if status is not None:
        out["association_status"] = status
    if last is not None:
        out["last_association_execution_date"] = last
    return out


def test_the_wait_goes_on_for_pending_and_unassociated_nodes_only():
    nodes = [node("mi-1", "Success", OLD), node("mi-2", "Failed", OLD), node("mi-3", "Pending"), node("mi-4")]
    assert fleet.ssm_fleet_waiting(nodes) == ["mi-3 (not run yet)", "mi-4 (no association yet)"]
    assert fleet.ssm_fleet_problems(nodes) == ["mi-2 (failed)", "mi-3 (not run yet)", "mi-4 (no association yet)"]
    assert fleet.ssm_fleet_waiting(nodes[:2]) == []  # a failure is a result: no waiting for the schedule


def test_after_a_rerun_an_old_failure_is_not_a_result_yet():
    before = fleet.ssm_fleet_failed_runs([node("mi-1", "Success", OLD), node("mi-2", "Failed", OLD),
                                          node("mi-3", "Failed")])
    assert before == {"mi-2": OLD, "mi-3": None}
    # AWS still shows the failure the rerun is meant to replace: wait.
    still = [node("mi-1", "Success", OLD), node("mi-2", "Failed", OLD), node("mi-3", "Failed")]
    assert fleet.ssm_fleet_waiting(still, before) == [
        "mi-2 (failed; its run once more has not started yet)",
        "mi-3 (failed; its run once more has not started yet)",
    ]
    assert fleet.ssm_fleet_problems(still, before)[0] == "mi-2 (failed; its run once more has not started yet)"
    # Picked up (Pending), then done: failed again with a new date, or succeeded.
    assert fleet.ssm_fleet_waiting([node("mi-2", "Pending", OLD)], before) == ["mi-2 (not run yet)"]
    done = [node("mi-1", "Success", OLD), node("mi-2", "Failed", NEW), node("mi-3", "Success", NEW)]
    assert fleet.ssm_fleet_waiting(done, before) == []
    assert fleet.ssm_fleet_problems(done, before) == ["mi-2 (failed)"]


def test_without_a_rerun_nothing_is_remembered():
    assert fleet.ssm_fleet_waiting([node("mi-2", "Failed", OLD)], {}) == []
    assert fleet.ssm_fleet_waiting([node("mi-2", "Failed", OLD)], None) == []
    assert fleet.ssm_fleet_problems(None) == []


@pytest.mark.parametrize("nodes", ["mi-1", [{"ping_status": "Online"}], [None], {"mi-1": "Failed"}])
def test_anything_but_managed_nodes_is_refused(nodes):
    with pytest.raises(AnsibleFilterError, match="managed_nodes"):
        fleet.ssm_fleet_waiting(nodes)


def test_a_bad_failed_before_is_refused():
    with pytest.raises(AnsibleFilterError, match="failed_before"):
        fleet.ssm_fleet_waiting([node("mi-1", "Failed", OLD)], ["mi-1"])
