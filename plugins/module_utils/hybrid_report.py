# -*- coding: utf-8 -*-
# Copyright: hybrid-onboard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The onboarding report: pure functions behind the ``onboarding_report`` module.

One row per host goes in; a report document (what ``report.json`` holds) comes out, and is rendered as JSON,
a GitHub pipe-table Markdown file, a self-contained HTML page (inline CSS, no script, no external URL: the users
are on a closed network) and a fixed-width text table for ``debug``.

Python standard library only, Python 3.6 syntax: the module runs wherever ``delegate_to: localhost`` finds a
Python, which need not be the project's venv.

Every renderer takes the document with its ``generated_at``; the module compares files by re-rendering them with
the stamp they already carry (``stamp_of``), so a report whose content did not change is not rewritten.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import html
import json
import re
from datetime import datetime, timezone

FORMATS = ("json", "md", "html")
FILE_NAMES = {"json": "report.json", "md": "report.md", "html": "report.html"}

# The keys a row may carry, in report order. ``onboarded`` is computed, never given.
ROW_KEYS = (
    "host",
    "preflight",
    "preflight_detail",
    "instance_id",
    "ping_status",
    "ip_address",
    "ssm_agent_version",
    "cloudwatch_agent_version",
    "metrics_seen",
    "logs_seen",
    "association_status",
    "last_association_execution",
)
COMPUTED_KEYS = ("onboarded",)
PREFLIGHT_VALUES = ("passed", "failed", "not run")
PING_VALUES = ("Online", "ConnectionLost", "Inactive")
_COUNT_KEYS = ("metrics_seen", "logs_seen")
_TEXT_KEYS = tuple(k for k in ROW_KEYS if k not in _COUNT_KEYS + ("host", "preflight", "ping_status"))

# Association statuses (SSM's overall and detailed ones) that mean it did not work.
_ASSOCIATION_BAD = ("Failed", "TimedOut", "Cancelled")

DEFAULT_TITLE = "hybrid-onboard report"

# (header, key) of the plain-text table, in column order.
TEXT_COLUMNS = (
    ("host", "host"),
    ("preflight", "preflight"),
    ("instance", "instance_id"),
    ("ping", "ping_status"),
    ("ssm agent", "ssm_agent_version"),
    ("cw agent", "cloudwatch_agent_version"),
    ("metrics", "metrics_seen"),
    ("logs", "logs_seen"),
    ("associations", "association_status"),
    ("onboarded", "onboarded"),
)
# (header, key) of the Markdown and HTML tables: the text table's columns plus the IP and the last association run.
WIDE_COLUMNS = (
    ("Host", "host"),
    ("IP address", "ip_address"),
    ("Preflight", "preflight"),
    ("Instance", "instance_id"),
    ("Ping", "ping_status"),
    ("SSM agent", "ssm_agent_version"),
    ("CloudWatch agent", "cloudwatch_agent_version"),
    ("Metrics", "metrics_seen"),
    ("Logs", "logs_seen"),
    ("Associations", "association_status"),
    ("Last association run", "last_association_execution"),
    ("Onboarded", "onboarded"),
)
MISSING = "-"


class ReportError(ValueError):
    """Input the report cannot be made from; the message names the row and the key."""


def utc_now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------------------------------------------
# Rows: validation, normalisation, the onboarded verdict, the summary.


def _where(index, row):
    host = row.get("host") if isinstance(row, dict) else None
    if isinstance(host, str) and host.strip():
        return "rows[%d] (host %s)" % (index, host.strip())
    return "rows[%d]" % index


def _blank(value):
    # Ansible templates an unset value as "" as often as None: both mean "not known".
    return value is None or (isinstance(value, str) and not value.strip())


