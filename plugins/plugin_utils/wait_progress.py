# -*- coding: utf-8 -*-
# Copyright: hybrid-onboard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Progress lines for modules that wait on AWS from the controller.

A module run shows nothing until it returns, so a wait of several minutes looks like a hang. The action plugins of
those modules (same name as the module) run the module several times with a short wait of its own (a slice), print
who is still pending between two runs, and return one result as a single run would. The module's own polling and
its AWS calls per poll stay as they are; between two slices the plugin pauses for one poll interval, so AWS is not
asked more often than the task's delay says.
"""

from __future__ import annotations

import time

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible.utils.vars import merge_hash

display = Display()

# Longest gap between two progress lines, in seconds.
PROGRESS_EVERY = 15
# What one module run costs besides its wait (AnsiballZ, importing boto3, a new client), kept out of that gap.
RUN_OVERHEAD = 3
# Names per progress line; the others are counted.
SHOWN = 20


def as_int(value):
    """An integer option as the module would take it, or None (the module then reports the bad value itself)."""
    if isinstance(value, bool):
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def slice_seconds(delay, left):
    """The module's own wait in one run: whole poll intervals, short enough that the run, the pause of one
    interval after it and the line stay within PROGRESS_EVERY; never beyond what is left of the whole wait."""
    whole = max(0, (PROGRESS_EVERY - RUN_OVERHEAD - delay) // delay)
    return max(0, min(delay * whole, int(left)))


def listing(items):
    shown = ", ".join(items[:SHOWN])
    more = len(items) - SHOWN
    return f"{shown} and {more} more" if more > 0 else shown


class WaitProgressAction(ActionBase):
    """Runs ``MODULE`` in slices while it waits; subclasses say what to pass each slice and what is pending."""

    MODULE = ""
    _supports_check_mode = True
    _supports_async = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # no effect any more
        wrap_async = self._task.async_val and not self._connection.has_native_async
        args = dict(self._task.args)
        # An async task gets the module's own result (the job), as without this plugin.
        plan = None if self._task.async_val else self.wait_plan(args)
        try:
            if plan is None:
                done = self._execute_module(
                    module_name=self.MODULE, module_args=args, task_vars=task_vars, wrap_async=wrap_async
                )
            else:
                done = self._wait(args, task_vars, *plan)
        finally:
            if not wrap_async:
                self._remove_tmp_path(self._connection._shell.tmpdir)
        return merge_hash(result, done)

    def _wait(self, args, task_vars, timeout, delay):
        started = time.monotonic()
        deadline = started + timeout
        runs = []
        while True:
            slice_args = self.slice_args(args, runs, slice_seconds(delay, deadline - time.monotonic()))
            runs.append(self._execute_module(module_name=self.MODULE, module_args=slice_args, task_vars=task_vars))
            if runs[-1].get("failed"):
                return self._merged(runs, runs[-1], args)
            pending = self.pending(runs)
            if not pending:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                break
            pause = min(delay, left)
            while True:
                display.display(f"{self.headline(len(pending), runs, round(left))}: {listing(pending)}")
                step = min(pause, PROGRESS_EVERY - RUN_OVERHEAD)
                time.sleep(step)
                pause -= step
                left = deadline - time.monotonic()
                if pause <= 0:
                    break
        final = self.finish(args, runs, task_vars)
        final["waited"] = round(time.monotonic() - started, 1)
        return self._merged(runs, final, args)

    def _merged(self, runs, final, args):
        """``final`` with the warnings of every run (once each) and the first run's invocation, showing the
        task's own wait_timeout rather than a slice's."""
        final = dict(final)
        warnings = []
        for run in runs:
            warnings += [w for w in run.get("warnings") or [] if w not in warnings]
        if warnings:
            final["warnings"] = warnings
        invocation = runs[0].get("invocation")
        if isinstance(invocation, dict) and isinstance(invocation.get("module_args"), dict):
            module_args = dict(invocation["module_args"], wait_timeout=args.get("wait_timeout", self.DEFAULT_TIMEOUT))
            final["invocation"] = dict(invocation, module_args=self.task_view(module_args, args))
        return final

    # What a subclass provides.
    DEFAULT_TIMEOUT = 0

    def wait_plan(self, args):
        """(whole wait in seconds, seconds between polls) when the task waits, else None (one plain run)."""
        raise NotImplementedError

    def slice_args(self, args, runs, seconds):
        """Module arguments of the next run, after ``runs`` (the results so far), waiting ``seconds`` itself."""
        return dict(args, wait_timeout=seconds)

    def task_view(self, module_args, args):
        """The module arguments as the task gave them, without what the plugin set for a slice."""
        return module_args

    def pending(self, runs):
        """Who is still pending after the last run, one short text each."""
        raise NotImplementedError

    def headline(self, count, runs, left):
        raise NotImplementedError

    def finish(self, args, runs, task_vars):
        """The task's result from the runs (``waited`` is set by the caller)."""
        return dict(runs[-1])
