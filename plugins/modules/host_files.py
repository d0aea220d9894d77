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
module: host_files
short_description: Converge an agent's small config files on a host in one step, and read its services' state
version_added: 0.3.0
description:
  - Runs on the managed host and does in one SSH round trip what would otherwise be a C(template), a C(copy), a
    C(file), two C(ini_file) and a C(systemd) status task each - so a no-op run over a rack costs one module start
    per host, not six.
  - O(files) are written only when their content, mode, owner or group differ. A new content is written to a
    temporary file in the same directory, checked with the entry's C(validate) command when one is given (the old
    file stays when it fails, and the module fails with the command's output), then moved over the old file
    atomically. Missing parent directories are created (C(0755), root).
  - O(absent) paths are removed when they exist.
  - O(ini_sections_absent) removes a C([section]) and its lines from an INI-style file (such as
    C(/root/.aws/credentials)); the rest of the file is kept byte for byte. Their contents never appear in the
    result or a diff - those files hold keys.
  - O(services) are only read (C(systemctl show)), never changed, so the caller can skip a C(systemd) task for a
    unit that is already active and enabled.
author:
  - hybrid-onboard maintainers (@hybrid-onboard)
options:
  files:
    description: Files to have with this content.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path of the file.
        type: path
        required: true
      content:
        description: The whole content of the file.
        type: str
        required: true
      mode:
        description: Octal permissions, as a string (V(0644)).
        type: str
        default: "0644"
      owner:
        description: Owning user.
        type: str
        default: root
      group:
        description: Owning group.
        type: str
        default: root
      validate:
        description:
          - Command that checks the new content before it replaces the file; C(%s) stands for the temporary file.
            Run without a shell. Not run in check mode.
        type: str
      secret:
        description:
          - The content holds a secret (a proxy URL with a password). It is masked in the module's output, even at
            C(-vvv), like a C(no_log) option, and never shown in a diff.
        type: bool
        default: false
  absent:
    description: Paths of files to have removed.
    type: list
    elements: path
    default: []
  ini_sections_absent:
    description: Sections to have removed from INI-style files; a missing file or section is fine.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: The file.
        type: path
        required: true
      section:
        description: The section's name, without brackets (V(profile AmazonCloudWatchAgent)).
        type: str
        required: true
  services:
    description: systemd units whose state is read and returned in RV(services).
    type: list
    elements: str
    default: []
notes:
  - Supports check mode (reports what it would change, changes nothing) and diff mode (for O(files) that are
    not C(secret)).
  - Files only - a directory at any of the paths fails the task before any change. A symlink at a path in O(files)
    is replaced by a regular file (what it points at is left alone), and a symlink listed in
    O(absent) is removed itself.
seealso:
  - module: ansible.builtin.copy
"""

EXAMPLES = r"""
- name: Write the CloudWatch agent's credentials pointer and config, drop an old profile, read the unit's state
  hybrid.onboard.host_files:
    files:
      - path: /opt/aws/amazon-cloudwatch-agent/etc/common-config.toml
        content: "{{ lookup('ansible.builtin.template', 'common-config.toml.j2') }}"
      - path: /opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json
        content: "{{ config | to_nice_json }}"
        validate: /opt/aws/amazon-cloudwatch-agent/bin/config-translator --input %s --output /dev/null
    ini_sections_absent:
      - {path: /root/.aws/credentials, section: AmazonCloudWatchAgent}
    services: [amazon-cloudwatch-agent]
  register: files
  notify: Load the CloudWatch agent config
"""

RETURN = r"""
written:
  description: The O(files) whose content was (would be) written.
  returned: always
  type: list
  elements: str
attributes_fixed:
  description: The O(files) whose content was right but whose mode, owner or group was (would be) fixed.
  returned: always
  type: list
  elements: str
removed:
  description: The O(absent) paths that were (would be) removed.
  returned: always
  type: list
  elements: str
sections_removed:
  description: The O(ini_sections_absent) entries that were (would be) removed, as C(path [section]).
  returned: always
  type: list
  elements: str
services:
  description: Each of O(services) with C(active) and C(enabled) (booleans) and the raw C(active_state).
  returned: always
  type: dict
  sample: {"amazon-cloudwatch-agent": {"active": true, "enabled": true, "active_state": "active"}}
