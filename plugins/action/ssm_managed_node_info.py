# -*- coding: utf-8 -*-
# Copyright: hybrid-onboard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action plugin of hybrid.onboard.ssm_managed_node_info: with wait_ping_status, prints the nodes not there yet
at least every 15 seconds while it waits (the module's documentation describes it)."""

from __future__ import annotations

from ansible_collections.hybrid.onboard.plugins.plugin_utils.wait_progress import WaitProgressAction, as_int


class ActionModule(WaitProgressAction):
    MODULE = "hybrid.onboard.ssm_managed_node_info"
    # The module's defaults for wait_timeout and wait_delay.
    DEFAULT_TIMEOUT = 180
    DEFAULT_DELAY = 5

    def wait_plan(self, args):
        timeout = as_int(args.get("wait_timeout", self.DEFAULT_TIMEOUT))
        delay = as_int(args.get("wait_delay", self.DEFAULT_DELAY))
        if not args.get("wait_ping_status") or not args.get("instance_ids") or timeout is None or delay is None:
            return None
        if timeout <= 0 or delay < 1:
            return None
        return timeout, delay

    def pending(self, runs):
        last = runs[-1]
        nodes = {node.get("instance_id"): node for node in last.get("managed_nodes") or []}
        shown = []
        for instance_id in last.get("not_ready") or []:
            node = nodes.get(instance_id)
            about = [node.get("computer_name"), node.get("ping_status")] if node else []
            about = [part for part in about if part]
            shown.append(f"{instance_id} ({', '.join(about)})" if about else instance_id)
        return shown

    def headline(self, count, runs, left):
        args = (runs[-1].get("invocation") or {}).get("module_args") or self._task.args
        total = len(dict.fromkeys(args.get("instance_ids") or [])) or count
        return f"Waiting for {count} of {total} managed nodes to be {args.get('wait_ping_status')} ({left} s left)"
