"""config-translator stand-in: the CloudWatch agent's own valid/invalid samples against the vendored schema.

Windows decision (see tests/lab/agents/README.md): the lab hosts are Linux, so the translator runs with
``--os linux`` by default and rejects Windows-only sections (``windows_events``, Windows performance
counter objects). Windows-only *valid* samples must therefore pass with ``--os windows`` and fail on
Linux; every *invalid* sample must fail on both.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

LAB = Path(__file__).resolve().parents[3] / "tests" / "lab"
SRC = LAB / "agents" / "src"
for p in (LAB, SRC):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import cw_translator  # noqa: E402
import labconst  # noqa: E402

VENDOR = Path(labconst.VENDOR_DIR) / "amazon-cloudwatch-agent"
SAMPLES = sorted((VENDOR / "samples").glob("*.json")) if (VENDOR / "samples").is_dir() else []
WINDOWS_ONLY = {
    "validWindowsMetrics.json",
    "validLogWindowsEvents.json",
    "validLogWindowsEventsWithFilters.json",
}
needs_vendor = pytest.mark.skipif(
    not (VENDOR / "schema.json").is_file(), reason=f"vendor dir missing: {VENDOR}"
)


@pytest.fixture(scope="module")
def schema():
    return json.loads((VENDOR / "schema.json").read_text())


@needs_vendor
@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_vendor_sample(sample, schema):
    config = json.loads(sample.read_text())
    linux = cw_translator.validate(config, schema, "linux")
    windows = cw_translator.validate(config, schema, "windows")
    if sample.name.startswith("invalid"):
        assert linux and windows, f"{sample.name} must be rejected"
        assert all(line.startswith("Under path : /") for line in linux)
    elif sample.name in WINDOWS_ONLY:
        assert windows == [], windows
        assert linux and "Windows" in " ".join(linux)
    else:
        assert linux == [], linux


@needs_vendor
def test_samples_cover_both_outcomes():
    names = {s.name for s in SAMPLES}
    assert any(n.startswith("valid") for n in names) and any(n.startswith("invalid") for n in names)
    assert names >= WINDOWS_ONLY, "the Windows-only list is stale"


@needs_vendor
def test_errors_name_the_path(schema):
    config = {"agent": {"metrics_collection_interval": "60"}, "metrics": {"metrics_collected": {}}}
    errors = cw_translator.validate(config, schema)
    expected = (
        "Under path : /agent/metrics_collection_interval | Error : "
        "Invalid type. Expected: integer, given: string"
    )
    assert expected in errors
    assert any(
        e.startswith("Under path : /metrics/metrics_collected | Error : Must have at least 1") for e in errors
    )


@needs_vendor
def test_cli_exit_codes(tmp_path):
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(
        json.dumps({"metrics": {"metrics_collected": {"mem": {"measurement": ["mem_used_percent"]}}}})
    )
    bad.write_text(json.dumps({"logs": {"logs_collected": {"files": {"collect_list": []}}}}))
    cmd = [sys.executable, str(SRC / "cw_translator.py"), "--schema", str(VENDOR / "schema.json"), "--input"]
    ok = subprocess.run([*cmd, str(good)], capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    ko = subprocess.run([*cmd, str(bad)], capture_output=True, text=True, check=False)
    assert ko.returncode == 1
    assert (
        "Under path : /logs/logs_collected/files/collect_list | Error : Array must have at least 1 items"
        in ko.stderr
    )


def test_validator_keywords_without_vendor():
    schema = {
        "definitions": {"port": {"type": "integer", "minimum": 1, "maximum": 65535}},
        "type": "object",
        "properties": {
            "port": {"$ref": "#/definitions/port"},
            "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5},
            "tags": {"type": "array", "uniqueItems": True, "items": {"enum": ["a", "b"]}},
            "mode": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        },
        "required": ["port"],
        "additionalProperties": False,
    }
    v = cw_translator.Validator(schema)
    assert v.errors({"port": 443, "name": "abc", "tags": ["a", "b"], "mode": 1}) == []
    problems = dict(v.errors({"port": 0, "name": "ABCDEFG", "tags": ["a", "a", "c"], "mode": [], "x": 1}))
    assert set(problems) == {"/port", "/name", "/tags", "/tags/2", "/mode", "/"}
    assert v.errors({"port": True}) != []  # a boolean is not an integer in JSON Schema


def test_structural_fallback_when_no_schema():
    assert (
        cw_translator.validate(
            {"metrics": {"metrics_collected": {"mem": {"measurement": ["used_percent"]}}}}, None
        )
        == []
    )
    errors = cw_translator.validate({"logs": {"logs_collected": {"files": {"collect_list": [{}]}}}}, None)
    assert errors == [
        "Under path : /logs/logs_collected/files/collect_list/0 | Error : file_path is required"
    ]