def normalize_row(row, index=0):
    """The row with every key of ROW_KEYS (None when not known) plus ``onboarded``; ReportError when invalid."""
    if not isinstance(row, dict):
        raise ReportError("rows[%d] must be a dict with at least a host, got %s" % (index, type(row).__name__))
    where = _where(index, row)
    computed = sorted(k for k in row if k in COMPUTED_KEYS)
    if computed:
        raise ReportError(
            "%s: %s is computed by the module (preflight passed, instance_id set, ping_status Online, "
            "metrics_seen and logs_seen above 0); remove it from the row" % (where, ", ".join(computed))
        )
    unknown = sorted(str(k) for k in row if k not in ROW_KEYS)
    if unknown:
        raise ReportError("%s: unknown keys %s; allowed keys: %s" % (where, ", ".join(unknown), ", ".join(ROW_KEYS)))
    host = row.get("host")
    if not isinstance(host, str) or not host.strip():
        raise ReportError("%s: host is required and must be a non-empty string, got %r" % (where, host))
    out = dict((key, None) for key in ROW_KEYS)
    out["host"] = host.strip()

    preflight = row.get("preflight")
    if _blank(preflight):
        preflight = "not run"
    if preflight not in PREFLIGHT_VALUES:
        raise ReportError("%s: preflight must be one of %s, got %r" % (where, ", ".join(PREFLIGHT_VALUES), preflight))
    out["preflight"] = preflight

    ping = row.get("ping_status")
    if not _blank(ping):
        if ping not in PING_VALUES:
            raise ReportError(
                "%s: ping_status must be one of %s or null (not registered), got %r"
                % (where, ", ".join(PING_VALUES), ping)
            )
        out["ping_status"] = ping

    for key in _COUNT_KEYS:
        value = row.get(key)
        if _blank(value):
            continue
        # Jinja turns a lone "{{ n }}" back into an int, but a string of digits may still come through.
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ReportError(
                "%s: %s must be a count (an integer 0 or more) or null (not checked), got %r" % (where, key, value)
            )
        out[key] = value

    for key in _TEXT_KEYS:
        value = row.get(key)
        if _blank(value):
            continue
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ReportError("%s: %s must be a string or null, got %r" % (where, key, value))
        out[key] = str(value).strip()

    out["onboarded"] = is_onboarded(out)
    return out


def is_onboarded(row):
    """Onboarded means every step is proven: preflight passed, registered, Online, metrics and logs arriving."""
    return bool(
        row.get("preflight") == "passed"
        and row.get("instance_id")
        and row.get("ping_status") == "Online"
        and (row.get("metrics_seen") or 0) > 0
        and (row.get("logs_seen") or 0) > 0
    )


def normalize_rows(rows):
    """Validated rows sorted by host; ReportError on the first invalid row or a host given twice."""
    if not isinstance(rows, list):
        raise ReportError("rows must be a list of dicts (one per host), got %s" % type(rows).__name__)
    out = [normalize_row(row, index) for index, row in enumerate(rows)]
    seen = set()
    for row in out:
        if row["host"] in seen:
            raise ReportError("rows: host %s appears more than once; give one row per host" % row["host"])
        seen.add(row["host"])
    return sorted(out, key=lambda row: row["host"])


def summarize(rows):
    return {
        "hosts": len(rows),
        "onboarded": sum(1 for row in rows if row["onboarded"]),
        "online": sum(1 for row in rows if row["ping_status"] == "Online"),
        "failed_preflight": sum(1 for row in rows if row["preflight"] == "failed"),
    }


def build_report(rows, title=DEFAULT_TITLE, site=None, region=None, generated_at=None):
    """The report document (what report.json holds). Raises ReportError before anything is rendered."""
    hosts = normalize_rows(rows)
    return {
        "title": title or DEFAULT_TITLE,
        "site": site or None,
        "region": region or None,
        "generated_at": generated_at or utc_now(),
        "summary": summarize(hosts),
        "hosts": hosts,
    }


def content_of(doc):
    """The document without its generation stamp: what decides whether the report changed."""
    return dict((key, value) for key, value in doc.items() if key != "generated_at")


def with_stamp(doc, generated_at):
    out = dict(doc)
    out["generated_at"] = generated_at
    return out


def summary_line(summary):
    return "%d host%s: %d onboarded, %d online, %d failed preflight" % (
        summary["hosts"],
        "" if summary["hosts"] == 1 else "s",
        summary["onboarded"],
        summary["online"],
        summary["failed_preflight"],
    )


