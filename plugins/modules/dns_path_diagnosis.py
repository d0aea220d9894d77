#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hybrid-onboard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Ansible's module layout: documentation before the imports, dnspython optional at import time.
# ruff: noqa: E402

DOCUMENTATION = r"""
---
module: dns_path_diagnosis
short_description: Tell which DNS hop between on-prem and the VPC answers wrong for AWS names
version_added: 0.1.0
description:
  - Runs on the controller (delegate it to C(localhost)). For every name, asks each hop of the on-prem to
    VPC DNS path directly over UDP with short timeouts - the Route 53 Resolver inbound endpoint's IPs and the
    on-prem DNS servers - and classifies what it sees.
  - "Verdicts (C(code)): C(onprem_not_forwarding) (the inbound endpoint answers privately, the on-prem DNS fails or
    answers public), C(s3_public) (S3 names answered from outside the VPC CIDRs: no private DNS for S3),
    C(no_private_dns) (endpoint missing or private DNS off), C(inbound_unreachable) (no answer from the inbound
    endpoint: its security group must allow 53 from the on-prem DNS servers), C(inbound_missing),
    C(onprem_dns_down), C(host_resolver) (the on-prem DNS answers privately, so the host's own resolver is at
    fault) and C(ok)."
  - The inbound endpoint's security group usually admits only the on-prem DNS servers. When it gives the
    controller no answer, the verdict rests on the on-prem DNS servers' behaviour and on the other names
    (C(control_names)); allowing the controller in that group makes the diagnosis exact.
  - Read-only; never reports C(changed) and runs the same in check mode.
author:
  - hybrid-onboard maintainers (@hybrid-onboard)
requirements:
  - dnspython >= 2.0 (on the controller)
options:
  names:
    description: Names to diagnose (typically those that failed on some host).
    type: list
    elements: str
    required: true
  control_names:
    description:
      - Names asked too but not diagnosed, as evidence that the on-prem DNS forwards at all (names that resolved
        privately on the hosts).
    type: list
    elements: str
    default: []
  resolver_ips:
    description: IPs of the Route 53 Resolver inbound endpoint; empty when none was found.
    type: list
    elements: str
    default: []
  onprem_dns_servers:
    description: IPs of the on-prem DNS servers the hosts use.
    type: list
    elements: str
    default: []
  vpc_cidrs:
    description: CIDRs of the VPC; an answer outside them is "public".
    type: list
    elements: str
    required: true
  port:
    description: DNS port of every hop (tests use a high port).
    type: int
    default: 53
  timeout:
    description: Seconds to wait for each answer.
    type: float
    default: 2.0
  retries:
    description: Further attempts after a timeout.
    type: int
    default: 1
  host_failed:
    description: The names failed on a host (so a private answer from the on-prem DNS points at the host's resolver).
    type: bool
    default: true
notes:
  - Supports check mode; it only sends DNS queries.
seealso:
  - module: hybrid.onboard.endpoint_probe
"""

EXAMPLES = r"""
- name: Ask every DNS hop about the names that failed
  hybrid.onboard.dns_path_diagnosis:
    names: [s3.eu-west-1.amazonaws.com]
    control_names: [ssm.eu-west-1.amazonaws.com]
    resolver_ips: [10.0.1.53, 10.0.2.53]
    onprem_dns_servers: [172.16.10.53]
    vpc_cidrs: [10.0.0.0/16]
  delegate_to: localhost
  run_once: true
  register: dns_path
"""

RETURN = r"""
answers:
  description: Per name, the answer of every hop.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The name asked.
      type: str
    hops:
      description:
        - "Per hop: C(server), C(role) (C(inbound) or C(onprem)), C(status) (C(answer), C(nxdomain), C(nodata),
          C(servfail), C(refused), C(timeout), C(error)), C(addresses), C(class) (C(private), C(public), C(none),
          C(fail), C(silent)), C(detail)."
      type: list
      elements: dict
  sample:
    - name: s3.eu-west-1.amazonaws.com
      hops:
        - {server: 10.0.1.53, role: inbound, status: answer, addresses: [203.0.113.7], class: public, detail: ""}
diagnosis:
  description: One verdict per name of C(names).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The name.
      type: str
    code:
      description: Stable verdict code.
      type: str
    verdict:
      description: The verdict in words.
      type: str
    hint:
      description: What to do.
      type: str
controller_reaches_inbound:
  description: Whether any inbound endpoint IP answered the controller at all.
  returned: always
  type: bool
"""

