"""The progress slicing of the action plugins that wait (plugins/plugin_utils/wait_progress.py): a slice plus the
pause after it stays within the promised gap between two progress lines, and each plugin's defaults are its
module's. Their output through `ansible` is tested with each module (tests/unit/modules)."""

from __future__ import annotations

import pytest
import yaml
from plugin_loader import load_plugin

WAITING = {
    "ssm_managed_node_info": ("wait_timeout", "wait_delay"),
    "cloudwatch_agent_data_info": ("wait_timeout", "wait_delay"),
    "ssm_run_command": ("wait_timeout", "poll_interval"),
}


@pytest.mark.parametrize("name", sorted(WAITING))
def test_each_plugin_knows_its_modules_defaults(name):
    options = yaml.safe_load(load_plugin("modules", name).DOCUMENTATION)["options"]
    plugin = load_plugin("action", name).ActionModule
    timeout, delay = WAITING[name]
    module, defaults = plugin.MODULE, (plugin.DEFAULT_TIMEOUT, plugin.DEFAULT_DELAY)
    assert module == f"hybrid.onboard.{name}"
    assert defaults == (options[timeout]["default"], options[delay]["default"])


@pytest.mark.parametrize("delay", range(1, 40))
def test_a_slice_and_its_pause_stay_within_the_progress_gap(delay):
    progress = load_plugin("plugin_utils", "wait_progress")
    seconds = progress.slice_seconds(delay, left=10_000)
    assert seconds % delay == 0  # whole poll intervals: the module's last poll ends the slice
    if delay <= progress.PROGRESS_EVERY - progress.RUN_OVERHEAD:
        assert seconds + delay + progress.RUN_OVERHEAD <= progress.PROGRESS_EVERY
    else:
        assert seconds == 0  # one look a run; the plugin's pause is cut into lines
    assert progress.slice_seconds(delay, left=2.7) <= 2


def test_long_lists_are_cut():
    progress = load_plugin("plugin_utils", "wait_progress")
    names = [f"mi-{n:017x}" for n in range(25)]
    assert progress.listing(names[:3]) == ", ".join(names[:3])
    assert progress.listing(names).endswith(f"{names[19]} and 5 more")
