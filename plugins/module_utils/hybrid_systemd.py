# -*- coding: utf-8 -*-
# Copyright: hybrid-onboard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""systemd helpers shared by the host-side modules (host_files, agent_service). Runs on the managed host: standard
library and ansible.module_utils only, Python 3.6 syntax."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# UnitFileState values of a unit that starts at boot, or that cannot be enabled (static, generated, ...).
ENABLED_STATES = ("enabled", "enabled-runtime", "static", "alias", "indirect", "generated")
ACTIVE_STATES = ("active", "reloading")


def systemctl_show(module, systemctl, unit, properties, **fail_extra):
    """{property: value} of ``unit`` from ``systemctl show``; fails the module when systemctl does."""
    argv = [systemctl, "show"] + ["--property=%s" % name for name in properties] + ["--", unit]
    rc, out, err = module.run_command(argv)
    if rc != 0:
        module.fail_json(msg="systemctl show %s failed (rc %d): %s" % (unit, rc, (err or out).strip()), **fail_extra)
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
