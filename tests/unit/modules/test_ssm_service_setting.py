"""ssm_service_setting run for real against the lab emulator: read, update and reset with check mode + diff."""

from __future__ import annotations

import pytest

MODULE = "ssm_service_setting"
TIER = "/ssm/managed-instance/activation-tier"


@pytest.fixture
def tier(emulator):
    """The activation tier of the shared account, put back to its default afterwards."""
    yield TIER
    emulator.client("ssm").reset_service_setting(SettingId=TIER)


def live_value(emulator):
    return emulator.client("ssm").get_service_setting(SettingId=TIER)["ServiceSetting"]["SettingValue"]


def test_read_update_reset_four_step(run_module, emulator, tools, tier):
    emulator.reset_calls()
    read = run_module(MODULE, {"setting_id": tier})
    assert read["changed"] is False and read["service_setting"]["setting_value"] == "standard"
    args = {"setting_id": tier, "value": "advanced"}
    check = run_module(MODULE, args, check=True, diff=True)
    assert check["changed"] is True
    assert check["diff"] == {"before": {"setting_value": "standard"}, "after": {"setting_value": "advanced"}}
    assert tools.mutations(emulator.calls()) == {}
    assert live_value(emulator) == "standard"

    done = run_module(MODULE, args, diff=True)
    assert done["changed"] is True and done["service_setting"]["setting_value"] == "advanced"
    assert done["service_setting"]["status"] == "Customized"
    assert live_value(emulator) == "advanced"
    emulator.reset_calls()
    assert run_module(MODULE, args, check=True)["changed"] is False
    assert run_module(MODULE, args)["changed"] is False
    assert tools.mutations(emulator.calls()) == {}

    reset = {"setting_id": tier, "state": "reset"}
    assert run_module(MODULE, reset, check=True)["changed"] is True
    assert live_value(emulator) == "advanced"
    back = run_module(MODULE, reset, diff=True)
    assert back["changed"] is True and back["service_setting"]["status"] == "Default"
    assert back["diff"]["after"] == {"setting_value": "standard"}
    assert run_module(MODULE, reset)["changed"] is False


def test_setting_arn_is_accepted(run_module, tier):
    arn = f"arn:aws:ssm:eu-west-1:123456789012:servicesetting{tier}"
    assert run_module(MODULE, {"setting_id": arn})["service_setting"]["setting_id"] == tier


def test_returned_keys_match_return_doc(run_module, tools, tier):
    result = run_module(MODULE, {"setting_id": tier})
    assert set(result) - tools.STANDARD_KEYS == tools.return_keys(MODULE)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ({"setting_id": "/ssm/no/such/setting"}, "Failed to get service setting"),
        ({"setting_id": TIER, "value": "premium"}, "Failed to update service setting"),
        ({"setting_id": "activation-tier"}, "setting_id must be a path"),
        ({"setting_id": TIER, "value": "advanced", "state": "reset"}, "value cannot be combined"),
    ],
)
def test_errors_name_the_operation_or_option(run_module, emulator, tier, args, fragment):
    result = run_module(MODULE, args)
    assert result.get("failed") is True and fragment in result["msg"], result
    assert live_value(emulator) == "standard"
