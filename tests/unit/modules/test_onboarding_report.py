"""onboarding_report run for real (child process, as Ansible runs it; once through ``ansible`` itself) writing to a
temp directory: the four-step idempotency, a changed row, check mode writing nothing, diff, validation before any
write, and the files and modes a user finds afterwards. No AWS is involved; the emulator of ``run_module`` is idle."""

from __future__ import annotations

import json
import os
import stat

import pytest

MODULE = "onboarding_report"
FILES = ("report.json", "report.md", "report.html")

ROWS = [
    {
        "host": "web2",
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
    {"host": "db1", "preflight": "failed", "preflight_detail": "on-prem DNS does not forward"},
    {"host": "app1", "preflight": "passed", "instance_id": "mi-0fedcba9876543210", "ping_status": "ConnectionLost"},
]


def args_for(dest, rows=None, **extra):
    return {"dest": str(dest), "rows": ROWS if rows is None else rows, "site": "dc1", "region": "eu-west-1", **extra}


def snapshot(dest):
    """What a user finds in dest: each report file's bytes and inode (a rewrite replaces the inode)."""
    found = {}
    for name in FILES:
        path = dest / name
        if path.exists():
            found[name] = (path.read_bytes(), path.stat().st_ino)
    return found


def test_four_step_idempotency(run_module, tmp_path):
    dest = tmp_path / "out" / "report"
    args = args_for(dest)

    check = run_module(MODULE, args, check=True)
    assert check["changed"] is True
    assert check["files"] == [str(dest / name) for name in FILES]
    assert not (tmp_path / "out").exists(), "check mode created dest"

    done = run_module(MODULE, args)
    assert done["changed"] is True and done["files"] == check["files"]
    assert done["summary"] == {"hosts": 3, "onboarded": 1, "online": 1, "failed_preflight": 1}
    written = snapshot(dest)
    assert set(written) == set(FILES)
    doc = json.loads((dest / "report.json").read_text())
    assert [row["host"] for row in doc["hosts"]] == ["app1", "db1", "web2"]
    assert [row["onboarded"] for row in doc["hosts"]] == [False, False, True]
    assert (doc["site"], doc["region"], doc["summary"]) == ("dc1", "eu-west-1", done["summary"])

    again = run_module(MODULE, args, check=True)
    assert again["changed"] is False and again["files"] == []
    rerun = run_module(MODULE, args)
    assert rerun["changed"] is False and rerun["files"] == []
    assert snapshot(dest) == written, "an unchanged report was rewritten"
    assert rerun["table"] == done["table"] and rerun["summary"] == done["summary"]


def test_a_changed_row_rewrites_every_file(run_module, tmp_path):
    dest = tmp_path / "report"
    run_module(MODULE, args_for(dest))
    before = snapshot(dest)
    online = [dict(row, ping_status="Online") if row["host"] == "app1" else row for row in ROWS]

    check = run_module(MODULE, args_for(dest, online), check=True)
    assert check["changed"] is True and check["summary"]["online"] == 2
    assert snapshot(dest) == before, "check mode wrote a file"

    done = run_module(MODULE, args_for(dest, online))
    assert done["changed"] is True and done["files"] == [str(dest / name) for name in FILES]
    after = snapshot(dest)
    assert all(after[name][0] != before[name][0] for name in FILES)
    app1 = next(row for row in json.loads(after["report.json"][0])["hosts"] if row["host"] == "app1")
    assert app1["ping_status"] == "Online"
    assert "| app1 |" in after["report.md"][0].decode() and "Online" in done["table"][2]


def test_diff_shows_the_json_content_without_generated_at(run_module, tmp_path):
    dest = tmp_path / "report"
    first = run_module(MODULE, args_for(dest), diff=True)
    assert first["diff"]["before"] == {}
    assert "generated_at" not in first["diff"]["after"]
    assert first["diff"]["after"]["summary"]["hosts"] == 3

    fewer = run_module(MODULE, args_for(dest, ROWS[:2]), check=True, diff=True)
    assert fewer["changed"] is True
    assert [row["host"] for row in fewer["diff"]["before"]["hosts"]] == ["app1", "db1", "web2"]
    assert [row["host"] for row in fewer["diff"]["after"]["hosts"]] == ["db1", "web2"]

    same = run_module(MODULE, args_for(dest), diff=True)
    assert same["changed"] is False and same["diff"]["before"] == same["diff"]["after"]


def test_a_missing_or_edited_file_is_written_again(run_module, tmp_path):
    dest = tmp_path / "report"
    run_module(MODULE, args_for(dest))
    (dest / "report.md").unlink()
    result = run_module(MODULE, args_for(dest))
    assert result["changed"] is True and (dest / "report.md").is_file()
    html = dest / "report.html"
    html.write_text(html.read_text().replace("web2", "web9"))
    assert run_module(MODULE, args_for(dest))["changed"] is True
    assert "web9" not in html.read_text()


def test_formats_limit_the_files(run_module, tmp_path):
    dest = tmp_path / "report"
    result = run_module(MODULE, args_for(dest, formats=["html", "json"]))
    assert result["files"] == [str(dest / "report.json"), str(dest / "report.html")]
    assert sorted(p.name for p in dest.iterdir()) == ["report.html", "report.json"]
    assert run_module(MODULE, args_for(dest, formats=["html", "json"]))["changed"] is False
    # Adding md: only md is missing, and the three are written together.
    assert run_module(MODULE, args_for(dest))["changed"] is True
    assert sorted(p.name for p in dest.iterdir()) == sorted(FILES)


def test_dest_is_created_0755_and_files_readable_whatever_the_umask(run_module, tmp_path):
    dest = tmp_path / "a" / "b"
    old = os.umask(0o077)
    try:
        result = run_module(MODULE, args_for(dest))
    finally:
        os.umask(old)
    assert result["changed"] is True
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o755
    assert stat.S_IMODE(dest.stat().st_mode) == 0o755
    assert not [p.name for p in dest.iterdir() if p.name.startswith(".")], "a temporary file was left behind"


def test_rewritten_files_keep_their_mode(run_module, tmp_path):
    dest = tmp_path / "report"
    run_module(MODULE, args_for(dest))
    (dest / "report.html").chmod(0o640)
    assert run_module(MODULE, args_for(dest, ROWS[:1]))["changed"] is True
    assert stat.S_IMODE((dest / "report.html").stat().st_mode) == 0o640


def test_text_table_for_debug(run_module, tmp_path):
    table = run_module(MODULE, args_for(tmp_path / "r"), check=True)["table"]
    assert table[0].split(" | ")[0].strip() == "host" and table[0].endswith("onboarded")
    assert [line.split(" | ")[0].strip() for line in table[2:5]] == ["app1", "db1", "web2"]
    assert table[4].endswith("| yes") and table[3].endswith("| no")
    assert table[-1] == "3 hosts: 1 onboarded, 1 online, 1 failed preflight"


def test_returned_keys_match_return_doc(run_module, tools, tmp_path):
    result = run_module(MODULE, args_for(tmp_path / "r"))
    assert set(result) - tools.STANDARD_KEYS == tools.return_keys(MODULE)


@pytest.mark.parametrize(
    ("change", "fragments"),
    [
        (
            {"rows": [*ROWS, {"host": "x1", "colour": "red"}]},
            ["rows[3] (host x1): unknown keys colour", "allowed keys: host, preflight, preflight_detail"],
        ),
        ({"rows": [{"host": "x1", "onboarded": True}]}, ["onboarded is computed by the module"]),
        ({"rows": [{"host": "x1", "ping_status": "Up"}]}, ["ping_status must be one of Online, ConnectionLost"]),
        ({"rows": [{"host": "x1"}, {"host": "x1"}]}, ["host x1 appears more than once"]),
        ({"rows": [{"preflight": "passed"}]}, ["rows[0]: host is required"]),
        ({"formats": []}, ["formats must name at least one of json, md, html"]),
        ({"formats": ["pdf"]}, ["formats", "json, md, html", "pdf"]),
        ({"title": " "}, ["title must not be empty"]),
    ],
    ids=["unknown-key", "onboarded-given", "bad-ping", "duplicate", "no-host", "no-formats", "pdf", "blank-title"],
)
def test_invalid_input_fails_before_anything_is_written(run_module, tmp_path, change, fragments):
    dest = tmp_path / "report"
    result = run_module(MODULE, {**args_for(dest), **change})
    assert result.get("failed") is True
    for fragment in fragments:
        assert fragment in result["msg"], result["msg"]
    assert not dest.exists()


def test_dest_that_is_a_file_fails(run_module, tmp_path):
    dest = tmp_path / "report"
    dest.write_text("not a directory")
    result = run_module(MODULE, args_for(dest))
    assert result.get("failed") is True
    assert f"dest: {dest} exists and is not a directory" in result["msg"]
    assert dest.read_text() == "not a directory"


def test_through_ansible_check_then_real(run_module, tmp_path):
    """The module_utils import reaches the module through AnsiballZ, and --check/--diff behave there too."""
    dest = tmp_path / "report"
    check = run_module(MODULE, args_for(dest), check=True, diff=True, via="ansible")
    assert check["changed"] is True and not dest.exists()
    assert check["diff"]["after"]["summary"]["hosts"] == 3
    done = run_module(MODULE, args_for(dest), via="ansible")
    assert done["changed"] is True and sorted(p.name for p in dest.iterdir()) == sorted(FILES)
    assert run_module(MODULE, args_for(dest), via="ansible")["changed"] is False