import traceback

DNSPYTHON_IMPORT_ERROR = None
try:
    import dns.exception
    import dns.flags
    import dns.message
    import dns.query
    import dns.rcode
    import dns.rdatatype
except ImportError:
    DNSPYTHON_IMPORT_ERROR = traceback.format_exc()

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.hybrid.onboard.plugins.module_utils.hybrid_preflight import (
    diagnose,
    hop_class,
    split_addresses,
)


def ask(server, name, port=53, timeout=2.0, retries=1):
    """One A query over UDP, recursion desired: {status, addresses, detail}."""
    query = dns.message.make_query(name, dns.rdatatype.A)
    query.flags |= dns.flags.RD
    last = ""
    for _attempt in range(retries + 1):
        try:
            response = dns.query.udp(query, server, timeout=timeout, port=port)
        except dns.exception.Timeout:
            last = "no answer within %.1f s" % timeout
            continue
        except (OSError, dns.exception.DNSException) as exc:
            return {"status": "error", "addresses": [], "detail": str(exc)}
        rcode = response.rcode()
        if rcode == dns.rcode.NXDOMAIN:
            return {"status": "nxdomain", "addresses": [], "detail": "NXDOMAIN"}
        if rcode != dns.rcode.NOERROR:
            text = dns.rcode.to_text(rcode)
            return {"status": "refused" if text == "REFUSED" else "servfail", "addresses": [], "detail": text}
        addresses = [item.address for rrset in response.answer if rrset.rdtype == dns.rdatatype.A for item in rrset]
        if not addresses:
            return {"status": "nodata", "addresses": [], "detail": "no A record"}
        return {"status": "answer", "addresses": addresses, "detail": ""}
    return {"status": "timeout", "addresses": [], "detail": last}


def ask_all(names, resolver_ips, onprem_servers, cidrs, port, timeout, retries):
    """Every hop's answer for every name; queries run in parallel so timeouts do not add up."""
    from concurrent.futures import ThreadPoolExecutor

    jobs = [(name, server, role) for name in names
            for role, servers in (("inbound", resolver_ips), ("onprem", onprem_servers)) for server in servers]
    with ThreadPoolExecutor(max_workers=max(1, min(16, len(jobs)))) as pool:
        answers = list(pool.map(lambda job: ask(job[1], job[0], port, timeout, retries), jobs))
    results = dict((name, {"name": name, "hops": []}) for name in names)
    for (name, server, role), answer in zip(jobs, answers):  # noqa: B905 - Python 3.6 targets have no strict=
        hop = dict(answer, server=server, role=role)
        hop["class"] = hop_class(hop, cidrs)
        results[name]["hops"].append(hop)
    return [results[name] for name in names]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            names=dict(type="list", elements="str", required=True),
            control_names=dict(type="list", elements="str", default=[]),
            resolver_ips=dict(type="list", elements="str", default=[]),
            onprem_dns_servers=dict(type="list", elements="str", default=[]),
            vpc_cidrs=dict(type="list", elements="str", required=True),
            port=dict(type="int", default=53),
            timeout=dict(type="float", default=2.0),
            retries=dict(type="int", default=1),
            host_failed=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    if DNSPYTHON_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib("dnspython"), exception=DNSPYTHON_IMPORT_ERROR)
    params = module.params
    try:
        split_addresses([], params["vpc_cidrs"])
    except ValueError as exc:
        module.fail_json(msg="vpc_cidrs must be CIDRs like 10.0.0.0/16: %s" % exc)
    names = list(dict.fromkeys(params["names"]))
    control = [n for n in dict.fromkeys(params["control_names"]) if n not in names]
    answers = ask_all(names + control, params["resolver_ips"], params["onprem_dns_servers"], params["vpc_cidrs"],
                      params["port"], params["timeout"], params["retries"])
    diagnosed, evidence = answers[: len(names)], answers[len(names):]
    reaches = any(hop["role"] == "inbound" and hop["status"] != "timeout" for entry in answers for hop in entry["hops"])
    module.exit_json(
        changed=False,
        answers=diagnosed,
        diagnosis=diagnose(diagnosed, params["vpc_cidrs"], evidence, params["host_failed"]),
        controller_reaches_inbound=reaches,
    )


if __name__ == "__main__":
    main()
