"""agent_service run as Ansible runs it, against a systemctl/journalctl stand-in on PATH that keeps a unit's state in
files (the test machine need not run systemd). The real systemd path is proven on the lab's hosts, where the SSM and
CloudWatch agents' units are started by it (tests/integration/test_ssm_agent_lab.py, test_cloudwatch_agent_lab.py).
"""

from __future__ import annotations

import pytest

MODULE = "agent_service"
UNIT = "amazon-ssm-agent.service"

# State per unit in $FAKE_UNITS/<unit>/{active,sub,file}; "dies" holds how many of the next starts die at once.
_SYSTEMCTL = """#!/bin/sh
d="$FAKE_UNITS/$(eval echo \\${$#})"
echo "systemctl $*" >> "$FAKE_UNITS/.log"
case "$1" in
  show) if [ ! -d "$d" ]; then printf 'LoadState=not-found\\nActiveState=inactive\\nSubState=dead\\nUnitFileState=\\n'
        else printf 'LoadState=loaded\\nActiveState=%s\\nSubState=%s\\nUnitFileState=%s\\n' \\
          "$(cat $d/active)" "$(cat $d/sub)" "$(cat $d/file)"; fi ;;
  enable) echo enabled > "$d/file" ;;
  start|restart)
    n=$(cat "$d/dies" 2>/dev/null || echo 0)
    if [ "$n" -gt 0 ]; then echo $((n - 1)) > "$d/dies"; echo failed > "$d/active"; echo failed > "$d/sub"
    else echo active > "$d/active"; echo running > "$d/sub"; fi ;;
  status) echo "x $2 - fake unit"; echo "   Active: $(cat $d/active)" ;;
esac
"""
_JOURNALCTL = """#!/bin/sh
echo "agent: Failed to attach to cgroup"
"""


@pytest.fixture
def units(stand_ins):
    root = stand_ins({"systemctl": _SYSTEMCTL, "journalctl": _JOURNALCTL}, "FAKE_UNITS")

    class Units:
        @staticmethod
        def add(active="inactive", sub="dead", file="disabled", dies=0, name=UNIT):
            unit = root / name
            unit.mkdir()
            for key, value in (("active", active), ("sub", sub), ("file", file), ("dies", str(dies))):
                (unit / key).write_text(value + "\n")

        @staticmethod
        def state(key, name=UNIT):
            return (root / name / key).read_text().strip()

        @staticmethod
        def actions():
            return [line for line in (root / ".log").read_text().splitlines() if not line.startswith("systemctl show")]

    return Units


def args(**extra):
    return {"name": UNIT, "settle": 0, **extra}


def test_enables_and_starts_then_changes_nothing(run_module, units, tools):
    units.add()
    result = run_module(MODULE, args())
    assert result.get("failed") is not True, result
    assert result["changed"] is True and result["enabled_now"] is True and result["started"] is True
    assert result["started_again"] is False and (result["active_state"], result["sub_state"]) == ("active", "running")
    assert units.actions() == [f"systemctl enable {UNIT}", f"systemctl start {UNIT}"]
    assert set(result) - tools.STANDARD_KEYS <= tools.return_keys(MODULE)

    again = run_module(MODULE, args())
    assert again["changed"] is False and again["started"] is False, again
    assert len(units.actions()) == 2


def test_check_mode_reports_and_does_nothing(run_module, units):
    units.add()
    result = run_module(MODULE, args(), check=True)
    assert result["changed"] is True and result["enabled_now"] is True and result["started"] is True, result
    assert units.actions() == [] and units.state("active") == "inactive"


def test_a_process_that_dies_at_once_is_started_once_more_with_a_warning(run_module, units):
    units.add(file="enabled", dies=1)
    result = run_module(MODULE, args())
    assert result.get("failed") is not True, result
    assert result["changed"] is True and result["started_again"] is True
    assert any("died right after starting" in str(w) for w in result.get("warnings", [])), result
    assert units.actions() == [f"systemctl start {UNIT}", f"systemctl restart {UNIT}"]
    assert units.state("sub") == "running"


def test_a_process_that_stays_down_fails_with_the_journal(run_module, units):
    units.add(file="enabled", dies=2)
    result = run_module(MODULE, args(attempts=2))
    assert result.get("failed") is True
    assert "does not stay running" in result["msg"] and "Failed to attach to cgroup" in result["msg"], result["msg"]
    assert result["active_state"] == "failed" and result["started_again"] is True


def test_verify_looks_at_a_unit_that_was_already_active(run_module, units):
    units.add(active="active", sub="running", file="enabled")
    quiet = run_module(MODULE, args())
    assert quiet["changed"] is False and units.actions() == []
    # An earlier task restarted it and it died since: verify finds that and starts it once more.
    units.add(active="active", sub="exited", file="enabled", name="other.service")
    result = run_module(MODULE, args(name="other.service", verify=True, attempts=1))
    assert result["started_again"] is True and result["changed"] is True, result
    assert units.actions() == ["systemctl restart other.service"]


def test_an_unknown_unit_or_bad_numbers_are_refused(run_module, units):
    missing = run_module(MODULE, args())
    assert missing.get("failed") is True and "no such unit" in missing["msg"]
    units.add()
    bad = run_module(MODULE, args(attempts=0))
    assert bad.get("failed") is True and "attempts must be at least 1" in bad["msg"]
    assert units.actions() == []