# ---------------------------------------------------------------------------------------------------------------
# Cells: the words shown and the status class (ok / bad / unknown) of each value.


def cell_text(key, value):
    if key == "onboarded":
        return "yes" if value else "no"
    if value is None:
        return MISSING
    return str(value)


def cell_status(key, row):
    """ok, bad or unknown for a coloured cell; None for plain ones (host, IP, versions that are set)."""
    value = row.get(key)
    if key == "onboarded":
        return "ok" if value else "bad"
    if key == "preflight":
        return {"passed": "ok", "failed": "bad"}.get(value, "unknown")
    if key == "ping_status":
        return {"Online": "ok", None: "unknown"}.get(value, "bad")
    if key in _COUNT_KEYS:
        return "unknown" if value is None else ("ok" if value > 0 else "bad")
    if key == "association_status":
        if value == "Success":
            return "ok"
        return "bad" if value in _ASSOCIATION_BAD else "unknown"
    if key in ("instance_id", "ssm_agent_version", "cloudwatch_agent_version"):
        return "unknown" if value is None else None
    return None


def _one_line(text):
    return " ".join(str(text).split())


# ---------------------------------------------------------------------------------------------------------------
# Renderers.


def render_json(doc):
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def render_text_table(doc):
    """A fixed-width text table (a list of lines, so ``debug: var=`` shows one per line) and the summary line."""
    headers = [header for header, _key in TEXT_COLUMNS]
    cells = [[_one_line(cell_text(key, row.get(key))) for _header, key in TEXT_COLUMNS] for row in doc["hosts"]]
    widths = [max([len(h)] + [len(line[i]) for line in cells]) for i, h in enumerate(headers)]

    def fmt(values):
        return " | ".join(v.ljust(widths[i]) for i, v in enumerate(values)).rstrip()

    out = [fmt(headers), "-+-".join("-" * w for w in widths)]
    out.extend(fmt(line) for line in cells)
    out.append(summary_line(doc["summary"]))
    return out


# Backslash-escapes of CommonMark: a pipe must not end the cell, < must not open raw HTML, and so on.
_MD_SPECIAL = re.compile(r"([\\|<>`*\[\]&])")
# An underscore only emphasises at a word boundary; inside web_01 it is left alone for readability.
_MD_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def md_escape(text):
    text = _MD_SPECIAL.sub(r"\\\1", _one_line(text))
    return _MD_UNDERSCORE.sub(r"\\_", text)


def _meta_parts(doc):
    parts = []
    if doc.get("site"):
        parts.append(("Site", doc["site"]))
    if doc.get("region"):
        parts.append(("Region", doc["region"]))
    parts.append(("Generated", doc["generated_at"]))
    return parts


def render_markdown(doc):
    lines = ["# " + md_escape(doc["title"]), ""]
    lines.append(" · ".join("%s: %s" % (label, md_escape(value)) for label, value in _meta_parts(doc)))
    lines += ["", "**%s**" % summary_line(doc["summary"]), ""]
    lines.append("| " + " | ".join(header for header, _key in WIDE_COLUMNS) + " |")
    lines.append("|" + "|".join("---" for _column in WIDE_COLUMNS) + "|")
    for row in doc["hosts"]:
        lines.append("| " + " | ".join(md_escape(cell_text(key, row.get(key))) for _header, key in WIDE_COLUMNS) + " |")
    failed = [row for row in doc["hosts"] if row["preflight"] == "failed"]
    if failed:
        lines += ["", "## Preflight failures", ""]
        for row in failed:
            detail = row.get("preflight_detail") or "no diagnosis given"
            lines.append("- **%s**: %s" % (md_escape(row["host"]), md_escape(detail)))
    return "\n".join(lines) + "\n"


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 24px;
  color: #202124; background: #ffffff; }
