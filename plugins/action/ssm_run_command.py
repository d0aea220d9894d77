# -*- coding: utf-8 -*-
# Copyright: hybrid-onboard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action plugin of hybrid.onboard.ssm_run_command: with wait=true, sends the command(s) once, then follows them
(command_ids) and prints the nodes still running at least every 15 seconds (the module's documentation describes
it)."""

from __future__ import annotations

from ansible.module_utils.parsing.convert_bool import boolean
from ansible_collections.hybrid.onboard.plugins.plugin_utils.wait_progress import WaitProgressAction, as_int


class ActionModule(WaitProgressAction):
    MODULE = "hybrid.onboard.ssm_run_command"
    # The module's defaults for wait_timeout and poll_interval.
    DEFAULT_TIMEOUT = 900
    DEFAULT_DELAY = 3

    def wait_plan(self, args):
        try:
            wait = boolean(args.get("wait", True), strict=True)
            read = boolean(args.get("read_failed_output", True), strict=True)
        except TypeError:
            return None
        timeout = as_int(args.get("wait_timeout", self.DEFAULT_TIMEOUT))
        delay = as_int(args.get("poll_interval", self.DEFAULT_DELAY))
        # In check mode the module sends nothing and does not wait.
        if self._task.check_mode or not wait or timeout is None or delay is None or timeout <= 0 or delay < 1:
            return None
        self._read_failed_output = read
        return timeout, delay

    def slice_args(self, args, runs, seconds):
        # The failed nodes' own output is read once, at the end (finish), not again after every slice.
        sliced = dict(args, wait_timeout=seconds, read_failed_output=False)
        if runs:
            sliced["command_ids"] = runs[0]["command_ids"]
        return sliced

    def pending(self, runs):
        last = runs[-1]
        status = {row.get("instance_id"): row.get("status") for row in last.get("invocations") or []}
        return [f"{node} ({status.get(node) or 'Pending'})" for node in last.get("pending_instance_ids") or []]

    def headline(self, count, runs, left):
        total = len(runs[-1].get("invocations") or []) or count
        return f"Waiting for Run Command on {count} of {total} nodes ({left} s left)"

    def task_view(self, module_args, args):
        for key, default in (("read_failed_output", True), ("command_ids", None)):
            if key in module_args:
                module_args[key] = args.get(key, default)
        return module_args

    def finish(self, args, runs, task_vars):
        last = runs[-1]
        finished_failed = set(last.get("failed_instance_ids") or []) - set(last.get("pending_instance_ids") or [])
        if self._read_failed_output and finished_failed:
            # One more look, reading each failed node's own output as a single run does at its end.
            reread = self._execute_module(
                module_name=self.MODULE,
                module_args=dict(args, wait_timeout=0, command_ids=runs[0]["command_ids"], read_failed_output=True),
                task_vars=task_vars,
            )
            runs.append(reread)
            if reread.get("failed"):
                return reread
            last = reread
        first = runs[0]
        return dict(last, changed=first.get("changed"), command_ids=first["command_ids"], commands=first["commands"])
