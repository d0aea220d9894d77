#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hybrid-onboard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Ansible's module layout: documentation before the imports. Runs on the managed host: standard library and
# ansible.module_utils only, Python 3.6 syntax (RHEL 8's platform Python).
# ruff: noqa: E402

DOCUMENTATION = r"""
---
module: agent_service
short_description: Keep an agent's systemd unit enabled and running, and see that it stays up
version_added: 0.3.0
description:
  - Runs on the managed host and does in one SSH round trip what would otherwise be a C(systemd) task, a check that
    the process is still running a moment later, a second start and a second check.
  - Enables the unit when it is not enabled and starts it when it is not active (one that crash-loops is not
    active). After a start - or always with O(verify=true), for a unit that an earlier task restarted - it checks
    that the unit's process is C(running), and still C(running) O(settle) seconds later (systemd reports a unit
    started whose process then dies at once, for instance "Failed to attach to cgroup" after a quick stop and
    start, or a broken config).
  - A unit that died right after starting is started once more, with a warning; one that stays down fails the
    host with C(systemctl status) and the last lines of its journal.
author:
  - hybrid-onboard maintainers (@hybrid-onboard)
options:
  name:
    description: The systemd unit (C(amazon-ssm-agent.service)).
    type: str
    required: true
  enabled:
    description: Whether the unit is enabled when the module ends (it is never disabled).
    type: bool
    default: true
  verify:
    description: Check that the process stays up even when the unit was already active (an earlier task restarted it).
    type: bool
    default: false
  settle:
    description: Seconds the process must stay C(running) to count as up.
    type: int
    default: 1
  attempts:
    description: How many times the process is looked for (O(settle) seconds apart) before it counts as down.
    type: int
    default: 5
  journal_lines:
    description: Lines of the unit's journal shown when it stays down.
    type: int
    default: 20
notes:
  - Supports check mode (reports the enable and start it would do, changes nothing).
seealso:
  - module: ansible.builtin.systemd_service
"""

EXAMPLES = r"""
- name: Enable and start the SSM Agent, and see it stay up
  hybrid.onboard.agent_service:
    name: amazon-ssm-agent.service
    verify: "{{ restarted is changed }}"
"""

RETURN = r"""
enabled_now:
  description: Whether the unit was (would be) enabled by this run.
  returned: always
  type: bool
started:
  description: Whether the unit was (would be) started by this run (the second start included).
  returned: always
  type: bool
started_again:
  description: Whether the process died right after a start and was started once more.
  returned: always
  type: bool
active_state:
  description: The unit's C(ActiveState) when the module ends.
  returned: always
  type: str
  sample: active
sub_state:
  description: The unit's C(SubState) when the module ends.
  returned: always
  type: str
  sample: running
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hybrid.onboard.plugins.module_utils.hybrid_systemd import (
    ACTIVE_STATES,
    ENABLED_STATES,
    systemctl_show,
)


class AgentService(object):
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.systemctl = module.get_bin_path("systemctl", required=True)
        self.result = dict(changed=False, enabled_now=False, started=False, started_again=False)

    def validate(self):
        for key, low in (("settle", 0), ("attempts", 1), ("journal_lines", 0)):
            if self.params[key] < low:
                self.module.fail_json(msg="%s must be at least %d; got %d" % (key, low, self.params[key]))

    def show(self):
        return systemctl_show(self.module, self.systemctl, self.params["name"],
                              ["ActiveState", "SubState", "UnitFileState", "LoadState"], **self.result)

    def systemctl_do(self, verb):
        rc, out, err = self.module.run_command([self.systemctl, verb, self.params["name"]])
        if rc != 0:
            self.fail_down("systemctl %s %s failed (rc %d): %s" % (verb, self.params["name"], rc, (err or out).strip()))

    def stays_up(self):
        """The process is running now and still running ``settle`` seconds later (looked for ``attempts`` times)."""
        for _attempt in range(self.params["attempts"]):
            if self.show().get("SubState") == "running":
                time.sleep(self.params["settle"])
                if self.show().get("SubState") == "running":
                    return True
            time.sleep(self.params["settle"])
        return False

    def fail_down(self, why):
        name = self.params["name"]
        _rc, status, _err = self.module.run_command([self.systemctl, "status", "--no-pager", name])
        journal = ""
        journalctl = self.module.get_bin_path("journalctl")
        if journalctl and self.params["journal_lines"]:
            _rc, journal, _err = self.module.run_command(
                [journalctl, "-u", name, "-n", str(self.params["journal_lines"]), "--no-pager"]
            )
        state = self.show()
        self.module.fail_json(
            msg="%s. systemctl status:\n%s\njournal:\n%s" % (why, status.strip(), journal.strip()),
            active_state=state.get("ActiveState", ""),
            sub_state=state.get("SubState", ""),
            **self.result
        )

    def run(self):
        self.validate()
        name = self.params["name"]
        state = self.show()
        if state.get("LoadState") == "not-found":
            self.module.fail_json(msg="%s: no such unit on this host (is the agent installed?)" % name, **self.result)
        if self.params["enabled"] and state.get("UnitFileState", "") not in ENABLED_STATES:
            self.result["enabled_now"] = True
            if not self.module.check_mode:
                self.systemctl_do("enable")
        if state.get("ActiveState") not in ACTIVE_STATES:
            self.result["started"] = True
            if not self.module.check_mode:
                self.systemctl_do("start")
        self.result["changed"] = self.result["enabled_now"] or self.result["started"]
        look = not self.module.check_mode and (self.result["started"] or self.params["verify"])
        if look and not self.stays_up():
            self.module.warn("%s died right after starting; starting it once more" % name)
            self.result.update(started=True, started_again=True, changed=True)
            self.systemctl_do("restart")
            if not self.stays_up():
                self.fail_down("%s does not stay running: it was started twice and died each time" % name)
        state = self.show()
        self.result.update(active_state=state.get("ActiveState", ""), sub_state=state.get("SubState", ""))
        self.module.exit_json(**self.result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            enabled=dict(type="bool", default=True),
            verify=dict(type="bool", default=False),
            settle=dict(type="int", default=1),
            attempts=dict(type="int", default=5),
            journal_lines=dict(type="int", default=20),
        ),
        supports_check_mode=True,
    )
    AgentService(module).run()


if __name__ == "__main__":
    main()