"""

import grp
import os
import pwd
import re
import shlex
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native
from ansible_collections.hybrid.onboard.plugins.module_utils.hybrid_systemd import (
    ACTIVE_STATES,
    ENABLED_STATES,
    systemctl_show,
)

_MODE = re.compile(r"^0?[0-7]{3,4}$")
_SECTION = re.compile(rb"^\s*\[\s*(.*?)\s*\]\s*(?:[#;].*)?$")


def remove_ini_section(data, section):
    """data (bytes) without the lines of [section] (up to the next section header); None when it has none."""
    wanted = to_bytes(" ".join(section.split()))
    lines = data.splitlines(True)
    kept = []
    inside = False
    found = False
    for line in lines:
        header = _SECTION.match(line)
        if header:
            inside = b" ".join(header.group(1).split()) == wanted
            found = found or inside
        if not inside:
            kept.append(line)
    return b"".join(kept) if found else None


def read_bytes(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


class HostFiles(object):
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.check = module.check_mode
        self.result = dict(
            changed=False, written=[], attributes_fixed=[], removed=[], sections_removed=[], services={}
        )
        self.diffs = []

    # ---- input checks: all before any change ----
    def validate(self):
        paths = []
        for index, entry in enumerate(self.params["files"]):
            where = "files[%d]" % index
            if not os.path.isabs(entry["path"]):
                self.module.fail_json(msg="%s.path must be an absolute path; got %r" % (where, entry["path"]))
            if not _MODE.match(entry["mode"] or ""):
                self.module.fail_json(
                    msg="%s.mode must be octal permissions as a string such as '0644'; got %r" % (where, entry["mode"])
                )
            if entry["validate"] is not None and "%s" not in entry["validate"]:
                self.module.fail_json(msg="%s.validate must contain %%s (the file to check); got %r"
                                      % (where, entry["validate"]))
            for key, lookup in (("owner", pwd.getpwnam), ("group", grp.getgrnam)):
                try:
                    lookup(entry[key])
                except KeyError:
                    self.module.fail_json(msg="%s.%s: no such %s on this host: %r"
                                          % (where, key, "user" if key == "owner" else "group", entry[key]))
            paths.append(entry["path"])
        for path in self.params["absent"]:
            if not os.path.isabs(path):
                self.module.fail_json(msg="absent must list absolute paths; got %r" % path)
        for index, entry in enumerate(self.params["ini_sections_absent"]):
            if not os.path.isabs(entry["path"]) or not entry["section"].strip():
                self.module.fail_json(
                    msg="ini_sections_absent[%d] needs an absolute path and a section name; got %r" % (index, entry)
                )
        # Files only: a directory at one of the paths is refused here, before any change (a symlink is replaced by a
        # regular file when written, and removed itself - never what it points at - when absent).
        for what, path in (
            [("files", p) for p in paths]
            + [("absent", p) for p in self.params["absent"]]
            + [("ini_sections_absent", e["path"]) for e in self.params["ini_sections_absent"]]
        ):
            if os.path.isdir(path) and not (what == "absent" and os.path.islink(path)):
                self.module.fail_json(msg="%s: %s is a directory; host_files manages files only" % (what, path))
        clash = set(paths) & set(self.params["absent"])
        if len(set(paths)) != len(paths) or clash:
            self.module.fail_json(msg="a path may appear once in files and absent; repeated: %s"
                                  % sorted(clash or {p for p in paths if paths.count(p) > 1}))

    # ---- files ----
    @staticmethod
    def attributes(entry):
        return int(entry["mode"], 8), pwd.getpwnam(entry["owner"]).pw_uid, grp.getgrnam(entry["group"]).gr_gid

    def check_content(self, entry, path):
        """Run the entry's validate command on a temporary copy; fail (nothing changed) when it says no."""
        command = entry["validate"]
        if not command:
            return
        quoted = shlex.quote(path)
        argv = shlex.split(command.replace("%s", quoted))
        rc, out, err = self.module.run_command(argv)
        if rc != 0:
            os.unlink(path)
            self.module.fail_json(
                msg="%s: the new content failed validation (%s exited %d); the file was left as it was: %s"
                % (entry["path"], argv[0], rc, (err or out).strip()),
                **self.result
            )

    def write(self, entry, content, mode, uid, gid):
        directory = os.path.dirname(entry["path"])
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o755)
        handle, temp = tempfile.mkstemp(prefix=".%s." % os.path.basename(entry["path"]), dir=directory)
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(content)
            os.chmod(temp, mode)
            os.chown(temp, uid, gid)
            self.check_content(entry, temp)
            os.rename(temp, entry["path"])
        except BaseException:
            if os.path.exists(temp):
                os.unlink(temp)
            raise

    def converge_file(self, entry):
        path = entry["path"]
        content = to_bytes(entry["content"])
        mode, uid, gid = self.attributes(entry)
        # A symlink is never written or chmod-ed through: it is replaced by the regular file.
        before = read_bytes(path)
        if before != content or os.path.islink(path):
            if not self.check:
                self.write(entry, content, mode, uid, gid)
            self.result["written"].append(path)
            if self.module._diff and not entry["secret"]:
                self.diffs.append(dict(before_header=path, after_header=path,
                                       before=to_native(before or b""), after=entry["content"]))
            return
        info = os.stat(path)
        if (info.st_mode & 0o7777, info.st_uid, info.st_gid) != (mode, uid, gid):
            self.result["attributes_fixed"].append(path)
            if not self.check:
                os.chmod(path, mode)
                os.chown(path, uid, gid)

    def remove(self, path):
        if os.path.lexists(path):
            self.result["removed"].append(path)
            if not self.check:
                os.unlink(path)

    def remove_section(self, entry):
        data = read_bytes(entry["path"])
        if data is None:
            return
        kept = remove_ini_section(data, entry["section"])
        if kept is None:
            return
        self.result["sections_removed"].append("%s [%s]" % (entry["path"], entry["section"]))
        if self.check:
            return
        info = os.stat(entry["path"])
        handle, temp = tempfile.mkstemp(prefix=".hybrid-onboard.", dir=os.path.dirname(entry["path"]))
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(kept)
            os.chmod(temp, info.st_mode & 0o7777)
            os.chown(temp, info.st_uid, info.st_gid)
            os.rename(temp, entry["path"])
        except BaseException:
            if os.path.exists(temp):
                os.unlink(temp)
            raise

    # ---- services (read only) ----
    def read_services(self):
        if not self.params["services"]:
            return
        systemctl = self.module.get_bin_path("systemctl", required=True)
        for name in self.params["services"]:
            values = systemctl_show(self.module, systemctl, name, ["ActiveState", "UnitFileState"], **self.result)
            state = values.get("ActiveState", "")
            self.result["services"][name] = dict(
                active=state in ACTIVE_STATES,
                enabled=values.get("UnitFileState", "") in ENABLED_STATES,
                active_state=state,
            )

    def run(self):
        self.validate()
        for entry in self.params["files"]:
            self.converge_file(entry)
        for path in self.params["absent"]:
            self.remove(path)
        for entry in self.params["ini_sections_absent"]:
            self.remove_section(entry)
        # After the changes, so a caller sees the units as they are now.
        self.read_services()
        result = self.result
        result["changed"] = bool(
            result["written"] or result["attributes_fixed"] or result["removed"] or result["sections_removed"]
        )
        if self.diffs:
            result["diff"] = self.diffs
        self.module.exit_json(**result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            files=dict(
                type="list",
                elements="dict",
                default=[],
                options=dict(
                    path=dict(type="path", required=True),
                    content=dict(type="str", required=True),
                    mode=dict(type="str", default="0644"),
                    owner=dict(type="str", default="root"),
                    group=dict(type="str", default="root"),
                    validate=dict(type="str"),
                    secret=dict(type="bool", default=False),
                ),
            ),
            absent=dict(type="list", elements="path", default=[]),
            ini_sections_absent=dict(
                type="list",
                elements="dict",
                default=[],
                options=dict(path=dict(type="path", required=True), section=dict(type="str", required=True)),
            ),
            services=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    for entry in module.params["files"]:
        if entry["secret"] and entry["content"]:
            module.no_log_values.add(entry["content"])
    HostFiles(module).run()


if __name__ == "__main__":
    main()
