# -*- coding: utf-8 -*-
# Copyright: hybrid-onboard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the fleet phase's wait reads from the nodes' association results (ssm_managed_node_info's managed_nodes).

A node reports one association status for all the associations that target it (DescribeInstanceInformation's
AssociationStatus) and the date of its last association run. Success means every one succeeded; Failed that one
failed; anything else (Pending, InProgress) that a run is still due; no status at all that no association targets
the node yet.

After "Apply association now" (StartAssociationsOnce) AWS can keep showing a node's old Failed result until the
node's agent has picked the new run up, so a node that failed before the rerun is settled only once its last
association run is a new one (another date) or it reports Success.

- ``ssm_fleet_failed_runs``: ``{instance_id: last_association_execution_date}`` of the nodes whose status is
  Failed, taken just before the failed associations run once more.
- ``ssm_fleet_waiting``: the nodes the wait must go on waiting for, as ``'mi-... (label)'``.
- ``ssm_fleet_problems``: every node that has not run all its associations successfully, as ``'mi-... (label)'``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

_DONE = ("Success", "Failed")


def _nodes(nodes):
    if nodes is None:
        return []
    if not isinstance(nodes, list) or not all(isinstance(n, dict) and n.get("instance_id") for n in nodes):
        raise AnsibleFilterError("ssm_fleet filters take ssm_managed_node_info's managed_nodes (a list of nodes "
                                 "with instance_id), got %r" % (nodes,))
    return nodes


def _failed_before(failed_before):
    if failed_before is None:
        return {}
    if not isinstance(failed_before, dict):
        raise AnsibleFilterError("failed_before must be ssm_fleet_failed_runs' mapping of instance IDs to dates, "
                                 "got %r" % (failed_before,))
    return failed_before


def _label(node, failed_before):
    """None when the node has run all its associations successfully, else why not; and whether it is settled."""
    status = node.get("association_status")
    if status is None:
        return "no association yet", False
    if status == "Success":
        return None, True
    if status not in _DONE:
        return "not run yet", False
    instance_id = node["instance_id"]
    if instance_id in failed_before and node.get("last_association_execution_date") == failed_before[instance_id]:
        return "failed; its run once more has not started yet", False
    return "failed", True


def ssm_fleet_failed_runs(nodes):
    """The failed nodes and the date of their last association run."""
    return {n["instance_id"]: n.get("last_association_execution_date")
            for n in _nodes(nodes) if n.get("association_status") == "Failed"}


def ssm_fleet_waiting(nodes, failed_before=None):
    """Nodes whose result is still to come (none: the wait is over)."""
    before = _failed_before(failed_before)
    out = []
    for node in _nodes(nodes):
        label, settled = _label(node, before)
        if not settled:
            out.append("%s (%s)" % (node["instance_id"], label))
    return out


def ssm_fleet_problems(nodes, failed_before=None):
    """Nodes that have not run all their associations successfully, failed ones first."""
    before = _failed_before(failed_before)
    failed, other = [], []
    for node in _nodes(nodes):
        label, _settled = _label(node, before)
        if label is not None:
            (failed if label.startswith("failed") else other).append("%s (%s)" % (node["instance_id"], label))
    return failed + other


class FilterModule:
    """Fleet-phase helpers."""

    def filters(self):
        return {
            "ssm_fleet_failed_runs": ssm_fleet_failed_runs,
            "ssm_fleet_waiting": ssm_fleet_waiting,
            "ssm_fleet_problems": ssm_fleet_problems,
        }
