# -*- coding: utf-8 -*-
# Copyright: hybrid-onboard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verdicts of the endpoint preflight: pure functions shared by ``endpoint_probe`` (on the host),
``dns_path_diagnosis`` (on the controller) and the ``preflight_table`` filter.

Python standard library only and Python 3.6 syntax: ``endpoint_probe`` ships this file to managed hosts
(RHEL 8's platform Python is 3.6), where neither boto3 nor dnspython exist.

Every problem is a dict ``{name, check, code, problem, hint}``: ``problem`` says what is wrong in words an
operator recognises, ``hint`` what to do about it, ``code`` is stable for tests and tooling.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress

DEFAULT_SERVICES = ("ssm", "ssmmessages", "ec2messages", "kms", "s3", "logs", "monitoring")
# Where SigV4 signatures start failing ("Signature expired"), and where drift is worth a warning.
CLOCK_MAX_OFFSET = 300
CLOCK_WARN_OFFSET = 60

ARCH_ALIASES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
# os-release ID / ID_LIKE words -> (family, package type). Amazon Linux is RHEL-like but named apart.
OS_FAMILIES = (
    ("amzn", "amazon", "rpm"),
    ("debian", "debian", "deb"),
    ("ubuntu", "debian", "deb"),
    ("rhel", "rhel", "rpm"),
    ("centos", "rhel", "rpm"),
    ("fedora", "rhel", "rpm"),
    ("rocky", "rhel", "rpm"),
    ("almalinux", "rhel", "rpm"),
    ("ol", "rhel", "rpm"),
    ("suse", "suse", "rpm"),
    ("sles", "suse", "rpm"),
    ("opensuse", "suse", "rpm"),
    ("opensuse-leap", "suse", "rpm"),
)

# Stable verdict codes of the DNS path diagnosis, with the sentence an operator reads.
VERDICTS = {
    "ok": "resolves privately through the on-prem DNS",
    "host_resolver": "on-prem DNS answers privately, but the host did not get that answer",
    "onprem_not_forwarding": "on-prem DNS does not forward",
    "s3_public": "S3 resolves public: no private DNS for S3",
    "no_private_dns": "name has no private DNS (endpoint missing or private DNS off)",
    "inbound_unreachable": "Resolver inbound endpoint unreachable/not answering "
    "(check its SG allows 53 from the on-prem DNS servers)",
    "inbound_missing": "no Route 53 Resolver inbound endpoint found",
    "onprem_dns_down": "on-prem DNS server not answering",
}

HINTS = {
    "host_resolver": "point the host's resolver (/etc/resolv.conf, systemd-resolved, nsswitch) at the on-prem "
    "DNS servers and flush any local DNS cache",
    "onprem_not_forwarding": "forward amazonaws.com (or the service names) from the on-prem DNS servers to the "
    "Resolver inbound IPs {inbound}: run playbooks/onprem_dns.yml",
    "s3_public": "give S3 private DNS: the private hosted zone s3.<region>.amazonaws.com with apex and '*' alias "
    "records to the S3 interface endpoint, or the S3 endpoint's private DNS for inbound Resolver endpoints "
    "(hybrid_s3_private_dns_mode, playbooks/network.yml)",
    "no_private_dns": "create the interface endpoint for this service with private DNS enabled "
    "(playbooks/network.yml); for S3 names check the private hosted zone has the apex and '*' records",
    "inbound_unreachable": "allow TCP+UDP 53 from the on-prem DNS servers in the inbound endpoint's security "
    "group, check routing from on-prem to {inbound}, and that the on-prem DNS forwards to those IPs "
    "(playbooks/onprem_dns.yml)",
    "inbound_missing": "create it with playbooks/network.yml (named <hybrid_name>-inbound), or set the Resolver "
    "inbound IPs explicitly",
    "onprem_dns_down": "start the on-prem DNS server {onprem} or fix the list of on-prem DNS servers",
}


def problem(name, check, code, text, hint):
    return {"name": name, "check": check, "code": code, "problem": text, "hint": hint}


def ip_networks(cidrs):
    """Parsed networks of a list of CIDR strings (invalid entries raise ValueError)."""
    return [ipaddress.ip_network(u"%s" % c, strict=False) for c in cidrs or []]


def split_addresses(addresses, cidrs):
    """(inside, outside): addresses inside any of ``cidrs`` and the others."""
    networks = ip_networks(cidrs)
    inside, outside = [], []
    for address in addresses:
        try:
            ip = ipaddress.ip_address(u"%s" % address)
        except ValueError:
            outside.append(address)
            continue
        if any(ip.version == net.version and ip in net for net in networks):
            inside.append(address)
        else:
            outside.append(address)
    return inside, outside


def is_s3_name(name):
    """S3 regional, bucket (virtual-hosted) and endpoint-specific names."""
    labels = (name or "").lower().rstrip(".").split(".")
    return "s3" in labels and labels[-2:] == ["amazonaws", "com"]


def default_names(region, services=DEFAULT_SERVICES, agent_buckets=True):
    """The regional service names plus the agents' download buckets (virtual-hosted form)."""
    names = ["%s.%s.amazonaws.com" % (service, region) for service in services]
    if agent_buckets:
        names.append("amazon-ssm-%s.s3.%s.amazonaws.com" % (region, region))
        names.append("amazoncloudwatch-agent-%s.s3.%s.amazonaws.com" % (region, region))
    return names


# --- Host-side rules ------------------------------------------------------------------------------------------


def dns_problem(name, error=None, outside=None):
    """Problem of a name that did not resolve, or resolved (partly) outside the VPC CIDRs."""
    if error is not None:
        return problem(
            name, "dns", "dns_unresolved", "%s does not resolve on this host (%s)" % (name, error),
            "the host's DNS must reach the on-prem DNS servers, and those must forward amazonaws.com to the "
            "Resolver inbound endpoint (playbooks/onprem_dns.yml)",
        )
    where = ", ".join(outside)
    if is_s3_name(name):
        return problem(
            name, "dns", "dns_public_s3",
            "%s resolves public (%s): %s" % (name, where, VERDICTS["s3_public"]), HINTS["s3_public"],
        )
    return problem(
        name, "dns", "dns_public",
        "%s resolves outside the VPC (%s): the on-prem DNS does not forward it, or it has no private DNS"
        % (name, where),
        "forward amazonaws.com to the Resolver inbound endpoint (playbooks/onprem_dns.yml) and check the "
        "interface endpoint exists with private DNS on (playbooks/network.yml)",
    )


def tcp_problem(name, port, failures):
    """``failures``: [(address, kind)], kind in timeout, refused, unreachable, error."""
    where = ", ".join("%s (%s)" % (address, kind) for address, kind in failures)
    kinds = set(kind for _address, kind in failures)
    if kinds <= {"unreachable"}:
        return problem(
            name, "tcp443", "tcp_no_route", "no route to %s port %s: %s" % (name, port, where),
            "route the VPC CIDRs from on-prem over Direct Connect/VPN (and back to the on-prem CIDRs)",
        )
    return problem(
        name, "tcp443", "tcp_blocked", "TCP %s blocked by the endpoint SG (or routing): %s %s" % (port, name, where),
        "allow TCP %s from the on-prem CIDRs in the interface endpoints' security group and check firewalls "
        "and routes between on-prem and the VPC" % port,
    )


def tls_problem(name, port, kind, detail):
    """``kind``: verify, closed, timeout, error."""
    if kind == "verify":
        return problem(
            name, "tls", "tls_untrusted",
            "TLS: certificate not trusted (ca_bundle?) or wrong name: %s (%s)" % (name, detail),
            "trust the issuing CA in the system store or pass endpoint_preflight_ca_bundle; a TLS-inspecting "
            "proxy must not sit between the host and the endpoints",
        )
    if kind == "closed":
        return problem(
            name, "tls", "tcp_blocked",
            "TCP %s blocked by the endpoint SG (connection closed before the TLS handshake): %s (%s)"
            % (port, name, detail),
            "allow TCP %s from the on-prem CIDRs in the interface endpoints' security group" % port,
        )
    if kind == "timeout":
        return problem(
            name, "tls", "tls_timeout", "TLS handshake with %s timed out (%s)" % (name, detail),
            "something in the path accepts TCP but does not pass TLS: check proxies and firewalls",
        )
    return problem(name, "tls", "tls_error", "TLS handshake with %s failed (%s)" % (name, detail),
                   "check the endpoint and any proxy in the path")


def clock_problem(offset, max_offset=CLOCK_MAX_OFFSET):
    """Problem when the host clock is more than ``max_offset`` seconds from AWS's, else None."""
    if offset is None or abs(offset) <= max_offset:
        return None
    return problem(
        "clock", "clock", "clock_skew",
        "clock %d s off: fix NTP before registering (SigV4 fails above 5 minutes)" % int(round(abs(offset))),
        "synchronise the host clock (chrony/systemd-timesyncd against your on-prem NTP) and re-run",
    )


def clock_warning(offset, warn_offset=CLOCK_WARN_OFFSET, max_offset=CLOCK_MAX_OFFSET):
    if offset is None or abs(offset) <= warn_offset or abs(offset) > max_offset:
        return None
    return "clock %d s off AWS's: within the %d s SigV4 limit, but check NTP" % (int(round(abs(offset))), max_offset)


def platform_info(os_release, machine):
    """OS family, package type and agent arch of a host from /etc/os-release fields and ``uname -m``."""
    os_id = (os_release.get("ID") or "").lower()
    like = (os_release.get("ID_LIKE") or "").lower().split()
    family, pkg = None, None
    for word in [os_id] + like:
        for key, fam, kind in OS_FAMILIES:
            if word == key:
                family, pkg = fam, kind
                break
        if family:
            break
    return {
        "os_id": os_id,
        "os_version": os_release.get("VERSION_ID", ""),
        "os_name": os_release.get("PRETTY_NAME") or os_id,
        "os_family": family,
        "pkg": pkg,
        "machine": machine,
        "arch": ARCH_ALIASES.get((machine or "").lower()),
    }


def platform_problems(info):
    problems = []
    if not info.get("os_family"):
        problems.append(problem(
            "os", "os", "os_unsupported", "unsupported OS %s" % (info.get("os_name") or "(no /etc/os-release)"),
            "the agents support Debian, Ubuntu, RHEL-family, SUSE and Amazon Linux",
        ))
    if not info.get("arch"):
        problems.append(problem(
            "arch", "arch", "arch_unsupported", "unsupported architecture %s" % (info.get("machine") or "?"),
            "onboard amd64 (x86_64) or arm64 (aarch64) hosts only",
        ))
    return problems


def disk_problem(path, free_mb, min_mb):
    if free_mb >= min_mb:
        return None
    return problem(
        path, "disk", "disk_low", "only %d MB free on %s (need %d MB)" % (free_mb, path, min_mb),
        "free space on %s before installing the agents" % path,
    )


def package_problem(url, status, detail):
    return problem(
        url, "package", "package_unreachable",
        "agent package %s: %s" % (url, ("HTTP %s" % status) if status else detail),
        "the S3 interface endpoint must serve the agent bucket (endpoint policy, S3 private DNS, bucket name "
        "and region), and the URL must exist for this OS/arch",
    )


# --- Controller-side DNS path diagnosis -----------------------------------------------------------------------


def hop_class(hop, cidrs):
    """private, public, none (NXDOMAIN / no A record), fail (SERVFAIL, REFUSED, error), silent (no answer)."""
    status = hop.get("status")
    if status == "answer":
        inside, outside = split_addresses(hop.get("addresses") or [], cidrs)
        return "public" if outside or not inside else "private"
    if status in ("nxdomain", "nodata"):
        return "none"
    if status == "timeout":
        return "silent"
    return "fail"


def _worst(classes):
    for cls in ("silent", "fail", "none", "public", "private"):
        if cls in classes:
            return cls
    return None


def _best(classes):
    for cls in ("private", "public", "none", "fail", "silent"):
        if cls in classes:
            return cls
    return None


def diagnose_name(name, hops, cidrs, forwarding_works=False, host_failed=True):
    """One verdict ``{name, code, verdict, hint}`` for a name from each hop's answer.

    ``hops``: [{server, role: inbound|onprem, status, addresses}]. ``forwarding_works``: the on-prem DNS
    answered some other AWS name privately, so it forwards and reaches the inbound endpoint.
    """
    inbound_hops = [h for h in hops if h.get("role") == "inbound"]
    onprem_hops = [h for h in hops if h.get("role") == "onprem"]
    inbound_ips = ", ".join(h["server"] for h in inbound_hops) or "(none found)"
    onprem_ips = ", ".join(h["server"] for h in onprem_hops) or "(none given)"
    inbound = _best([hop_class(h, cidrs) for h in inbound_hops]) if inbound_hops else "missing"
    onprem_classes = dict((h["server"], hop_class(h, cidrs)) for h in onprem_hops)
    onprem = _worst(list(onprem_classes.values())) if onprem_hops else "unknown"
    bad_onprem = ", ".join(s for s, c in sorted(onprem_classes.items()) if c != "private") or onprem_ips
    s3 = is_s3_name(name)

    def verdict(code, detail=""):
        text = VERDICTS[code]
        if detail:
            text = "%s: %s" % (text, detail)
        return {"name": name, "code": code, "verdict": text,
                "hint": HINTS.get(code, "").format(inbound=inbound_ips, onprem=bad_onprem)}

    if onprem == "private":
        return verdict("host_resolver" if host_failed else "ok")
    if inbound == "private":
        return verdict("onprem_not_forwarding", "%s answers %s, the Resolver inbound endpoint answers privately"
                       % (bad_onprem, _describe(onprem)))
    if inbound == "public" or (inbound in ("silent", "fail", "missing") and forwarding_works and onprem == "public"):
        if s3:
            return verdict("s3_public")
        return verdict("no_private_dns", "answered from outside the VPC CIDRs")
    if inbound == "none" or (inbound in ("silent", "fail", "missing") and forwarding_works and onprem == "none"):
        return verdict("no_private_dns", "no private record (NXDOMAIN/no A)")
    if inbound == "missing":
        return verdict("inbound_missing")
    # The inbound endpoint gave the controller no answer. Its SG may admit only the on-prem DNS servers, so
    # the on-prem DNS's own behaviour decides: waiting on a silent forwarder ends in a timeout, while a
    # server that does not forward fails the name by itself (SERVFAIL/REFUSED) or answers public.
    if onprem in ("fail", "public", "none"):
        return verdict("onprem_not_forwarding", "%s answers %s and the controller got no answer from the "
                       "Resolver inbound endpoint either (allow the controller in its SG to confirm)"
                       % (bad_onprem, _describe(onprem)))
    if onprem == "silent" and forwarding_works:
        return verdict("onprem_dns_down")
    return verdict("inbound_unreachable", "neither %s nor the controller got an answer from %s"
                   % (bad_onprem, inbound_ips))


def _describe(cls):
    return {
        "public": "from outside the VPC CIDRs",
        "none": "NXDOMAIN",
        "fail": "SERVFAIL/REFUSED",
        "silent": "nothing",
        "unknown": "(not asked)",
    }.get(cls, cls)


def diagnose(results, cidrs, control_results=(), host_failed=True):
    """Verdicts for every name of ``results`` ([{name, hops}]); ``control_results`` only add evidence."""
    forwarding_works = any(
        hop.get("role") == "onprem" and hop_class(hop, cidrs) == "private"
        for entry in list(results) + list(control_results)
        for hop in entry.get("hops", [])
    )
    return [diagnose_name(entry["name"], entry.get("hops", []), cidrs, forwarding_works, host_failed)
            for entry in results]


# --- Combining the host results with the diagnosis (the role's report) -----------------------------------------

COLUMNS = ("dns", "tcp443", "tls", "clock", "os/arch", "disk")
_CHECK_COLUMN = {"dns": "dns", "tcp443": "tcp443", "tls": "tls", "package": "tls", "clock": "clock",
                 "os": "os/arch", "arch": "os/arch", "disk": "disk"}


def failed_dns_names(probe_results):
    """Names that did not resolve privately on at least one host (the names worth a DNS path diagnosis)."""
    names = set()
    for result in probe_results:
        for entry in (result or {}).get("problems", []):
            if entry.get("check") == "dns":
                names.add(entry["name"])
    return sorted(names)


def host_problems(result, diagnosis=()):
    """The host's problems, DNS ones refined by the controller's diagnosis of the same name."""
    by_name = dict((d["name"], d) for d in diagnosis or [])
    problems = []
    for entry in (result or {}).get("problems", []):
        entry = dict(entry)
        found = by_name.get(entry.get("name")) if entry.get("check") == "dns" else None
        if found and found.get("code") not in ("ok", None):
            entry["diagnosis"] = found["verdict"]
            entry["hint"] = found["hint"]
        problems.append(entry)
    return problems


def host_message(host, result, diagnosis=()):
    """The failure message of one host: every problem with its hint."""
    problems = host_problems(result, diagnosis)
    lines = ["%s: %d preflight problem(s), nothing was changed:" % (host, len(problems))]
    for entry in problems:
        text = entry["problem"]
        if entry.get("diagnosis"):
            text = "%s [DNS path: %s]" % (text, entry["diagnosis"])
        lines.append("- %s -> %s" % (text, entry["hint"]))
    return "\n".join(lines)


def summary_row(host, result, diagnosis=()):
    """One row of the report: host, one cell per column, verdict."""
    if not result or "checks" not in result:
        msg = (result or {}).get("msg") or "no probe result"
        row = dict((column, "-") for column in COLUMNS)
        row.update(host=host, verdict="NOT PROBED: %s" % msg.splitlines()[0][:80])
        return row
    cells = dict((column, {"ok": 0, "fail": 0, "warn": 0}) for column in COLUMNS)
    for check in result.get("checks", []):
        column = _CHECK_COLUMN.get(check.get("kind"))
        if column is None or check.get("ok") is None:
            continue
        cells[column]["ok" if check["ok"] else "fail"] += 1
        if check.get("warning"):
            cells[column]["warn"] += 1
    row = {"host": host}
    for column in COLUMNS:
        count = cells[column]
        if count["fail"]:
            row[column] = "FAIL %d" % count["fail"] if count["fail"] > 1 else "FAIL"
        elif count["warn"]:
            row[column] = "warn"
        elif count["ok"]:
            row[column] = "ok"
        else:
            row[column] = "-"
    clock = result.get("clock_offset")
    if clock is not None and row["clock"] != "-":
        row["clock"] = "%s %+ds" % (row["clock"], int(round(clock)))
    platform = result.get("platform") or {}
    if platform.get("arch") or platform.get("machine"):
        row["os/arch"] = "%s %s/%s" % (row["os/arch"], platform.get("os_id") or "?",
                                       platform.get("arch") or platform.get("machine"))
    problems = host_problems(result, diagnosis)
    if not problems:
        row["verdict"] = "ok"
    else:
        first = problems[0].get("diagnosis") or problems[0]["problem"]
        more = " (+%d more)" % (len(problems) - 1) if len(problems) > 1 else ""
        row["verdict"] = "FAIL: %s%s" % (first, more)
    return row


def render_table(rows, max_verdict=100):
    """Rows as a fixed-width text table (a list of lines, so ``debug`` shows one per line)."""
    headers = ("host",) + COLUMNS + ("verdict",)
    cells = [[str(row.get(h, "")) for h in headers] for row in rows]
    for line in cells:
        if len(line[-1]) > max_verdict:
            line[-1] = line[-1][: max_verdict - 3] + "..."
    widths = [max([len(h)] + [len(line[i]) for line in cells]) for i, h in enumerate(headers)]

    def fmt(values):
        return " | ".join(v.ljust(widths[i]) for i, v in enumerate(values)).rstrip()

    out = [fmt(headers), "-+-".join("-" * w for w in widths)]
    out.extend(fmt(line) for line in cells)
    return out
