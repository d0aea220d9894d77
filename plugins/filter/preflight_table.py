# -*- coding: utf-8 -*-
# Copyright: hybrid-onboard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The endpoint preflight's report, as Jinja filters over every host's ``endpoint_probe`` result.

- ``preflight_results(hostvars, hosts, var)``: ``{host: result}`` of a registered variable (``{}`` where a host
  has none, e.g. it was unreachable).
- ``preflight_failed_names(results)``: names that did not resolve privately on some host.
- ``preflight_control_names(results, limit=2)``: names that resolved privately on every probed host.
- ``preflight_table(results, diagnosis=[])``: ONE table for all hosts (list of lines):
  ``host | dns | tcp443 | tls | clock | os/arch | disk | verdict``.
- ``preflight_host_message(result, host, diagnosis=[])``: a host's problems with their hints.
- ``preflight_failed_hosts(results)``: hosts whose probe found problems.

The rules live in ``plugins/module_utils/hybrid_preflight.py`` (shared with the modules); controller-side
plugins cannot import project module_utils as modules do, so it is loaded here by path.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib.util
import os

from ansible.errors import AnsibleFilterError

_RULES_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "module_utils",
                           "hybrid_preflight.py")


def _load_rules():
    spec = importlib.util.spec_from_file_location("hybrid_onboard_preflight_rules", _RULES_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rules = _load_rules()


def _check_results(results):
    if not isinstance(results, dict):
        raise AnsibleFilterError("expected {host: endpoint_probe result}; got %s" % type(results).__name__)
    return results


def preflight_results(hostvars, hosts, var):
    found = {}
    for host in hosts or []:
        try:
            value = hostvars[host][var]
        except (KeyError, TypeError):
            value = None
        found[host] = dict(value) if isinstance(value, dict) else {}
    return found


def preflight_failed_names(results):
    return rules.failed_dns_names(list(_check_results(results).values()))


def preflight_control_names(results, limit=2):
    probed = [r for r in _check_results(results).values() if r.get("checks")]
    if not probed:
        return []
    good = None
    for result in probed:
        names = {c["name"] for c in result["checks"] if c.get("kind") == "dns" and c.get("ok")}
        good = names if good is None else good & names
    return sorted(good or [])[: int(limit)]


def preflight_table(results, diagnosis=None):
    items = sorted(_check_results(results).items())
    rows = [rules.summary_row(host, result, diagnosis or []) for host, result in items]
    return rules.render_table(rows)


def preflight_host_message(result, host, diagnosis=None):
    return rules.host_message(host, result or {}, diagnosis or [])


def preflight_failed_hosts(results):
    return sorted(host for host, result in _check_results(results).items()
                  if result.get("checks") and result.get("problems"))


class FilterModule(object):
    """Endpoint preflight report filters."""

    def filters(self):
        return {
            "preflight_results": preflight_results,
            "preflight_failed_names": preflight_failed_names,
            "preflight_control_names": preflight_control_names,
            "preflight_table": preflight_table,
            "preflight_host_message": preflight_host_message,
            "preflight_failed_hosts": preflight_failed_hosts,
        }