h1 { font-size: 24px; margin: 0 0 4px 0; }
.meta { color: #5f6368; margin: 0 0 16px 0; }
.summary { display: flex; gap: 12px; margin: 0 0 20px 0; padding: 0; list-style: none; }
.summary li { border: 1px solid #dadce0; border-radius: 6px; padding: 8px 14px; min-width: 110px; }
.summary .count { display: block; font-size: 22px; font-weight: 600; }
.summary .label { color: #5f6368; font-size: 13px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #dadce0; padding: 5px 8px; text-align: left; vertical-align: top; }
th { background: #f1f3f4; }
td.num { text-align: right; }
td.instance-id, td.ip-address, td.ping-status, td.ssm-agent-version, td.cloudwatch-agent-version {
  white-space: nowrap; }
td.ok { background: #c8e6c9; color: #1b5e20; }
td.bad { background: #ffcdd2; color: #b71c1c; }
td.unknown { background: #eeeeee; color: #616161; }
.detail { margin-top: 4px; min-width: 180px; max-width: 280px; font-size: 12px; white-space: pre-wrap;
  word-break: break-word; }
"""


def h(text):
    return html.escape(str(text), quote=True)


def _html_cell(key, row):
    status = cell_status(key, row)
    classes = [key.replace("_", "-")]
    if status:
        classes.append(status)
    if key in _COUNT_KEYS:
        classes.append("num")
    body = h(cell_text(key, row.get(key)))
    if key == "preflight" and row["preflight"] == "failed":
        body += '<div class="detail">%s</div>' % h(row.get("preflight_detail") or "no diagnosis given")
    tag = "th" if key == "host" else "td"
    scope = ' scope="row"' if tag == "th" else ""
    return '<%s class="%s"%s>%s</%s>' % (tag, " ".join(classes), scope, body, tag)


def render_html(doc):
    summary = doc["summary"]
    counts = (
        ("hosts", "hosts"),
        ("onboarded", "onboarded"),
        ("online", "online"),
        ("failed_preflight", "failed preflight"),
    )
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="generated-at" content="%s">' % h(doc["generated_at"]),
        "<title>%s</title>" % h(doc["title"]),
        "<style>%s</style>" % _CSS,
        "</head>",
        "<body>",
        "<h1>%s</h1>" % h(doc["title"]),
        '<p class="meta">%s</p>'
        % " · ".join(
            '<span class="%s">%s: %s</span>' % (h(label.lower()), h(label), h(value))
            for label, value in _meta_parts(doc)
        ),
        '<ul class="summary">',
    ]
    for key, label in counts:
        out.append(
            '<li class="%s"><span class="count">%d</span><span class="label">%s</span></li>'
            % (key.replace("_", "-"), summary[key], h(label))
        )
    out += ["</ul>", '<table class="hosts">', "<thead>", "<tr>"]
    out += ['<th scope="col">%s</th>' % h(header) for header, _key in WIDE_COLUMNS]
    out += ["</tr>", "</thead>", "<tbody>"]
    for row in doc["hosts"]:
        out.append('<tr class="%s">' % ("onboarded" if row["onboarded"] else "not-onboarded"))
        out += [_html_cell(key, row) for _header, key in WIDE_COLUMNS]
        out.append("</tr>")
    out += ["</tbody>", "</table>", "</body>", "</html>"]
    return "\n".join(out) + "\n"


RENDERERS = {"json": render_json, "md": render_markdown, "html": render_html}

# Where each rendered file carries its generation stamp, so an existing file can be re-rendered with it.
_HTML_STAMP = re.compile(r'<meta name="generated-at" content="([^"]*)">')


def stamp_of(fmt, text):
    """The generated_at an existing report file carries, or None when it is not one of ours."""
    if fmt == "json":
        try:
            value = json.loads(text).get("generated_at")
        except (ValueError, AttributeError):
            return None
        return value if isinstance(value, str) else None
    if fmt == "html":
        found = _HTML_STAMP.search(text)
        return html.unescape(found.group(1)) if found else None
    for line in text.splitlines()[:4]:
        found = re.search(r"(?:^| · )Generated: (\S+)$", line)
        if found:
            return found.group(1).replace("\\", "")
    return None


def render(fmt, doc):
    return RENDERERS[fmt](doc)


def is_current(fmt, doc, existing_text):
    """Whether an existing file already shows this document (its own generated_at aside)."""
    stamp = stamp_of(fmt, existing_text)
    return stamp is not None and render(fmt, with_stamp(doc, stamp)) == existing_text
