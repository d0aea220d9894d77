"""The HTML report as a browser shows it: headless Chromium renders a 3-host report (one failed preflight) offline,
and the test judges from outside - the screenshot is a PNG of the window size that is not blank and shows the ok and
bad cell colours; the DOM Chromium built holds the host table with one body row per host.

The PNG is read with struct and zlib only (no Pillow in the venv)."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser

import pytest
from ansible_collections.hybrid.onboard.plugins.module_utils import hybrid_report as report

WIDTH, HEIGHT = 1400, 900
CHROMIUM = shutil.which("chromium")

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (make apt installs it)")

# The failed host's diagnosis carries markup: it must reach the page as text, not as an element.
DETAIL = "ssm.eu-west-1.amazonaws.com: on-prem DNS does not forward <script>document.title='x'</script>"
ROWS = [
    {
        "host": "web-02",
        "preflight": "passed",
        "instance_id": "mi-0123456789abcdef0",
        "ping_status": "Online",
        "ip_address": "192.168.10.12",
        "ssm_agent_version": "3.3.1142.0",
        "cloudwatch_agent_version": "1.300044.0",
        "metrics_seen": 12,
        "logs_seen": 40,
        "association_status": "Success",
        "last_association_execution": "2024-05-01T09:58:00+00:00",
    },
    {"host": "db-01", "preflight": "failed", "preflight_detail": DETAIL},
    {
        "host": "app-01",
        "preflight": "passed",
        "instance_id": "mi-0fedcba9876543210",
        "ping_status": "ConnectionLost",
        "metrics_seen": 0,
        "association_status": "Failed",
    },
]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """The report page, its screenshot (PNG bytes) and the DOM Chromium dumped, made once for the module."""
    base = tmp_path_factory.mktemp("report-chromium")
    doc = report.build_report(ROWS, site="dc1-hybrid", region="eu-west-1", generated_at="2024-05-01T10:00:00Z")
    page = base / "report.html"
    page.write_text(report.render_html(doc), encoding="utf-8")
    shot = base / "report-screenshot.png"
    common = [
        CHROMIUM,
        "--headless=new",
        "--no-sandbox",  # we run as root
        "--disable-gpu",
        f"--window-size={WIDTH},{HEIGHT}",
        f"--user-data-dir={base / 'profile'}",
        "--no-first-run",
        "--disable-background-networking",
        # Closed network: any name lookup fails, so the page must render from its own bytes.
        "--host-resolver-rules=MAP * ~NOTFOUND",
    ]
    env = dict(os.environ, HOME=str(base))
    url = page.as_uri()
    snap = subprocess.run(
        [*common, f"--screenshot={shot}", url], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert snap.returncode == 0, snap.stderr
    dom = subprocess.run(
        [*common, "--dump-dom", url], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert dom.returncode == 0, dom.stderr
    return {"html": page.read_text(), "png_path": shot, "dom": dom.stdout}


# --- PNG, read by hand -------------------------------------------------------------------------------------------


def png_chunks(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    pos = 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        yield kind, body
        pos += 12 + length


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def decode_png(data):
    """(width, height, rows of RGB tuples) of an 8-bit RGB/RGBA, non-interlaced PNG."""
    chunks = list(png_chunks(data))
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    width, height, depth, colour, _compression, _filter, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    stride = width * bpp
    assert len(raw) == height * (stride + 1), "IDAT does not hold height scanlines"
    rows, prev = [], bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up_left = prev[i - bpp] if i >= bpp else 0
            predictor = (0, left, prev[i], (left + prev[i]) // 2, _paeth(left, prev[i], up_left))[kind]
            line[i] = (line[i] + predictor) & 0xFF
        rows.append([tuple(line[x : x + 3]) for x in range(0, stride, bpp)])
        prev = line
    return width, height, rows


def css_background(html, selector):
    found = re.search(re.escape(selector) + r" \{ background: #([0-9a-fA-F]{6});", html)
    assert found, f"no background for {selector} in the page's CSS"
    return tuple(bytes.fromhex(found.group(1)))


def test_screenshot_is_a_png_of_the_window_size(rendered):
    data = rendered["png_path"].read_bytes()
    kind, body = next(png_chunks(data))
    assert kind == b"IHDR"
    assert struct.unpack(">II", body[:8]) == (WIDTH, HEIGHT)


def test_screenshot_is_not_blank_and_shows_the_status_colours(rendered):
    width, height, rows = decode_png(rendered["png_path"].read_bytes())
    assert (width, height) == (WIDTH, HEIGHT)
    counts = {}
    for row in rows:
        for pixel in row:
            counts[pixel] = counts.get(pixel, 0) + 1
    non_white = width * height - counts.get((255, 255, 255), 0)
    assert non_white > width * height // 50, f"only {non_white} non-white pixels: the page looks blank"
    assert len(counts) > 50, f"only {len(counts)} colours: no text was drawn"
    # Each coloured status cell is a solid block of its CSS background (a cell is roughly 80x25 pixels).
    for status in ("ok", "bad", "unknown"):
        colour = css_background(rendered["html"], f"td.{status}")
        assert counts.get(colour, 0) > 1000, f"td.{status} {colour} covers {counts.get(colour, 0)} pixels"


class HostTable(HTMLParser):
    """Body rows of table.hosts in Chromium's DOM: per row its cells' texts; and every element seen."""

    def __init__(self, text):
        super().__init__()
        self.rows, self.tags, self.header_cells = [], [], 0
        self._in_table = self._section = self._cell = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "table" and "hosts" in (dict(attrs).get("class") or "").split():
            self._in_table = True
        elif self._in_table and tag in ("thead", "tbody"):
            self._section = tag
        elif self._in_table and tag == "tr" and self._section == "tbody":
            self.rows.append([])
        elif self._in_table and tag in ("th", "td"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_table = False
        elif tag in ("th", "td") and self._cell is not None:
            if self._section == "tbody":
                self.rows[-1].append(" ".join(self._cell.split()))
            else:
                self.header_cells += 1
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def test_dom_has_the_table_with_one_row_per_host(rendered):
    table = HostTable(rendered["dom"])
    assert len(table.rows) == 3
    assert [row[0] for row in table.rows] == ["app-01", "db-01", "web-02"]
    assert all(len(row) == table.header_cells for row in table.rows)
    failed = table.rows[1]
    assert failed[2].startswith("failed") and "on-prem DNS does not forward <script>" in failed[2]
    assert failed[-1] == "no" and table.rows[2][-1] == "yes"
    # The diagnosis' markup stayed text: Chromium built no script element, and the title was not changed.
    assert "script" not in table.tags
    assert "<title>hybrid-onboard report</title>" in rendered["dom"]
