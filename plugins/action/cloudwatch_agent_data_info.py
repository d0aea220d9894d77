# -*- coding: utf-8 -*-
# Copyright: hybrid-onboard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action plugin of hybrid.onboard.cloudwatch_agent_data_info: with wait_timeout above 0, prints the hosts still
missing data at least every 15 seconds while it waits (the module's documentation describes it)."""

from __future__ import annotations

from ansible_collections.hybrid.onboard.plugins.plugin_utils.wait_progress import WaitProgressAction, as_int


def _complete(row):
    return row.get("metrics_seen") and row.get("log_streams_seen")


class ActionModule(WaitProgressAction):
    MODULE = "hybrid.onboard.cloudwatch_agent_data_info"
    # The module's defaults for wait_timeout and wait_delay.
    DEFAULT_TIMEOUT = 0
    DEFAULT_DELAY = 10

    def wait_plan(self, args):
        timeout = as_int(args.get("wait_timeout", self.DEFAULT_TIMEOUT))
        delay = as_int(args.get("wait_delay", self.DEFAULT_DELAY))
        if timeout is None or delay is None or timeout <= 0 or delay < 1:
            return None
        return timeout, delay

    @staticmethod
    def _rows(runs):
        """{host: its latest row}, in the order of the first run (the task's hosts, duplicates once)."""
        rows = {}
        for run in runs:
            rows.update((row["host"], row) for row in run.get("hosts") or [])
        return rows

    def slice_args(self, args, runs, seconds):
        if not runs:
            return dict(args, wait_timeout=seconds)
        # Hosts complete so far are not asked for again, as within one run.
        missing = [host for host, row in self._rows(runs).items() if not _complete(row)]
        return dict(args, hosts=missing, wait_timeout=seconds)

    def pending(self, runs):
        shown = []
        for host, row in self._rows(runs).items():
            if _complete(row):
                continue
            streams = len(row.get("missing_log_streams") or [])
            about = ([] if row.get("metrics_seen") else ["metrics"]) + (
                [f"{streams} log stream{'' if streams == 1 else 's'}"] if streams else []
            )
            shown.append(f"{host} ({', '.join(about)})")
        return shown

    def headline(self, count, runs, left):
        total = len(runs[0].get("hosts") or []) or count
        return f"Waiting for CloudWatch data from {count} of {total} hosts ({left} s left)"

    def finish(self, args, runs, task_vars):
        rows = list(self._rows(runs).values())
        return dict(
            runs[-1],
            hosts=rows,
            missing_metrics_hosts=[row["host"] for row in rows if not row.get("metrics_seen")],
            missing_logs_hosts=[row["host"] for row in rows if not row.get("log_streams_seen")],
            ready=all(_complete(row) for row in rows),
        )
