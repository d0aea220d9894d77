#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hybrid-onboard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Ansible's module layout: documentation before the imports. Runs on the controller (delegate_to: localhost),
# standard library only.
# ruff: noqa: E402

DOCUMENTATION = r"""
---
module: onboarding_report
short_description: Write the onboarding report of all hosts as JSON, Markdown and a self-contained HTML page
version_added: 0.1.0
description:
  - Runs once on the controller (C(delegate_to=localhost), C(run_once=true)) with one row per host, and writes
    C(<dest>/report.json), C(<dest>/report.md) and C(<dest>/report.html).
  - The HTML page is self-contained - inline CSS only, no script, no font, image or other external URL, so it opens
    on a closed network. Status cells are coloured (CSS classes C(ok), C(bad), C(unknown)) and also say their status
    in words; the diagnosis of a failed preflight is shown in the host's row.
  - Every value is escaped (HTML entities in the page, backslash escapes in the Markdown table), so a host name
    such as C(<script>) shows as text.
  - Rows are sorted by host. A host counts as onboarded only when every step is proven - preflight passed, an
    instance id, ping status C(Online), and more than zero metrics and log events seen; the module computes it.
  - All input is validated before anything is written.
  - Idempotent - when every requested file already shows the same report (its generation time aside), nothing is
    written and C(changed=false); otherwise every requested file is rewritten atomically (temporary file and
    rename) with a new generation time.
author:
  - hybrid-onboard maintainers (@hybrid-onboard)
options:
  dest:
    description:
      - Directory for the report files, on the controller. Created with mode C(0755) (parents too) when missing.
      - Files of formats not in O(formats) are left as they are.
    type: path
    required: true
  rows:
    description:
      - One dict per host. Only C(host) is required; a missing key (or C(null), or an empty string) means "not
        known" and shows as C(-).
      - Any other key fails the module, naming it; so does C(onboarded), which the module computes.
      - Two rows with the same C(host) fail the module.
    type: list
    elements: dict
    required: true
    suboptions:
      host:
        description: Inventory name of the host.
        type: str
        required: true
      preflight:
        description: Result of the endpoint preflight; missing means V(not run).
        type: str
        choices: [passed, failed, not run]
      preflight_detail:
        description: The diagnosis when the preflight failed; shown in the host's row of the HTML page and under
          the Markdown table.
        type: str
      instance_id:
        description: The SSM managed node id (C(mi-...)); null when the host is not registered.
        type: str
      ping_status:
        description: SSM ping status; null when the host is not registered.
        type: str
        choices: [Online, ConnectionLost, Inactive]
      ip_address:
        description: The address SSM reports for the host.
        type: str
      ssm_agent_version:
        description: SSM Agent version.
        type: str
      cloudwatch_agent_version:
        description: CloudWatch agent version.
        type: str
      metrics_seen:
        description: Number of CloudWatch metrics seen from the host (an integer or a string of digits); null when
          not checked.
        type: int
      logs_seen:
        description: Number of CloudWatch Logs events (or streams) seen from the host; null when not checked.
        type: int
      association_status:
        description: State Manager association status, for example V(Success), V(Failed), V(Pending).
          V(Success) is shown as ok; V(Failed), V(TimedOut) and V(Cancelled) as bad; anything else as unknown.
        type: str
      last_association_execution:
        description: Time of the last association execution, ISO 8601.
        type: str
  title:
    description: Title of the report (HTML heading and page title, Markdown heading).
    type: str
    default: hybrid-onboard report
  site:
    description: Name of the site shown under the title, for example the hybrid name.
    type: str
  region:
    description: AWS region shown under the title.
    type: str
  formats:
    description: Which files to write; C(json) is C(report.json), C(md) is C(report.md), C(html) is C(report.html).
    type: list
    elements: str
    choices: [json, md, html]
    default: [json, md, html]
notes:
  - Supports check mode (nothing is written, not even O(dest); C(changed) says whether it would be) and diff mode
    (the C(report.json) content before and after, without C(generated_at)).
  - New files get mode C(0666) minus the umask; rewritten files keep their mode and owner.
  - C(report.json) holds C(title), C(site), C(region), C(generated_at) (UTC, ISO 8601), C(summary) (C(hosts),
    C(onboarded), C(online), C(failed_preflight)) and C(hosts) (the rows with every key and C(onboarded)).
seealso:
  - module: hybrid.onboard.ssm_managed_node_info
  - module: hybrid.onboard.cloudwatch_agent_data_info
"""

