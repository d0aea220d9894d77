"""host_files run as Ansible runs it, on real files in a temporary directory. systemctl is a stand-in on PATH (the
test machine need not run systemd); the real units are read on the lab's hosts (tests/integration/*_lab.py).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

MODULE = "host_files"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

CREDENTIALS = f"""[default]
aws_access_key_id = ASIAEXAMPLEDEFAULT
aws_secret_access_key = default-secret

[ AmazonCloudWatchAgent ]
aws_access_key_id = AKIAEXAMPLE
aws_secret_access_key = {SECRET}
[other]
region = eu-west-1
"""

# systemctl show --property=ActiveState --property=UnitFileState -- <unit>, from $FAKE_UNITS/<unit> ("state enabled").
_SYSTEMCTL = """#!/bin/sh
unit="$5"
if [ -f "$FAKE_UNITS/$unit" ]; then read active file < "$FAKE_UNITS/$unit"; else active=inactive; file=; fi
printf 'ActiveState=%s\\nUnitFileState=%s\\n' "$active" "$file"
"""


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_writes_the_files_then_changes_nothing(run_module, tmp_path, tools):
    conf = tmp_path / "etc" / "agent" / "agent.toml"
    config = tmp_path / "etc" / "agent" / "agent.json"
    args = {"files": [
        {"path": str(conf), "content": "[credentials]\n  shared_credential_profile = \"default\"\n"},
        {"path": str(config), "content": '{"agent": {}}\n', "mode": "0600"},
    ]}
    result = run_module(MODULE, args)
    assert result.get("failed") is not True, result
    assert result["changed"] is True and result["written"] == [str(conf), str(config)], result
    assert conf.read_text().startswith("[credentials]") and config.read_text() == '{"agent": {}}\n'
    assert mode_of(conf) == 0o644 and mode_of(config) == 0o600 and mode_of(conf.parent) == 0o755
    assert sorted(p.name for p in conf.parent.iterdir()) == ["agent.json", "agent.toml"]  # no temporary file left
    assert set(result) - tools.STANDARD_KEYS <= tools.return_keys(MODULE)

    again = run_module(MODULE, args)
    assert again["changed"] is False and again["written"] == [] and again["attributes_fixed"] == [], again


def test_a_wrong_mode_or_owner_is_fixed_without_rewriting(run_module, tmp_path):
    path = tmp_path / "agent.json"
    path.write_text("{}\n")
    path.chmod(0o666)
    inode = path.stat().st_ino
    result = run_module(MODULE, {"files": [{"path": str(path), "content": "{}\n", "group": "nogroup"}]})
    assert result["changed"] is True and result["attributes_fixed"] == [str(path)] and result["written"] == []
    assert mode_of(path) == 0o644 and path.stat().st_ino == inode
    assert path.stat().st_gid != 0


def test_check_mode_reports_every_change_and_makes_none(run_module, tmp_path):
    old = tmp_path / "proxy.conf"
    old.write_text("[Service]\n")
    creds = tmp_path / "credentials"
    creds.write_text(CREDENTIALS)
    new = tmp_path / "new" / "agent.json"
    result = run_module(
        MODULE,
        {
            "files": [{"path": str(new), "content": "{}\n"}],
            "absent": [str(old), str(tmp_path / "never-there")],
            "ini_sections_absent": [{"path": str(creds), "section": "AmazonCloudWatchAgent"}],
        },
        check=True,
    )
    assert result["changed"] is True, result
    assert result["written"] == [str(new)] and result["removed"] == [str(old)]
    assert result["sections_removed"] == [f"{creds} [AmazonCloudWatchAgent]"]
    assert not new.parent.exists() and old.exists() and creds.read_text() == CREDENTIALS


def test_diff_mode_shows_contents_except_of_secret_files(run_module, tmp_path):
    shown = tmp_path / "agent.json"
    shown.write_text('{"old": 1}\n')
    hidden = tmp_path / "proxy.conf"
    result = run_module(
        MODULE,
        {"files": [
            {"path": str(shown), "content": '{"new": 2}\n'},
            {"path": str(hidden), "content": f"Environment=https_proxy=http://u:{SECRET}@proxy:3128\n", "secret": True},
        ]},
        check=True,
        diff=True,
    )
    assert result["diff"] == [{"before_header": str(shown), "after_header": str(shown),
                               "before": '{"old": 1}\n', "after": '{"new": 2}\n'}], result
    assert SECRET not in json.dumps(result)


def test_a_config_that_fails_validation_leaves_the_old_file(run_module, tmp_path):
    path = tmp_path / "agent.json"
    path.write_text('{"good": true}\n')
    validator = tmp_path / "translator"
    validator.write_text('#!/bin/sh\ngrep -q good "$2" || { echo "E! invalid config: $(cat "$2")" >&2; exit 1; }\n')
    validator.chmod(0o755)
    check = f"{validator} --input %s"
    bad = run_module(MODULE, {"files": [{"path": str(path), "content": '{"bad": 1}\n', "validate": check}]})
    assert bad.get("failed") is True and bad["written"] == [] and bad["changed"] is False
    assert "failed validation" in bad["msg"] and 'E! invalid config: {"bad": 1}' in bad["msg"], bad["msg"]
    assert path.read_text() == '{"good": true}\n' and [p.name for p in tmp_path.iterdir() if p.name[0] == "."] == []

    good = run_module(MODULE, {"files": [{"path": str(path), "content": '{"good": 2}\n', "validate": check}]})
    assert good["changed"] is True and path.read_text() == '{"good": 2}\n', good


def test_absent_files_and_ini_sections_are_removed_keeping_the_rest(run_module, tmp_path):
    dropin = tmp_path / "amazon-ssm-agent.service.d" / "hybrid-onboard-proxy.conf"
    dropin.parent.mkdir()
    dropin.write_text("[Service]\n")
    creds = tmp_path / "credentials"
    creds.write_text(CREDENTIALS)
    creds.chmod(0o600)
    config = tmp_path / "config"
    config.write_text("[default]\nregion = eu-west-1\n[profile AmazonCloudWatchAgent]\nregion = eu-west-1\n")
    args = {
        "absent": [str(dropin)],
        "ini_sections_absent": [
            {"path": str(creds), "section": "AmazonCloudWatchAgent"},
            {"path": str(config), "section": "profile  AmazonCloudWatchAgent"},
            {"path": str(tmp_path / "missing"), "section": "AmazonCloudWatchAgent"},
        ],
    }
    result = run_module(MODULE, args, diff=True)
    assert result["changed"] is True and result["removed"] == [str(dropin)], result
    assert result["sections_removed"] == [f"{creds} [AmazonCloudWatchAgent]",
                                          f"{config} [profile  AmazonCloudWatchAgent]"]
    assert not dropin.exists()
    assert creds.read_text() == ("[default]\naws_access_key_id = ASIAEXAMPLEDEFAULT\n"
                                 "aws_secret_access_key = default-secret\n\n[other]\nregion = eu-west-1\n")
    assert mode_of(creds) == 0o600
    assert config.read_text() == "[default]\nregion = eu-west-1\n"
    assert SECRET not in json.dumps(result) and "default-secret" not in json.dumps(result)

    again = run_module(MODULE, args)
    assert again["changed"] is False and again["sections_removed"] == [] and again["removed"] == [], again


def test_services_are_read_not_changed(run_module, stand_ins):
    units = stand_ins({"systemctl": _SYSTEMCTL}, "FAKE_UNITS")
    (units / "amazon-ssm-agent.service").write_text("active enabled\n")
    (units / "amazon-cloudwatch-agent.service").write_text("failed enabled\n")
    result = run_module(MODULE, {"services": ["amazon-ssm-agent.service", "amazon-cloudwatch-agent.service",
                                              "not-installed.service"]})
    assert result["changed"] is False, result
    assert result["services"] == {
        "amazon-ssm-agent.service": {"active": True, "enabled": True, "active_state": "active"},
        "amazon-cloudwatch-agent.service": {"active": False, "enabled": True, "active_state": "failed"},
        "not-installed.service": {"active": False, "enabled": False, "active_state": "inactive"},
    }


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"path": "relative/agent.json", "content": "{}"}, "files[1].path must be an absolute path"),
        ({"path": "/tmp/x.json", "content": "{}", "mode": "644x"}, "files[1].mode must be octal permissions"),
        ({"path": "/tmp/x.json", "content": "{}", "mode": "u+rw"}, "files[1].mode must be octal permissions"),
        ({"path": "/tmp/x.json", "content": "{}", "validate": "translator --input"}, "files[1].validate must contain"),
        ({"path": "/tmp/x.json", "content": "{}", "owner": "no-such-user-here"}, "files[1].owner: no such user"),
        ({"path": "/tmp/x.json", "content": "{}", "group": "no-such-group-here"}, "files[1].group: no such group"),
    ],
)
def test_bad_input_is_refused_before_any_change(run_module, tmp_path, bad, message):
    first = tmp_path / "first.json"
    result = run_module(MODULE, {"files": [{"path": str(first), "content": "{}"}, bad]})
    assert result.get("failed") is True and message in result["msg"], result
    assert not first.exists()


def test_a_path_both_written_and_absent_is_refused(run_module, tmp_path):
    path = str(tmp_path / "x.conf")
    result = run_module(MODULE, {"files": [{"path": path, "content": ""}], "absent": [path]})
    assert result.get("failed") is True and "a path may appear once" in result["msg"] and path in result["msg"]
    assert not os.path.exists(path)


@pytest.mark.parametrize("where", ["files", "absent", "ini_sections_absent"])
def test_a_directory_at_a_path_is_refused_before_any_change(run_module, tmp_path, where):
    directory = tmp_path / "amazon-cloudwatch-agent.json"
    directory.mkdir()
    first = tmp_path / "first.json"
    args = {"files": [{"path": str(first), "content": "{}"}]}
    if where == "files":
        args["files"].append({"path": str(directory), "content": "{}"})
    elif where == "absent":
        args["absent"] = [str(directory)]
    else:
        args["ini_sections_absent"] = [{"path": str(directory), "section": "AmazonCloudWatchAgent"}]
    result = run_module(MODULE, args)
    assert result.get("failed") is True, result
    assert result["msg"] == f"{where}: {directory} is a directory; host_files manages files only"
    assert not first.exists() and directory.is_dir()


def test_symlinks_are_replaced_or_removed_never_followed_out(run_module, tmp_path):
    target = tmp_path / "elsewhere.conf"
    target.write_text("new\n")
    target.chmod(0o640)
    link, dangling, gone = tmp_path / "agent.conf", tmp_path / "dangling.conf", tmp_path / "old.conf"
    link.symlink_to(target)
    dangling.symlink_to(tmp_path / "nowhere")
    gone.symlink_to(tmp_path)  # a link to a directory is removed itself
    result = run_module(MODULE, {"files": [{"path": str(link), "content": "new\n"},
                                           {"path": str(dangling), "content": "new\n"}], "absent": [str(gone)]})
    assert result["changed"] is True, result
    for path in (link, dangling):
        assert not path.is_symlink() and path.read_text() == "new\n"
    # Even with the same content the link is replaced: the file it pointed at keeps its content and mode.
    assert (target.read_text(), mode_of(target)) == ("new\n", 0o640)
    assert not os.path.lexists(gone) and tmp_path.is_dir()
    again = run_module(MODULE, {"files": [{"path": str(link), "content": "new\n"}]})
    assert again["changed"] is False, again
