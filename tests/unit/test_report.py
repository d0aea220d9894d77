"""The onboarding report's rendering (plugins/module_utils/hybrid_report.py): validation of the rows, the onboarded
verdict, the summary, sorting, escaping in HTML and Markdown, the text table, and the stamp-blind comparison that
makes the module idempotent. The module itself runs in tests/unit/modules/test_onboarding_report.py."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
from ansible_collections.hybrid.onboard.plugins.module_utils import hybrid_report as report

STAMP = "2024-05-01T10:00:00Z"
LATER = "2024-05-02T11:30:00Z"


def good_row(host, **changes):
    row = {
        "host": host,
        "preflight": "passed",
        "instance_id": "mi-0123456789abcdef0",
        "ping_status": "Online",
        "ip_address": "192.168.10.11",
        "ssm_agent_version": "3.3.1142.0",
        "cloudwatch_agent_version": "1.300044.0",
        "metrics_seen": 12,
        "logs_seen": 40,
        "association_status": "Success",
        "last_association_execution": "2024-05-01T09:58:00+00:00",
    }
    row.update(changes)
    return row


ROWS = [
    good_row("web2"),
    {
        "host": "db1",
        "preflight": "failed",
        "preflight_detail": "ssm.eu-west-1.amazonaws.com: on-prem DNS does not forward",
    },
    good_row("app1", ping_status="ConnectionLost", metrics_seen=0, logs_seen=None, association_status="Failed"),
]


def make(rows=None, **kwargs):
    kwargs.setdefault("generated_at", STAMP)
    return report.build_report(ROWS if rows is None else rows, **kwargs)


class Table(HTMLParser):
    """The rendered page's host table: header texts, and per body row its cells as (classes, text)."""

    def __init__(self, text):
        super().__init__()
        self.headers, self.rows, self.tags = [], [], []
        self._section = self._cell = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attrs = dict(attrs)
        if tag in ("thead", "tbody"):
            self._section = tag
        elif tag == "tr" and self._section == "tbody":
            self.rows.append([])
        elif tag in ("th", "td"):
            self._cell = [set((attrs.get("class") or "").split()), ""]

    def handle_endtag(self, tag):
        if tag in ("th", "td") and self._cell is not None:
            classes, text = self._cell
            if self._section == "thead":
                self.headers.append(text.strip())
            else:
                self.rows[-1].append((classes, text.strip()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data


def cell(table, row_index, header):
    return table.rows[row_index][table.headers.index(header)]


# --- rows -------------------------------------------------------------------------------------------------------


def test_rows_are_sorted_by_host_and_carry_every_key():
    doc = make()
    assert [row["host"] for row in doc["hosts"]] == ["app1", "db1", "web2"]
    for row in doc["hosts"]:
        assert list(row) == [*report.ROW_KEYS, "onboarded"]
    db1 = doc["hosts"][1]
    assert db1["instance_id"] is None and db1["metrics_seen"] is None and db1["preflight_detail"].startswith("ssm.")


def test_onboarded_when_every_step_is_proven():
    assert report.normalize_row(good_row("web1"))["onboarded"] is True


@pytest.mark.parametrize(
    "changes",
    [
        {"preflight": "failed"},
        {"preflight": "not run"},
        {"preflight": None},
        {"instance_id": None},
        {"ping_status": "ConnectionLost"},
        {"ping_status": "Inactive"},
        {"ping_status": None},
        {"metrics_seen": 0},
        {"metrics_seen": None},
        {"logs_seen": 0},
        {"logs_seen": None},
    ],
    ids=lambda changes: "-".join(f"{k}={v}" for k, v in changes.items()),
)
def test_not_onboarded_when_a_step_is_missing(changes):
    assert report.normalize_row(good_row("web1", **changes))["onboarded"] is False


def test_association_status_does_not_decide_onboarded():
    assert report.normalize_row(good_row("web1", association_status="Failed"))["onboarded"] is True


def test_summary_counts():
    assert make()["summary"] == {"hosts": 3, "onboarded": 1, "online": 1, "failed_preflight": 1}
    assert make([])["summary"] == {"hosts": 0, "onboarded": 0, "online": 0, "failed_preflight": 0}


def test_blank_values_mean_not_known_and_digit_strings_are_counts():
    row = report.normalize_row(
        {"host": " web1 ", "preflight": "", "ping_status": "", "instance_id": "", "metrics_seen": "7", "logs_seen": ""}
    )
    assert row["host"] == "web1" and row["preflight"] == "not run"
    assert row["ping_status"] is None and row["instance_id"] is None and row["logs_seen"] is None
    assert row["metrics_seen"] == 7


def test_unknown_keys_are_named_with_the_allowed_keys():
    with pytest.raises(report.ReportError) as err:
        report.normalize_rows([good_row("web1"), good_row("web2", colour="red", agent="x")])
    msg = str(err.value)
    assert msg.startswith("rows[1] (host web2): unknown keys agent, colour; allowed keys: host, preflight,")
    assert all(key in msg for key in report.ROW_KEYS)


@pytest.mark.parametrize(
    ("row", "fragment"),
    [
        (good_row("web1", onboarded=True), "rows[0] (host web1): onboarded is computed by the module"),
        ({"preflight": "passed"}, "rows[0]: host is required and must be a non-empty string"),
        ({"host": "  "}, "rows[0]: host is required"),
        ({"host": "web1", "preflight": "ok"}, "preflight must be one of passed, failed, not run, got 'ok'"),
        ({"host": "web1", "ping_status": "online"}, "ping_status must be one of Online, ConnectionLost, Inactive"),
        ({"host": "web1", "metrics_seen": -1}, "metrics_seen must be a count (an integer 0 or more)"),
        ({"host": "web1", "logs_seen": "many"}, "logs_seen must be a count"),
        ({"host": "web1", "logs_seen": True}, "logs_seen must be a count"),
        ({"host": "web1", "instance_id": ["mi-1"]}, "instance_id must be a string or null"),
        ("web1", "rows[0] must be a dict with at least a host, got str"),
    ],
)
def test_invalid_rows_name_the_row_and_the_key(row, fragment):
    with pytest.raises(report.ReportError) as err:
        report.normalize_rows([row])
    assert fragment in str(err.value)


def test_a_host_given_twice_fails():
    with pytest.raises(report.ReportError, match="host web1 appears more than once"):
        report.normalize_rows([good_row("web1"), {"host": "web1"}])


# --- HTML -------------------------------------------------------------------------------------------------------


def test_html_has_one_table_row_per_host_in_host_order_with_coloured_status_cells():
    page = report.render_html(make(site="dc1-hybrid", region="eu-west-1"))
    table = Table(page)
    assert table.headers[0] == "Host" and "Onboarded" in table.headers
    assert [row[0][1] for row in table.rows] == ["app1", "db1", "web2"]
    assert all(len(row) == len(table.headers) for row in table.rows)
    assert cell(table, 2, "Ping") == ({"ping-status", "ok"}, "Online")
    assert cell(table, 0, "Ping") == ({"ping-status", "bad"}, "ConnectionLost")
    assert cell(table, 1, "Ping") == ({"ping-status", "unknown"}, "-")
    assert cell(table, 0, "Metrics")[0] == {"metrics-seen", "bad", "num"}
    assert cell(table, 0, "Logs")[0] == {"logs-seen", "unknown", "num"}
    assert cell(table, 0, "Associations")[0] == {"association-status", "bad"}
    assert cell(table, 2, "Onboarded") == ({"onboarded", "ok"}, "yes")
    assert cell(table, 1, "Onboarded") == ({"onboarded", "bad"}, "no")
    # The failed host's diagnosis is in its preflight cell; passed ones show no detail.
    classes, text = cell(table, 1, "Preflight")
    assert "bad" in classes and text.startswith("failed") and "on-prem DNS does not forward" in text
    assert cell(table, 2, "Preflight") == ({"preflight", "ok"}, "passed")
    assert "<h1>hybrid-onboard report</h1>" in page
    assert "Site: dc1-hybrid" in page and "Region: eu-west-1" in page and f"Generated: {STAMP}" in page


def test_html_escapes_every_value():
    hostile = "<script>alert(1)</script>"
    doc = make(
        [{"host": hostile, "preflight": "failed", "preflight_detail": 'x" onmouseover="y <img src=z>'}],
        title="<b>t</b>",
        site="a&b",
    )
    page = report.render_html(doc)
    assert "<script" not in page and "<img" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "a&amp;b" in page
    table = Table(page)
    # Parsed back, the host cell holds the name as text; no element came from the values.
    assert table.rows[0][0][1] == hostile
    assert 'x" onmouseover="y <img src=z>' in cell(table, 0, "Preflight")[1]
    assert {"script", "img", "b"}.isdisjoint(table.tags)


def test_html_is_self_contained():
    page = report.render_html(make())
    lowered = page.lower()
    for needle in ("http:", "https:", "//", "<script", "<link", "src=", "url(", "@import", "@font-face"):
        assert needle not in lowered, needle
    assert "<style>" in page and 'charset="utf-8"' in page


# --- Markdown ---------------------------------------------------------------------------------------------------


def md_cells(line):
    """Cells of a GitHub table row, split on pipes that are not backslash-escaped."""
    assert line.startswith("| ") and line.endswith(" |")
    return [c.strip() for c in re.split(r"(?<!\\)\|", line[1:-1])]


def test_markdown_is_a_pipe_table_with_summary_and_failures():
    text = report.render_markdown(make(site="dc1", region="eu-west-1"))
    lines = text.splitlines()
    assert lines[0] == "# hybrid-onboard report"
    assert lines[2] == f"Site: dc1 · Region: eu-west-1 · Generated: {STAMP}"
    assert "**3 hosts: 1 onboarded, 1 online, 1 failed preflight**" in lines
    start = lines.index(next(line for line in lines if line.startswith("| Host |")))
    header, rule, *rows = lines[start : start + 5]
    assert len(md_cells(header)) == len(report.WIDE_COLUMNS)
    assert re.fullmatch(r"\|(---\|)+", rule)
    assert [md_cells(row)[0] for row in rows] == ["app1", "db1", "web2"]
    assert md_cells(rows[2])[-1] == "yes" and md_cells(rows[1])[md_cells(header).index("Instance")] == "-"
    assert "## Preflight failures" in lines
    assert "- **db1**: ssm.eu-west-1.amazonaws.com: on-prem DNS does not forward" in lines


def test_markdown_escapes_pipes_and_html():
    doc = make([{"host": "a|b", "preflight": "failed", "preflight_detail": "line1\nline2 | <script>x</script>"}])
    text = report.render_markdown(doc)
    row = next(line for line in text.splitlines() if line.startswith("| a"))
    cells = md_cells(row)
    assert len(cells) == len(report.WIDE_COLUMNS)
    assert cells[0] == r"a\|b"
    assert "<script>" not in text and r"\<script\>x\</script\>" in text
    assert "line1 line2 \\| " in text  # the newline did not break the list item


def test_markdown_keeps_underscores_inside_words():
    assert report.md_escape("web_01") == "web_01"
    assert report.md_escape("_x_ *y*") == r"\_x\_ \*y\*"


# --- text table -------------------------------------------------------------------------------------------------


def test_text_table_is_fixed_width():
    lines = report.render_text_table(make())
    header, rule, *rows, summary = lines
    assert header.split(" | ", maxsplit=1)[0].strip() == "host" and header.endswith("onboarded")
    assert [h.strip() for h in header.split(" | ")] == [h for h, _key in report.TEXT_COLUMNS]
    positions = [m.start() for m in re.finditer(r"-\+-", rule)]
    for line in [header, *rows]:
        assert [m.start() for m in re.finditer(r" \| ", line)] == positions, line
    assert [row.split(" | ")[0].strip() for row in rows] == ["app1", "db1", "web2"]
    db1 = [c.strip() for c in rows[1].split(" | ")]
    assert db1 == ["db1", "failed", "-", "-", "-", "-", "-", "-", "-", "no"]
    assert summary == "3 hosts: 1 onboarded, 1 online, 1 failed preflight"
    assert report.render_text_table(make([{"host": "x"}]))[-1] == "1 host: 0 onboarded, 0 online, 0 failed preflight"


# --- JSON and the stamp-blind comparison ------------------------------------------------------------------------


def test_json_document():
    doc = json.loads(report.render_json(make(site="dc1", region="eu-west-1")))
    assert list(doc) == ["title", "site", "region", "generated_at", "summary", "hosts"]
    assert doc["title"] == "hybrid-onboard report" and doc["generated_at"] == STAMP
    assert [row["host"] for row in doc["hosts"]] == ["app1", "db1", "web2"]
    assert json.loads(report.render_json(make()))["site"] is None


def test_generated_at_defaults_to_utc_now():
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", report.build_report([])["generated_at"])


@pytest.mark.parametrize("fmt", report.FORMATS)
def test_same_content_with_another_stamp_is_current(fmt):
    old = report.render(fmt, make(site="dc1", generated_at=STAMP))
    assert report.stamp_of(fmt, old) == STAMP
    assert report.is_current(fmt, make(site="dc1", generated_at=LATER), old)


@pytest.mark.parametrize("fmt", report.FORMATS)
@pytest.mark.parametrize(
    "other",
    [
        {"rows": [*ROWS[:2], good_row("app1")]},
        {"rows": ROWS[:2]},
        {"title": "other title"},
        {"region": "eu-central-1"},
    ],
    ids=["row-changed", "row-removed", "title", "region"],
)
def test_other_content_is_not_current(fmt, other):
    old = report.render(fmt, make(site="dc1"))
    assert not report.is_current(fmt, make(**{"site": "dc1", "generated_at": LATER, **other}), old)


@pytest.mark.parametrize("fmt", report.FORMATS)
def test_a_foreign_file_is_not_current(fmt):
    assert report.stamp_of(fmt, "hello\n") is None
    assert not report.is_current(fmt, make(), "hello\n")
    edited = report.render(fmt, make()).replace("web2", "web3")
    assert not report.is_current(fmt, make(), edited)