EXAMPLES = r"""
- name: Write the onboarding report
  hybrid.onboard.onboarding_report:
    dest: "{{ playbook_dir }}/../artifacts/report"
    site: dc1-hybrid
    region: eu-west-1
    rows:
      - host: web1
        preflight: passed
        instance_id: mi-0123456789abcdef0
        ping_status: Online
        ip_address: 192.168.10.11
        ssm_agent_version: 3.3.1142.0
        cloudwatch_agent_version: 1.300044.0
        metrics_seen: 12
        logs_seen: 40
        association_status: Success
        last_association_execution: "2024-05-01T10:00:00+00:00"
      - host: db1
        preflight: failed
        preflight_detail: "ssm.eu-west-1.amazonaws.com: on-prem DNS does not forward"
  delegate_to: localhost
  run_once: true
  register: __report

- name: Show the report
  ansible.builtin.debug:
    var: __report.table
  run_once: true

- name: Write only the JSON file
  hybrid.onboard.onboarding_report:
    dest: /var/tmp/hybrid-onboard/report
    rows: "{{ __report_rows }}"
    formats: [json]
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
files:
  description: Paths of the files written (in check mode, that would be written); empty when nothing changed.
  returned: always
  type: list
  elements: str
  sample: [/srv/report/report.json, /srv/report/report.md, /srv/report/report.html]
summary:
  description: Counts over all hosts.
  returned: always
  type: dict
  contains:
    hosts:
      description: Number of hosts (rows).
      type: int
      sample: 3
    onboarded:
      description: Hosts onboarded (preflight passed, instance id, Online, metrics and logs seen).
      type: int
      sample: 1
    online:
      description: Hosts whose ping status is C(Online).
      type: int
      sample: 2
    failed_preflight:
      description: Hosts whose preflight failed.
      type: int
      sample: 1
table:
  description:
    - The report as a fixed-width text table, one line per list item (for C(debug) with C(var)) - a header, a
      separator, one line per host (host, preflight, instance, ping, ssm agent, cw agent, metrics, logs,
      associations, onboarded; C(-) when not known) and a summary line.
  returned: always
  type: list
  elements: str
  sample:
    - "host | preflight | instance | ping | ssm agent | cw agent | metrics | logs | associations | onboarded"
    - "-----+-----------+----------+------+-----------+----------+---------+------+--------------+----------"
    - "db1  | failed    | -        | -    | -         | -        | -       | -    | -            | no"
    - "1 host: 0 onboarded, 0 online, 1 failed preflight"
"""

import json
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hybrid.onboard.plugins.module_utils.hybrid_report import (
    DEFAULT_TITLE,
    FILE_NAMES,
    FORMATS,
    ReportError,
    build_report,
    content_of,
    is_current,
    render,
    render_text_table,
)


def read_text(path):
    """An existing file's text, or None when it is missing or unreadable as UTF-8 (then it is rewritten)."""
    if not os.path.isfile(path):
        return None
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8")
    except (IOError, OSError, UnicodeDecodeError):
        return None


def previous_content(text):
    try:
        doc = json.loads(text) if text is not None else None
    except ValueError:
        return {}
    return content_of(doc) if isinstance(doc, dict) else {}


def make_dest(module, dest):
    """Create dest and its missing parents with mode 0755 (whatever the umask)."""
    missing = []
    path = dest
    while path and not os.path.exists(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    try:
        for path in reversed(missing):
            os.mkdir(path, 0o755)
            os.chmod(path, 0o755)  # noqa: S103 - the report is meant for every user of the controller
    except OSError as exc:
        module.fail_json(msg="dest: cannot create %s: %s; give a directory the controller user can write" % (path, exc))


def write_atomic(module, dest, path, text):
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=dest)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
        module.atomic_move(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dest=dict(type="path", required=True),
            # No ``options=`` for the rows: hybrid_report validates them itself, so a message names the row (index
            # and host) and the key, explains that ``onboarded`` is computed, catches a host given twice, and reads
            # "" as "not known" as the documentation's suboptions say. Ansible's own suboption check would do none
            # of these.
            rows=dict(type="list", elements="dict", required=True),
            title=dict(type="str", default=DEFAULT_TITLE),
            site=dict(type="str"),
            region=dict(type="str"),
            formats=dict(type="list", elements="str", choices=list(FORMATS), default=list(FORMATS)),
        ),
        supports_check_mode=True,
    )
    p = module.params
    formats = [fmt for fmt in FORMATS if fmt in p["formats"]]
    if not formats:
        module.fail_json(msg="formats must name at least one of %s" % ", ".join(FORMATS))
    if not (p["title"] or "").strip():
        module.fail_json(msg="title must not be empty; leave it out for the default %r" % DEFAULT_TITLE)
    try:
        doc = build_report(p["rows"], title=p["title"], site=p["site"], region=p["region"])
    except ReportError as exc:
        module.fail_json(msg=str(exc))
    dest = p["dest"]
    if os.path.exists(dest) and not os.path.isdir(dest):
        module.fail_json(msg="dest: %s exists and is not a directory; give a directory for the report files" % dest)

    paths = dict((fmt, os.path.join(dest, FILE_NAMES[fmt])) for fmt in formats)
    existing = dict((fmt, read_text(path)) for fmt, path in paths.items())
    changed = not all(text is not None and is_current(fmt, doc, text) for fmt, text in existing.items())

    result = dict(
        changed=changed,
        files=[paths[fmt] for fmt in formats] if changed else [],
        summary=doc["summary"],
        table=render_text_table(doc),
    )
    if module._diff:
        json_path = os.path.join(dest, FILE_NAMES["json"])
        before = previous_content(existing["json"] if "json" in existing else read_text(json_path))
        result["diff"] = dict(
            before=before if changed else content_of(doc),
            after=content_of(doc),
            before_header=json_path,
            after_header=json_path,
        )
    if changed and not module.check_mode:
        make_dest(module, dest)
        for fmt in formats:
            try:
                write_atomic(module, dest, paths[fmt], render(fmt, doc))
            except (IOError, OSError) as exc:
                module.fail_json(
                    msg="dest: cannot write %s: %s; give a directory the controller user can write" % (paths[fmt], exc)
                )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
