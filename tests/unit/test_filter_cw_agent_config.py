"""Unit tests for the CloudWatch agent config filter (plugins/filter/cw_agent_config.py).

The rendered configs are also validated against the agent's real JSON schema (vendored in
``../shared/vendor/amazon-cloudwatch-agent``, found through ``HYBRID_SHARED_VENDOR``) and the lab's
config-translator stand-in; those tests skip, saying so, when the vendor dir is missing.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError
from plugin_loader import load_plugin

LAB = Path(__file__).resolve().parents[2] / "tests" / "lab"
if str(LAB / "agents" / "src") not in sys.path:
    sys.path.insert(0, str(LAB / "agents" / "src"))

import cw_translator  # noqa: E402
import labconst  # noqa: E402

cw = load_plugin("filter", "cw_agent_config")

VENDOR = Path(labconst.VENDOR_DIR) / "amazon-cloudwatch-agent"
SCHEMA_PATH = VENDOR / "schema.json"
needs_schema = pytest.mark.skipif(
    not SCHEMA_PATH.is_file(),
    reason=f"CloudWatch agent schema missing: {SCHEMA_PATH} (vendor dir; set HYBRID_SHARED_VENDOR)",
)
GROUP = "/hybrid-onboard/syslog"


def build(metrics=None, **kwargs):
    """The filter with a one-plugin metrics default, so each test changes only what it is about."""
    if metrics is None:
        metrics = {"mem": {"measurement": ["mem_used_percent"]}}
    return cw.cw_agent_config(metrics, **kwargs)


def default_config(**kwargs):
    """What the role renders with its defaults (DEFAULT_METRICS, one syslog file) plus kwargs."""
    logs = [dict(cw.DEFAULT_LOG, log_group_name=GROUP)]
    return cw.cw_agent_config(copy.deepcopy(cw.DEFAULT_METRICS), logs=logs, **kwargs)


def full_config():
    """Every option the filter knows, set (used for the schema checks)."""
    metrics = {
        "cpu": {
            "measurement": [{"name": "cpu_usage_idle", "rename": "CPU_IDLE", "unit": "Percent"}, "cpu_usage_user"],
            "interval": 30,
            "resources": ["*"],
            "totalcpu": False,
            "append_dimensions": {"site": "dc1"},
        },
        "disk": {
            "measurement": ["used_percent", {"name": "free", "unit": "Bytes"}],
            "interval": 300,
            "resources": ["/", "/var"],
            "ignore_file_system_types": ["tmpfs", "overlay"],
            "drop_device": True,
            "append_dimensions": {"site": "dc1", "rack": "r7"},
        },
        "diskio": {"measurement": ["reads", "writes"], "interval": 60, "resources": ["sda"]},
        "mem": {"measurement": ["mem_used_percent"], "interval": 10, "append_dimensions": {"site": "dc1"}},
        "net": {"measurement": ["bytes_sent"], "resources": ["eth0"], "append_dimensions": {"site": "dc1"}},
        "swap": {"measurement": ["swap_used_percent"], "interval": 120},
        "netstat": {"measurement": ["tcp_established"], "interval": 60},
        "processes": {"measurement": ["running", "zombies"], "append_dimensions": {"site": "dc1"}},
    }
    logs = [
        {
            "file_path": "/var/log/syslog",
            "log_group_name": GROUP,
            "log_stream_name": "{hostname}-syslog",
            "log_group_class": "STANDARD",
            "retention_in_days": 90,
            "timestamp_format": "%b %d %H:%M:%S",
            "timezone": "UTC",
            "multi_line_start_pattern": "{timestamp_format}",
            "encoding": "utf-8",
            "auto_removal": False,
        },
        {"file_path": "/var/log/app/*.log", "log_group_name": "/hybrid-onboard/app"},
    ]
    journald = [
        {
            "log_group_name": "/hybrid-onboard/journal",
            "log_stream_name": "{hostname}-journal",
            "log_group_class": "INFREQUENT_ACCESS",
            "retention_in_days": 14,
            "units": ["sshd.service", "amazon-ssm-agent.service"],
            "priority": "warning",
            "matches": [{"_TRANSPORT": "kernel"}],
            "filters": [{"type": "exclude", "expression": "debug"}],
        }
    ]
    return cw.cw_agent_config(
        metrics,
        logs=logs,
        interval=120,
        run_as_user="cwagent",
        region="eu-west-1",
        namespace="HybridOnboard/OnPrem",
        append_dimensions={"InstanceId": "${aws:InstanceId}"},
        aggregation_dimensions=[["InstanceId"], []],
        journald=journald,
        force_flush_interval=15,
        omit_hostname=True,
        credentials_profile="AmazonCloudWatchAgent",
    )


# --- defaults --------------------------------------------------------------------------------------------------


def test_default_metrics_are_the_documented_ones():
    assert cw.DEFAULT_METRICS == {
        "cpu": {"measurement": ["cpu_usage_idle"], "totalcpu": True, "resources": ["*"]},
        "disk": {"measurement": ["used_percent"], "resources": ["*"]},
        "diskio": {"measurement": ["reads", "writes", "read_bytes", "write_bytes"], "resources": ["*"]},
        "mem": {"measurement": ["mem_used_percent"]},
        "net": {"measurement": ["bytes_sent", "bytes_recv", "packets_sent", "packets_recv"], "resources": ["*"]},
        "swap": {"measurement": ["swap_used_percent"]},
    }
    assert cw.DEFAULT_LOG == {"file_path": "/var/log/syslog", "log_stream_name": "{hostname}", "retention_in_days": 30}
    assert (cw.DEFAULT_INTERVAL, cw.DEFAULT_RUN_AS_USER, cw.DEFAULT_NAMESPACE) == (60, "root", "CWAgent")


def test_defaults_render_the_expected_config():
    assert default_config(region="eu-west-1") == {
        "agent": {"metrics_collection_interval": 60, "run_as_user": "root", "region": "eu-west-1"},
        "metrics": {
            "namespace": "CWAgent",
            "metrics_collected": {
                "cpu": {"measurement": ["cpu_usage_idle"], "resources": ["*"], "totalcpu": True},
                "disk": {"measurement": ["used_percent"], "resources": ["*"]},
                "diskio": {"measurement": ["reads", "writes", "read_bytes", "write_bytes"], "resources": ["*"]},
                "mem": {"measurement": ["mem_used_percent"]},
                "net": {
                    "measurement": ["bytes_sent", "bytes_recv", "packets_sent", "packets_recv"],
                    "resources": ["*"],
                },
                "swap": {"measurement": ["swap_used_percent"]},
            },
        },
        "logs": {
            "logs_collected": {
                "files": {
                    "collect_list": [
                        {
                            "file_path": "/var/log/syslog",
                            "log_group_name": GROUP,
                            "log_stream_name": "{hostname}",
                            "retention_in_days": 30,
                        }
                    ]
                }
            }
        },
    }


def test_filter_module_exports():
    assert cw.FilterModule().filters() == {"cw_agent_config": cw.cw_agent_config}


# --- every option lands in the right place ---------------------------------------------------------------------

# option -> (value given, JSON key, value expected in the output)
OPTION_CASES = {
    "measurement": (
        [{"name": "m1", "rename": "M1", "unit": "Percent"}, "m2"],
        "measurement",
        [{"name": "m1", "rename": "M1", "unit": "Percent"}, "m2"],
    ),
    "interval": (15, "metrics_collection_interval", 15),
    "append_dimensions": ({"zone": "b", "site": "dc1"}, "append_dimensions", {"site": "dc1", "zone": "b"}),
    "resources": (["sda", "sdb"], "resources", ["sda", "sdb"]),
    "totalcpu": (False, "totalcpu", False),
    "ignore_file_system_types": (["tmpfs"], "ignore_file_system_types", ["tmpfs"]),
    "drop_device": (True, "drop_device", True),
}
PLUGIN_OPTION_CASES = [(plugin, option) for plugin, options in cw.PLUGIN_OPTIONS.items() for option in options]


def test_plugin_options_are_the_intended_ones():
    basic = {"measurement", "interval", "append_dimensions"}
    assert {plugin: set(options) for plugin, options in cw.PLUGIN_OPTIONS.items()} == {
        "cpu": basic | {"resources", "totalcpu"},
        "disk": basic | {"resources", "ignore_file_system_types", "drop_device"},
        "diskio": basic | {"resources"},
        "mem": basic,
        "net": basic | {"resources"},
        "swap": basic,
        "netstat": basic,
        "processes": basic,
    }


@pytest.mark.parametrize("plugin, option", PLUGIN_OPTION_CASES, ids=[f"{p}.{o}" for p, o in PLUGIN_OPTION_CASES])
def test_plugin_option_reaches_the_plugin(plugin, option):
    given, json_key, expected = OPTION_CASES[option]
    if plugin == "cpu" and option == "resources":
        given = expected = ["*"]
    options = {"measurement": ["some_metric"], option: given}
    out = build({plugin: options})["metrics"]["metrics_collected"]
    assert list(out) == [plugin]
    assert out[plugin][json_key] == expected
    if option != "measurement":
        assert out[plugin]["measurement"] == ["some_metric"]


def test_plugin_options_take_ansible_spellings():
    out = build({"cpu": {"measurement": ["cpu_usage_idle"], "interval": "30", "totalcpu": "yes"}})
    assert out["metrics"]["metrics_collected"]["cpu"] == {
        "measurement": ["cpu_usage_idle"],
        "metrics_collection_interval": 30,
        "totalcpu": True,
    }


@pytest.mark.parametrize("off", [None, False])
def test_plugin_set_to_null_or_false_is_left_out(off):
    metrics = copy.deepcopy(cw.DEFAULT_METRICS)
    metrics["cpu"] = off
    assert "cpu" not in build(metrics)["metrics"]["metrics_collected"]
    assert set(build(metrics)["metrics"]["metrics_collected"]) == {"disk", "diskio", "mem", "net", "swap"}


def test_unset_option_is_not_written():
    out = build({"disk": {"measurement": ["used_percent"], "interval": None}})
    assert out["metrics"]["metrics_collected"]["disk"] == {"measurement": ["used_percent"]}


# logs[i] key -> (value given, value expected)
FILE_CASES = {
    "file_path": ("/var/log/messages", "/var/log/messages"),
    "log_group_name": ("/other/group", "/other/group"),
    "log_stream_name": ("{hostname}-x", "{hostname}-x"),
    "log_group_class": ("INFREQUENT_ACCESS", "INFREQUENT_ACCESS"),
    "retention_in_days": (3653, 3653),
    "timestamp_format": ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S"),
    "timezone": ("UTC", "UTC"),
    "multi_line_start_pattern": ("^\\d{4}-", "^\\d{4}-"),
    "encoding": ("latin1", "latin1"),
    "auto_removal": ("true", True),
}


def test_file_cases_cover_every_key():
    assert set(FILE_CASES) == set(cw.FILE_KEYS)


@pytest.mark.parametrize("key", sorted(FILE_CASES))
def test_log_file_key_reaches_the_collect_list(key):
    given, expected = FILE_CASES[key]
    entry = {"file_path": "/var/log/syslog", "log_group_name": GROUP, key: given}
    (out,) = build(logs=[entry])["logs"]["logs_collected"]["files"]["collect_list"]
    assert out[key] == expected


def test_log_stream_name_defaults_to_hostname():
    (out,) = build(logs=[{"file_path": "/var/log/syslog", "log_group_name": GROUP}])["logs"]["logs_collected"]["files"][
        "collect_list"
    ]
    assert out == {"file_path": "/var/log/syslog", "log_group_name": GROUP, "log_stream_name": "{hostname}"}


JOURNALD_CASES = {
    "log_group_name": ("/j/group", "/j/group"),
    "log_stream_name": ("{hostname}-j", "{hostname}-j"),
    "log_group_class": ("STANDARD", "STANDARD"),
    "retention_in_days": (7, 7),
    "units": (["sshd.service", "cron.service"], ["sshd.service", "cron.service"]),
    "priority": (3, "3"),
    "matches": ([{"SYSLOG_IDENTIFIER": "sudo", "_COMM": "sudo"}], [{"SYSLOG_IDENTIFIER": "sudo", "_COMM": "sudo"}]),
    "filters": ([{"type": "include", "expression": "ERROR|WARN"}], [{"type": "include", "expression": "ERROR|WARN"}]),
}


def test_journald_cases_cover_every_key():
    assert set(JOURNALD_CASES) == set(cw.JOURNALD_KEYS)


@pytest.mark.parametrize("key", sorted(JOURNALD_CASES))
def test_journald_key_reaches_the_collect_list(key):
    given, expected = JOURNALD_CASES[key]
    entry = {"log_group_name": "/j/default", key: given}
    out = build(journald=[entry])["logs"]["logs_collected"]
    assert list(out) == ["journald"]
    (item,) = out["journald"]["collect_list"]
    assert item[key] == expected
    assert item["log_stream_name"] == ("{hostname}-j" if key == "log_stream_name" else "{hostname}")


@pytest.mark.parametrize(
    "kwargs, section, key, expected",
    [
        ({"interval": 300}, "agent", "metrics_collection_interval", 300),
        ({"interval": "300"}, "agent", "metrics_collection_interval", 300),
        ({"run_as_user": "cwagent"}, "agent", "run_as_user", "cwagent"),
        ({"region": "eu-central-1"}, "agent", "region", "eu-central-1"),
        ({"region": "ap-southeast-12"}, "agent", "region", "ap-southeast-12"),
        ({"omit_hostname": True}, "agent", "omit_hostname", True),
        ({"namespace": "HybridOnboard"}, "metrics", "namespace", "HybridOnboard"),
        (
            {"append_dimensions": {"InstanceType": "${aws:InstanceType}", "ImageId": "${aws:ImageId}"}},
            "metrics",
            "append_dimensions",
            {"ImageId": "${aws:ImageId}", "InstanceType": "${aws:InstanceType}"},
        ),
        ({"aggregation_dimensions": [["host"], []]}, "metrics", "aggregation_dimensions", [["host"], []]),
    ],
)
def test_top_level_option_reaches_its_section(kwargs, section, key, expected):
    assert build(**kwargs)[section][key] == expected


def test_force_flush_interval_goes_to_the_logs_section():
    out = build(logs=[{"file_path": "/var/log/syslog", "log_group_name": GROUP}], force_flush_interval=20)
    assert out["logs"]["force_flush_interval"] == 20
    assert "force_flush_interval" not in out["metrics"]


def test_optional_agent_keys_are_absent_by_default():
    out = build(omit_hostname=False)
    assert out["agent"] == {"metrics_collection_interval": 60, "run_as_user": "root"}
    assert out["metrics"] == {
        "namespace": "CWAgent",
        "metrics_collected": {"mem": {"measurement": ["mem_used_percent"]}},
    }


def test_credentials_profile_is_checked_but_not_written():
    # The agent's JSON has no place for it (common-config.toml has); it must not leak into the JSON.
    out = build(credentials_profile="AmazonCloudWatchAgent")
    assert "AmazonCloudWatchAgent" not in json.dumps(out)
    assert out == build()


# --- sections ------------------------------------------------------------------------------------------------


def test_no_metrics_means_no_metrics_section():
    out = cw.cw_agent_config({}, logs=[{"file_path": "/var/log/syslog", "log_group_name": GROUP}])
    assert set(out) == {"agent", "logs"}
    out = cw.cw_agent_config({"cpu": None, "mem": False}, journald=[{"log_group_name": "/j"}])
    assert set(out) == {"agent", "logs"}


def test_no_logs_means_no_logs_section():
    assert set(build(logs=[], journald=None)) == {"agent", "metrics"}
    assert set(build(logs=None, journald=[])) == {"agent", "metrics"}


def test_files_and_journald_share_the_logs_section():
    out = build(logs=[{"file_path": "/var/log/syslog", "log_group_name": GROUP}], journald=[{"log_group_name": "/j"}])
    assert list(out["logs"]["logs_collected"]) == ["files", "journald"]


@pytest.mark.parametrize("metrics", [{}, None, {"cpu": None}])
def test_nothing_to_collect_is_an_error(metrics):
    with pytest.raises(AnsibleFilterError, match="nothing to collect") as err:
        cw.cw_agent_config(metrics, logs=[], journald=None)
    for name in ("cloudwatch_agent_metrics", "cloudwatch_agent_logs", "cloudwatch_agent_journald"):
        assert name in str(err.value)


# --- determinism ---------------------------------------------------------------------------------------------


def test_output_is_deterministic_whatever_the_input_order():
    reordered = dict(reversed(list(copy.deepcopy(cw.DEFAULT_METRICS).items())))
    reordered["cpu"] = dict(reversed(list(reordered["cpu"].items())))
    logs = [dict(cw.DEFAULT_LOG, log_group_name=GROUP)]
    first = json.dumps(cw.cw_agent_config(reordered, logs=logs, region="eu-west-1"))
    second = json.dumps(default_config(region="eu-west-1"))
    assert first == second  # same text without sort_keys: same key order
    assert list(json.loads(first)["metrics"]["metrics_collected"]) == ["cpu", "disk", "diskio", "mem", "net", "swap"]
    assert list(json.loads(first)["metrics"]["metrics_collected"]["cpu"]) == ["measurement", "resources", "totalcpu"]


def test_dimension_maps_are_sorted():
    dims = {"zone": "b", "rack": "r7", "site": "dc1"}
    ec2 = {"InstanceType": "${aws:InstanceType}", "ImageId": "${aws:ImageId}"}
    out = build({"mem": {"measurement": ["mem_used_percent"], "append_dimensions": dims}}, append_dimensions=ec2)
    assert list(out["metrics"]["metrics_collected"]["mem"]["append_dimensions"]) == ["rack", "site", "zone"]
    assert list(out["metrics"]["append_dimensions"]) == ["ImageId", "InstanceType"]


def test_input_is_not_modified_or_aliased():
    metrics = copy.deepcopy(cw.DEFAULT_METRICS)
    logs = [{"file_path": "/var/log/syslog", "log_group_name": GROUP}]
    before = copy.deepcopy((metrics, logs))
    out = cw.cw_agent_config(metrics, logs=logs)
    assert (metrics, logs) == before  # log_stream_name default was not written into the caller's dict
    out["metrics"]["metrics_collected"]["cpu"]["measurement"].append("cpu_usage_user")
    out["metrics"]["metrics_collected"]["cpu"]["resources"].append("0")
    out["logs"]["logs_collected"]["files"]["collect_list"][0]["log_group_name"] = "/changed"
    assert (metrics, logs) == before


# --- errors: name the variable and what is allowed -------------------------------------------------------------

MEM = {"measurement": ["mem_used_percent"]}
LOG = {"file_path": "/var/log/syslog", "log_group_name": GROUP}
ERROR_CASES = [
    # metrics
    ({"metrics": ["cpu"]}, "cloudwatch_agent_metrics must be a dict"),
    ({"metrics": {"gpu": MEM}}, r"cloudwatch_agent_metrics\.gpu is not a plugin.*allowed: cpu, disk, diskio, mem, net"),
    ({"metrics": {"cpu": True}}, r"cloudwatch_agent_metrics\.cpu must be a dict of options.*null/false"),
    (
        {"metrics": {"mem": {"measurement": ["x"], "totalcpu": True}}},
        r"cloudwatch_agent_metrics\.mem\.totalcpu is not a known key; allowed: measurement, interval, append_dim",
    ),
    (
        {"metrics": {"cpu": {"measurement": ["x"], "metrics_collection_interval": 5}}},
        r"cloudwatch_agent_metrics\.cpu\.metrics_collection_interval is not a known key; allowed: .*interval",
    ),
    ({"metrics": {"mem": {"interval": 60}}}, r"cloudwatch_agent_metrics\.mem\.measurement is required"),
    ({"metrics": {"mem": {"measurement": []}}}, r"cloudwatch_agent_metrics\.mem\.measurement must be a non-empty list"),
    ({"metrics": {"mem": {"measurement": "mem_used"}}}, r"mem\.measurement must be a non-empty list of metric names"),
    (
        {"metrics": {"mem": {"measurement": [""]}}},
        r"cloudwatch_agent_metrics\.mem\.measurement\[0\] must be a non-empty",
    ),
    ({"metrics": {"mem": {"measurement": ["a", 7]}}}, r"mem\.measurement\[1\] must be a metric name or a \{name, rena"),
    ({"metrics": {"mem": {"measurement": [{"rename": "X"}]}}}, r"mem\.measurement\[0\]\.name is required"),
    (
        {"metrics": {"mem": {"measurement": [{"name": "a", "units": "Percent"}]}}},
        r"mem\.measurement\[0\]\.units is not a known key; allowed: name, rename, unit",
    ),
    ({"metrics": {"mem": {"measurement": ["a", {"name": "a"}]}}}, r"mem\.measurement\[1\] repeats an earlier item"),
    ({"metrics": {"mem": {"measurement": ["a"], "interval": 0}}}, r"mem\.interval must be an integer from 1 to 172800"),
    ({"metrics": {"mem": {"measurement": ["a"], "interval": "1m"}}}, r"mem\.interval must be an integer from 1 to"),
    ({"metrics": {"mem": {"measurement": ["a"], "interval": True}}}, r"mem\.interval must be an integer"),
    ({"metrics": {"cpu": {"measurement": ["a"], "totalcpu": "maybe"}}}, r"cpu\.totalcpu must be true or false"),
    ({"metrics": {"disk": {"measurement": ["a"], "drop_device": 2}}}, r"disk\.drop_device must be true or false"),
    ({"metrics": {"cpu": {"measurement": ["a"], "resources": ["0"]}}}, r'cpu\.resources must be \["\*"\]'),
    ({"metrics": {"disk": {"measurement": ["a"], "resources": "/"}}}, r"disk\.resources must be a list of strings"),
    (
        {"metrics": {"disk": {"measurement": ["a"], "ignore_file_system_types": [""]}}},
        r"disk\.ignore_file_system_types\[0\] must be a non-empty string",
    ),
    (
        {"metrics": {"mem": {"measurement": ["a"], "append_dimensions": ["site"]}}},
        r"mem\.append_dimensions must be a dict of dimension name -> value",
    ),
    (
        {"metrics": {"mem": {"measurement": ["a"], "append_dimensions": {"site": 1}}}},
        r"mem\.append_dimensions\.site must be a non-empty string",
    ),
    (
        {"metrics": {"mem": {"measurement": ["a"], "append_dimensions": {f"d{i}": "x" for i in range(31)}}}},
        r"mem\.append_dimensions may have at most 30",
    ),
    # agent / metrics section
    ({"interval": 0}, r"cloudwatch_agent_metrics_interval must be an integer from 1 to 172800"),
    ({"interval": 172801}, r"cloudwatch_agent_metrics_interval must be an integer from 1 to 172800"),
    ({"run_as_user": ""}, r"cloudwatch_agent_run_as_user must be a non-empty string"),
    ({"run_as_user": "cw agent"}, r"cloudwatch_agent_run_as_user must be a user name"),
    ({"region": "Ireland"}, r"cloudwatch_agent_region must look like 'eu-west-1'"),
    ({"omit_hostname": "sometimes"}, r"cloudwatch_agent_omit_hostname must be true or false"),
    ({"namespace": ""}, r"cloudwatch_agent_namespace must be a non-empty string"),
    ({"namespace": "AWS/EC2"}, r"cloudwatch_agent_namespace must not start with 'AWS/'"),
    ({"credentials_profile": "my profile"}, r"cloudwatch_agent_credentials_profile must be a shared-credentials"),
    (
        {"append_dimensions": {"site": "dc1"}},
        r"cloudwatch_agent_append_dimensions\.site is not one the agent supports.*InstanceId: \$\{aws:InstanceId\}"
        r".*cloudwatch_agent_metrics\.<plugin>\.append_dimensions",
    ),
    ({"append_dimensions": {"InstanceId": "i-123"}}, r"cloudwatch_agent_append_dimensions\.InstanceId is not one"),
    ({"aggregation_dimensions": "InstanceId"}, r"cloudwatch_agent_aggregation_dimensions must be a list .* of lists"),
    (
        {"aggregation_dimensions": ["InstanceId"]},
        r"cloudwatch_agent_aggregation_dimensions\[0\] must be a list of strings",
    ),
    ({"aggregation_dimensions": [["a"], ["a"]]}, r"cloudwatch_agent_aggregation_dimensions\[1\] repeats"),
    ({"aggregation_dimensions": [["a", "a"]]}, r"cloudwatch_agent_aggregation_dimensions\[0\]\[1\] repeats"),
    (
        {"metrics": {}, "logs": [LOG], "append_dimensions": {"InstanceId": "${aws:InstanceId}"}},
        r"cloudwatch_agent_append_dimensions applies to the metrics section",
    ),
    ({"metrics": {}, "logs": [LOG], "aggregation_dimensions": [[]]}, r"aggregation_dimensions applies to the metrics"),
    ({"force_flush_interval": 5}, r"cloudwatch_agent_force_flush_interval applies to the logs section"),
    ({"logs": [LOG], "force_flush_interval": -5}, r"cloudwatch_agent_force_flush_interval must be an integer from 1"),
    # logs
    ({"logs": {"file_path": "/x"}}, r"cloudwatch_agent_logs must be a list of dicts with keys from file_path, log_g"),
    ({"logs": ["/var/log/syslog"]}, r"cloudwatch_agent_logs\[0\] must be a dict with keys from file_path"),
    ({"logs": [{"log_group_name": GROUP}]}, r"cloudwatch_agent_logs\[0\]\.file_path is required"),
    ({"logs": [{"file_path": "/var/log/syslog"}]}, r"cloudwatch_agent_logs\[0\]\.log_group_name is required"),
    (
        {"logs": [LOG, dict(LOG, path="/x")]},
        r"cloudwatch_agent_logs\[1\]\.path is not a known key; allowed: file_path, log_group_name, log_stream_name",
    ),
    ({"logs": [dict(LOG, file_path="var/log/x")]}, r"cloudwatch_agent_logs\[0\]\.file_path must be an absolute path"),
    ({"logs": [dict(LOG, log_group_name="")]}, r"cloudwatch_agent_logs\[0\]\.log_group_name must be a non-empty"),
    ({"logs": [dict(LOG, log_group_name="g" * 513)]}, r"logs\[0\]\.log_group_name must be at most 512 characters"),
    (
        {"logs": [dict(LOG, retention_in_days=4000)]},
        r"cloudwatch_agent_logs\[0\]\.retention_in_days must be an integer from -1 to 3653; got 4000",
    ),
    ({"logs": [dict(LOG, retention_in_days="30 days")]}, r"logs\[0\]\.retention_in_days must be an integer from -1"),
    ({"logs": [dict(LOG, timezone="CET")]}, r"cloudwatch_agent_logs\[0\]\.timezone must be one of Local, LOCAL, UTC"),
    ({"logs": [dict(LOG, log_group_class="cold")]}, r"logs\[0\]\.log_group_class must be one of STANDARD, INFREQUENT"),
    ({"logs": [dict(LOG, auto_removal="perhaps")]}, r"cloudwatch_agent_logs\[0\]\.auto_removal must be true or false"),
    ({"logs": [dict(LOG, encoding="")]}, r"cloudwatch_agent_logs\[0\]\.encoding must be a non-empty string"),
    (
        {"logs": [dict(LOG, multi_line_start_pattern=None, timestamp_format=5)]},
        r"cloudwatch_agent_logs\[0\]\.timestamp_format must be a non-empty string",
    ),
    ({"logs": [LOG, dict(LOG)]}, r"cloudwatch_agent_logs\[1\] repeats cloudwatch_agent_logs\[0\]"),
    (
        {"logs": [dict(LOG, retention_in_days=30), dict(LOG, file_path="/var/log/auth.log", retention_in_days=7)]},
        r"cloudwatch_agent_logs\[1\]\.retention_in_days is 7 but cloudwatch_agent_logs\[0\]\.retention_in_days sets "
        r"30 for the same log group",
    ),
    (
        {
            "logs": [dict(LOG, retention_in_days=30)],
            "journald": [{"log_group_name": GROUP.upper(), "retention_in_days": 1}],
        },
        r"cloudwatch_agent_journald\[0\]\.retention_in_days is 1 but cloudwatch_agent_logs\[0\]",
    ),
    (
        {
            "logs": [dict(LOG, log_group_class="STANDARD")],
            "journald": [{"log_group_name": GROUP, "log_group_class": "INFREQUENT_ACCESS"}],
        },
        r"cloudwatch_agent_journald\[0\]\.log_group_class is INFREQUENT_ACCESS but .*a log group has one log_group_cl",
    ),
    # journald
    ({"journald": {"log_group_name": "/j"}}, r"cloudwatch_agent_journald must be a list of dicts with keys from"),
    ({"journald": [{"units": ["sshd"]}]}, r"cloudwatch_agent_journald\[0\]\.log_group_name is required"),
    (
        {"journald": [{"log_group_name": "/j", "unit": "sshd"}]},
        r"cloudwatch_agent_journald\[0\]\.unit is not a known key; allowed: log_group_name, .*units, priority",
    ),
    ({"journald": [{"log_group_name": "/j", "units": "sshd"}]}, r"journald\[0\]\.units must be a list of strings"),
    ({"journald": [{"log_group_name": "/j", "units": []}]}, r"journald\[0\]\.units must have 1 to 16384 items"),
    ({"journald": [{"log_group_name": "/j", "units": ["a", "a"]}]}, r"journald\[0\]\.units\[1\] repeats"),
    (
        {"journald": [{"log_group_name": "/j", "priority": "error"}]},
        r"cloudwatch_agent_journald\[0\]\.priority must be one of emerg, alert, crit, err, warning",
    ),
    ({"journald": [{"log_group_name": "/j", "matches": []}]}, r"journald\[0\]\.matches must be a non-empty list"),
    (
        {"journald": [{"log_group_name": "/j", "matches": [{"_COMM": 5}]}]},
        r"cloudwatch_agent_journald\[0\]\.matches\[0\]\._COMM must be a string",
    ),
    (
        {"journald": [{"log_group_name": "/j", "filters": [{"type": "drop", "expression": "x"}]}]},
        r"cloudwatch_agent_journald\[0\]\.filters\[0\]\.type must be one of include, exclude",
    ),
    (
        {"journald": [{"log_group_name": "/j", "filters": [{"type": "include"}]}]},
        r"cloudwatch_agent_journald\[0\]\.filters\[0\]\.expression is required",
    ),
    (
        {"journald": [{"log_group_name": "/j", "retention_in_days": -2}]},
        r"cloudwatch_agent_journald\[0\]\.retention_in_days must be an integer from -1 to 3653",
    ),
    (
        {"journald": [{"log_group_name": "/j"}, {"log_group_name": "/j"}]},
        r"cloudwatch_agent_journald\[1\] repeats an earlier item",
    ),
]


@pytest.mark.parametrize("kwargs, message", ERROR_CASES, ids=[str(i) for i in range(len(ERROR_CASES))])
def test_bad_input_names_the_variable_and_what_is_allowed(kwargs, message):
    kwargs = dict(kwargs)
    metrics = kwargs.pop("metrics", {"mem": MEM})
    with pytest.raises(AnsibleFilterError, match=message):
        cw.cw_agent_config(metrics, **kwargs)


def test_long_bad_values_are_shortened_in_messages():
    with pytest.raises(AnsibleFilterError) as err:
        build(region="x" * 500)
    assert len(str(err.value)) < 200


# --- measurement names are the translator's business -----------------------------------------------------------


def test_unknown_measurement_name_passes_the_filter_on_purpose():
    """Documented behaviour, do not "fix": the filter does not check measurement names.

    The agent's config-translator on the host checks them against the installed agent's registered metrics
    ("measurement name cpu_usage_bogus is invalid") and the role validates the config with it; a list copied
    here would drift from the agent version actually installed. Only the shape is checked (non-empty strings).
    """
    out = build({"cpu": {"measurement": ["cpu_usage_bogus", {"name": "not_a_metric", "unit": "Count"}]}})
    assert out["metrics"]["metrics_collected"]["cpu"]["measurement"] == [
        "cpu_usage_bogus",
        {"name": "not_a_metric", "unit": "Count"},
    ]


# --- against the agent's real schema -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema():
    return json.loads(SCHEMA_PATH.read_text())


@pytest.fixture(scope="module")
def schema_errors(schema):
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft4Validator(schema)
    return lambda config: sorted(f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(config))


def _definition(schema, ref):
    node = schema
    for part in ref.lstrip("#/").split("/"):
        node = node[part]
    return node


def _properties(schema, node):
    """Property names a schema node allows, following $ref and allOf (how the plugin definitions are built)."""
    if "$ref" in node:
        return _properties(schema, _definition(schema, node["$ref"]))
    names = set(node.get("properties", {}))
    for part in node.get("allOf", []):
        names |= _properties(schema, part)
    return names


@needs_schema
def test_schema_check_is_not_vacuous(schema_errors):
    # The vendor's own invalid sample fails, and so does our default config with one schema violation.
    assert schema_errors(json.loads((VENDOR / "samples" / "invalidAgent.json").read_text()))
    broken = default_config()
    broken["logs"]["logs_collected"]["files"]["collect_list"][0]["retention_in_days"] = 2
    assert any("retention_in_days" in e or "enum" in e or "is not one of" in e for e in schema_errors(broken))


@needs_schema
def test_rendered_defaults_validate_against_the_agent_schema(schema, schema_errors):
    config = default_config(region="eu-west-1")
    assert schema_errors(config) == []
    assert cw_translator.validate(config, schema, "linux") == []  # the lab's translator stand-in agrees


@needs_schema
def test_config_with_every_option_validates_against_the_agent_schema(schema, schema_errors):
    config = full_config()
    assert set(config) == {"agent", "metrics", "logs"}
    assert set(config["metrics"]["metrics_collected"]) == set(cw.PLUGINS)
    assert set(config["logs"]["logs_collected"]) == {"files", "journald"}
    assert schema_errors(config) == []
    assert cw_translator.validate(config, schema, "linux") == []


@needs_schema
def test_constants_follow_the_schema(schema):
    logs = schema["definitions"]["logsDefinition"]["definitions"]
    assert list(cw.RETENTION_DAYS) == logs["retentionInDaysDefinition"]["enum"]
    files = logs["logsFilesDefinition"]["properties"]["collect_list"]["items"]["properties"]
    journald = logs["logsJournaldDefinition"]["properties"]["collect_list"]["items"]["properties"]
    assert set(cw.FILE_KEYS) <= set(files)
    assert set(cw.JOURNALD_KEYS) == set(journald)  # every journald key the agent has, no invented one
    assert list(cw.TIMEZONES) == files["timezone"]["enum"]
    assert list(cw.JOURNALD_PRIORITIES) == journald["priority"]["enum"]
    assert list(cw.FILTER_TYPES) == logs["filterDefinition"]["properties"]["type"]["enum"]
    interval = schema["definitions"]["timeIntervalDefinition"]
    assert (interval["minimum"], interval["maximum"]) == (1, cw.INTERVAL_MAX)


@needs_schema
@pytest.mark.parametrize("plugin", cw.PLUGINS)
def test_plugin_options_exist_in_the_schema(schema, plugin):
    collected = schema["definitions"]["metricsDefinition"]["properties"]["metrics_collected"]["properties"]
    assert plugin in collected
    allowed = _properties(schema, collected[plugin])
    assert {cw.OPTION_KEYS[option] for option in cw.PLUGIN_OPTIONS[plugin]} <= allowed
    measurement = _definition(schema, "#/definitions/metricsDefinition/definitions/metricsMeasurementDefinition")
    assert set(cw.MEASUREMENT_KEYS) == set(measurement["items"]["oneOf"][1]["properties"])


def test_retention_days_cloudwatch_does_not_offer_are_left_to_the_agents_translator():
    """Like measurement names: 42 days passes here and the translator on the host rejects it (the schema's enum)."""
    built = cw.cw_agent_config({}, logs=[dict(LOG, retention_in_days=42)])
    assert built["logs"]["logs_collected"]["files"]["collect_list"][0]["retention_in_days"] == 42
