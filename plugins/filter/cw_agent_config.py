# -*- coding: utf-8 -*-
# Copyright: hybrid-onboard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The CloudWatch agent's JSON config from the role's structured variables (``| cw_agent_config | to_nice_json``).

``cw_agent_config(metrics, logs=[], interval=60, run_as_user="root", region=None, namespace="CWAgent",
append_dimensions={}, aggregation_dimensions=[], journald=None, force_flush_interval=None, omit_hostname=False,
credentials_profile=None)`` returns a dict with (each only when there is something to put in it):

- ``agent``: ``metrics_collection_interval`` (= ``interval``), ``run_as_user``, ``region`` (when given),
  ``omit_hostname`` (only when true).
- ``metrics``: ``namespace``, ``append_dimensions``, ``aggregation_dimensions`` (when given), ``metrics_collected``:
  one entry per plugin of ``metrics`` (``{plugin: options}``; a plugin set to ``null``/``false`` is left out).
  Plugin options (see ``PLUGIN_OPTIONS``): ``measurement`` (required, names or ``{name, rename?, unit?}``),
  ``interval`` (-> ``metrics_collection_interval``), ``resources``, ``append_dimensions``; cpu: ``totalcpu``;
  disk: ``ignore_file_system_types``, ``drop_device``.
- ``logs``: ``logs_collected.files.collect_list`` from ``logs``, ``logs_collected.journald.collect_list`` from
  ``journald``, ``force_flush_interval`` (when given).

Every input is checked before anything is built; an error names the role variable (``cloudwatch_agent_metrics.cpu.
totalcpu``, ``cloudwatch_agent_logs[0].retention_in_days``) and says what is allowed. The checks follow the agent's
own JSON schema (vendored: ``shared/vendor/amazon-cloudwatch-agent/schema.json``; the tests hold these constants to
it) plus the config-translator rules the schema does not express (one retention / log group class per log group;
metrics-level ``append_dimensions`` only takes the four EC2 metadata pairs, anything else is dropped silently by the
translator). Integers may come as digit strings and booleans in Ansible's spellings (``-e`` passes strings).

Deliberately NOT checked: measurement names and the exact retention day counts (only an integer from -1 to 3653).
The agent's config-translator on the host checks them against its own lists ("measurement name X is invalid", the
schema's retention enum) for the installed agent version; a fixed list here would drift from it. The role runs the
translator (``validate:``) before the config is used, and a rejected config never replaces the running one.

``credentials_profile`` is checked but not written: the agent's JSON has no place for a shared-credentials profile
(``agent.credentials`` only takes ``role_arn``); it belongs in ``common-config.toml`` (``[credentials]
shared_credential_profile``), which the role writes.

Output is deterministic: plugins and keys in a fixed order, dimension maps sorted, lists kept in the given order.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean
# The one definition of a region code (the aws_region test plugin of this collection).
from ansible_collections.hybrid.onboard.plugins.test.aws_region import aws_region

VAR = "cloudwatch_agent_"  # the role's variable prefix, used to name what is wrong

# Shared with the role's defaults/main.yml (which copies them) and the tests.
DEFAULT_INTERVAL = 60
DEFAULT_RUN_AS_USER = "root"
DEFAULT_NAMESPACE = "CWAgent"
DEFAULT_LOG_STREAM_NAME = "{hostname}"
DEFAULT_METRICS = {
    "cpu": {"measurement": ["cpu_usage_idle"], "totalcpu": True, "resources": ["*"]},
    "disk": {"measurement": ["used_percent"], "resources": ["*"]},
    "diskio": {"measurement": ["reads", "writes", "read_bytes", "write_bytes"], "resources": ["*"]},
    "mem": {"measurement": ["mem_used_percent"]},
    "net": {"measurement": ["bytes_sent", "bytes_recv", "packets_sent", "packets_recv"], "resources": ["*"]},
    "swap": {"measurement": ["swap_used_percent"]},
}
# One log file; the role adds log_group_name.
DEFAULT_LOG = {"file_path": "/var/log/syslog", "log_stream_name": DEFAULT_LOG_STREAM_NAME, "retention_in_days": 30}

# Plugins in output order; each is a key of the schema's metrics.metrics_collected.
PLUGINS = ("cpu", "disk", "diskio", "mem", "net", "swap", "netstat", "processes")
_BASIC = ("measurement", "interval", "append_dimensions")
PLUGIN_OPTIONS = {
    "cpu": _BASIC + ("resources", "totalcpu"),
    "disk": _BASIC + ("resources", "ignore_file_system_types", "drop_device"),
    "diskio": _BASIC + ("resources",),
    "mem": _BASIC,
    "net": _BASIC + ("resources",),
    "swap": _BASIC,
    "netstat": _BASIC,
    "processes": _BASIC,
}
# Role option -> agent JSON key, in output order.
OPTION_KEYS = {
    "measurement": "measurement",
    "interval": "metrics_collection_interval",
    "resources": "resources",
    "totalcpu": "totalcpu",
    "ignore_file_system_types": "ignore_file_system_types",
    "drop_device": "drop_device",
    "append_dimensions": "append_dimensions",
}
MEASUREMENT_KEYS = ("name", "rename", "unit")

# From the schema (definitions.logsDefinition.definitions.retentionInDaysDefinition): -1 is the agent's default
# and sets no retention policy; the rest are the values CloudWatch Logs' PutRetentionPolicy accepts.
RETENTION_DAYS = (
    -1,
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
TIMEZONES = ("Local", "LOCAL", "UTC")
LOG_GROUP_CLASSES = ("STANDARD", "INFREQUENT_ACCESS")  # the translator's ValidLogGroupClasses
JOURNALD_PRIORITIES = (
    "emerg",
    "alert",
    "crit",
    "err",
    "warning",
    "notice",
    "info",
    "debug",
    "0",
    "1",
    "2",
    "3",
    "4",
    "5",
    "6",
    "7",
)
FILTER_TYPES = ("include", "exclude")
# Keys of one logs entry / one journald entry, in output order (subsets of the schema's collect_list properties;
# journald: all of them).
FILE_KEYS = (
    "file_path",
    "log_group_name",
    "log_stream_name",
    "log_group_class",
    "retention_in_days",
    "timestamp_format",
    "timezone",
    "multi_line_start_pattern",
    "encoding",
    "auto_removal",
)
JOURNALD_KEYS = (
    "log_group_name",
    "log_stream_name",
    "log_group_class",
    "retention_in_days",
    "units",
    "priority",
    "matches",
    "filters",
)
# Metrics-level append_dimensions: the translator's only rules (EC2 metadata; exact key/value pairs).
EC2_APPEND_DIMENSIONS = {
    "ImageId": "${aws:ImageId}",
    "InstanceId": "${aws:InstanceId}",
    "InstanceType": "${aws:InstanceType}",
    "AutoScalingGroupName": "${aws:AutoScalingGroupName}",
}

INTERVAL_MAX = 172800  # schema timeIntervalDefinition: 1..172800 s
_USER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?$")
_PROFILE_RE = re.compile(r"^[A-Za-z0-9_.@+-]{1,64}$")
_DIGITS_RE = re.compile(r"^-?\d+$")


def _fail(path, message):
    raise AnsibleFilterError(f"{path} {message}")


def _show(value):
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _str(path, value, max_len=4096, allowed=None):
    if allowed is not None:
        if value not in allowed:
            _fail(path, f"must be one of {', '.join(allowed)}; got {_show(value)}")
        return value
    if not isinstance(value, str) or not value.strip():
        _fail(path, f"must be a non-empty string; got {_show(value)}")
    if len(value) > max_len:
        _fail(path, f"must be at most {max_len} characters; got {len(value)}")
    return value


def _int(path, value, minimum=1, maximum=INTERVAL_MAX, allowed=None):
    if isinstance(value, str) and _DIGITS_RE.match(value.strip()):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        what = f"one of {', '.join(map(str, allowed))}" if allowed else f"an integer from {minimum} to {maximum}"
        _fail(path, f"must be {what}; got {_show(value)}")
    if allowed is not None:
        if value not in allowed:
            _fail(path, f"must be one of {', '.join(map(str, allowed))}; got {value}")
    elif not minimum <= value <= maximum:
        _fail(path, f"must be an integer from {minimum} to {maximum}; got {value}")
    return value


def _bool(path, value):
    try:
        return boolean(value, strict=True)
    except TypeError:
        _fail(path, f"must be true or false; got {_show(value)}")


def _str_list(path, value, max_len=4096, max_items=256, min_items=0, unique=False):
    if not isinstance(value, (list, tuple)):
        _fail(path, f"must be a list of strings; got {_show(value)}")
    if not min_items <= len(value) <= max_items:
        _fail(path, f"must have {min_items} to {max_items} items; got {len(value)}")
    items = [_str(f"{path}[{i}]", item, max_len) for i, item in enumerate(value)]
    if unique:
        _no_duplicates(path, items)
    return items


def _no_duplicates(path, items, key=lambda item: item):
    seen = []
    for index, item in enumerate(items):
        if key(item) in seen:
            _fail(f"{path}[{index}]", f"repeats an earlier item ({_show(key(item))}); list each once")
        seen.append(key(item))


def _dimensions(path, value):
    if not isinstance(value, dict):
        _fail(path, f"must be a dict of dimension name -> value (strings); got {_show(value)}")
    if len(value) > 30:
        _fail(path, f"may have at most 30 dimensions; got {len(value)}")
    for name, dim in value.items():
        _str(f"{path} key", name, 255)
        _str(f"{path}.{name}", dim, 1024)
    return {name: value[name] for name in sorted(value)}


def _keys(path, entry, allowed, required=()):
    if not isinstance(entry, dict):
        _fail(path, f"must be a dict with keys from {', '.join(allowed)}; got {_show(entry)}")
    for key in entry:
        if key not in allowed:
            _fail(f"{path}.{key}", f"is not a known key; allowed: {', '.join(allowed)}")
    for key in required:
        if entry.get(key) is None:
            _fail(f"{path}.{key}", "is required")


# --- metrics -----------------------------------------------------------------------------------------------


def _measurement(path, value):
    if not isinstance(value, (list, tuple)) or not value:
        _fail(path, "must be a non-empty list of metric names (or {name, rename, unit} dicts)")
    items = []
    for index, item in enumerate(value):
        where = f"{path}[{index}]"
        if isinstance(item, dict):
            _keys(where, item, MEASUREMENT_KEYS, required=("name",))
            items.append(
                {k: _str(f"{where}.{k}", item[k], 256 if k == "unit" else 255) for k in MEASUREMENT_KEYS if k in item}
            )
        elif isinstance(item, str):
            items.append(_str(where, item, 255))
        else:
            _fail(where, f"must be a metric name or a {{name, rename, unit}} dict; got {_show(item)}")
    _no_duplicates(path, items, key=lambda item: item["name"] if isinstance(item, dict) else item)
    return items


def _plugin(path, plugin, options):
    _keys(path, options, PLUGIN_OPTIONS[plugin], required=("measurement",))
    out = {}
    for option, json_key in OPTION_KEYS.items():
        if option not in options or (option != "measurement" and options[option] is None):
            continue
        value, where = options[option], f"{path}.{option}"
        if option == "measurement":
            out[json_key] = _measurement(where, value)
        elif option == "interval":
            out[json_key] = _int(where, value)
        elif option in ("totalcpu", "drop_device"):
            out[json_key] = _bool(where, value)
        elif option == "append_dimensions":
            out[json_key] = _dimensions(where, value)
        elif option == "resources" and plugin == "cpu":
            # The agent collects per-core cpu for "*" only (schema: enum ["*"], at most one item).
            if not isinstance(value, (list, tuple)) or list(value) not in ([], ["*"]):
                _fail(where, f'must be ["*"] (per-core metrics) or left out; got {_show(value)}')
            out[json_key] = list(value)
        else:  # resources, ignore_file_system_types
            out[json_key] = _str_list(where, value)
    return out


def _metrics_collected(metrics):
    path = VAR + "metrics"
    if metrics is None:
        return {}
    if not isinstance(metrics, dict):
        _fail(path, f"must be a dict of plugin name -> options; got {_show(metrics)}")
    for plugin in metrics:
        if plugin not in PLUGINS:
            _fail(f"{path}.{plugin}", f"is not a plugin this role configures; allowed: {', '.join(PLUGINS)}")
    collected = {}
    for plugin in PLUGINS:
        options = metrics.get(plugin)
        if options is None or options is False:
            continue
        if not isinstance(options, dict):
            _fail(
                f"{path}.{plugin}",
                f"must be a dict of options (measurement required), or null/false to leave "
                f"the plugin out; got {_show(options)}",
            )
        collected[plugin] = _plugin(f"{path}.{plugin}", plugin, options)
    return collected


def _metrics_append_dimensions(value):
    path = VAR + "append_dimensions"
    if not value:
        return {}
    dims = _dimensions(path, value)
    allowed = ", ".join(f"{k}: {v}" for k, v in EC2_APPEND_DIMENSIONS.items())
    for name, dim in dims.items():
        if EC2_APPEND_DIMENSIONS.get(name) != dim:
            _fail(
                f"{path}.{name}",
                f"is not one the agent supports here (it drops anything else silently); allowed "
                f"pairs (EC2 instance metadata): {allowed}. For your own dimensions use "
                f"{VAR}metrics.<plugin>.append_dimensions",
            )
    return dims


def _aggregation_dimensions(value):
    path = VAR + "aggregation_dimensions"
    if not value:
        return []
    if not isinstance(value, (list, tuple)) or len(value) > 1024:
        _fail(path, "must be a list (at most 1024) of lists of dimension names, e.g. [[InstanceId], []]")
    out = [_str_list(f"{path}[{i}]", dims, 1024, max_items=30, unique=True) for i, dims in enumerate(value)]
    _no_duplicates(path, out)
    return out


# --- logs --------------------------------------------------------------------------------------------------


def _filters(path, value):
    if not isinstance(value, (list, tuple)):
        _fail(path, "must be a list of {type: include|exclude, expression: <regex>} dicts")
    out = []
    for index, item in enumerate(value):
        where = f"{path}[{index}]"
        _keys(where, item, ("type", "expression"), required=("type", "expression"))
        out.append(
            {
                "type": _str(f"{where}.type", item["type"], allowed=FILTER_TYPES),
                "expression": _str(f"{where}.expression", item["expression"]),
            }
        )
    return out


def _matches(path, value):
    if not isinstance(value, (list, tuple)) or not value:
        _fail(path, "must be a non-empty list of {journal field: value} dicts, e.g. [{_SYSTEMD_UNIT: sshd.service}]")
    out = []
    for index, item in enumerate(value):
        where = f"{path}[{index}]"
        if not isinstance(item, dict) or not item:
            _fail(where, f"must be a non-empty dict of journal field -> value; got {_show(item)}")
        for field, match in item.items():
            _str(f"{where} key", field, 255)
            if not isinstance(match, str):
                _fail(f"{where}.{field}", f"must be a string; got {_show(match)}")
        out.append({field: item[field] for field in sorted(item)})
    _no_duplicates(path, out)
    return out


def _log_value(where, key, value):
    if key == "file_path":
        _str(where, value)
        if not value.startswith("/"):
            _fail(where, f"must be an absolute path (globs allowed, e.g. /var/log/app/*.log); got {_show(value)}")
        return value
    if key in ("log_group_name", "log_stream_name"):
        return _str(where, value, 512)
    if key == "log_group_class":
        return _str(where, value, allowed=LOG_GROUP_CLASSES)
    if key == "retention_in_days":
        # Only the type and range here: which day counts CloudWatch Logs offers is the agent's translator's call
        # on the host (the role's validate:), like measurement names (see the module docstring).
        return _int(where, value, minimum=-1, maximum=RETENTION_DAYS[-1])
    if key == "timezone":
        return _str(where, value, allowed=TIMEZONES)
    if key == "auto_removal":
        return _bool(where, value)
    if key == "units":
        return _str_list(where, value, 256, max_items=16384, min_items=1, unique=True)
    if key == "priority":
        return _str(
            where,
            str(value) if isinstance(value, int) and not isinstance(value, bool) else value,
            allowed=JOURNALD_PRIORITIES,
        )
    if key == "matches":
        return _matches(where, value)
    if key == "filters":
        return _filters(where, value)
    return _str(where, value)  # timestamp_format, multi_line_start_pattern, encoding


def _collect_list(name, entries, keys, required):
    path = VAR + name
    if entries is None:
        return []
    if not isinstance(entries, (list, tuple)):
        _fail(path, f"must be a list of dicts with keys from {', '.join(keys)}; got {_show(entries)}")
    out = []
    for index, entry in enumerate(entries):
        where = f"{path}[{index}]"
        _keys(where, entry, keys, required)
        item = {}
        for key in keys:
            value = entry.get(key)
            if value is None and key == "log_stream_name":
                value = DEFAULT_LOG_STREAM_NAME
            if value is not None:
                item[key] = _log_value(f"{where}.{key}", key, value)
        out.append(item)
    return out


def _check_log_groups(sections):
    """The translator allows one retention_in_days and one log_group_class per log group (case-insensitive)."""
    for key in ("retention_in_days", "log_group_class"):
        seen = {}
        for name, entries in sections:
            for index, entry in enumerate(entries):
                value = entry.get(key)
                if value is None or (key == "retention_in_days" and value < 1):
                    continue
                group = entry["log_group_name"].lower()
                where = f"{VAR}{name}[{index}].{key}"
                if group in seen and seen[group][1] != value:
                    _fail(
                        where,
                        f"is {value} but {seen[group][0]} sets {seen[group][1]} for the same log group "
                        f"{entry['log_group_name']!r}; a log group has one {key}",
                    )
                seen.setdefault(group, (where, value))


def _check_duplicate_files(files):
    seen = {}
    for index, entry in enumerate(files):
        ident = (entry["file_path"], entry["log_group_name"].lower(), entry["log_stream_name"])
        if ident in seen:
            _fail(
                f"{VAR}logs[{index}]",
                f"repeats {VAR}logs[{seen[ident]}] (same file_path, log_group_name and "
                f"log_stream_name); list each file once per stream",
            )
        seen[ident] = index


# --- the filter ----------------------------------------------------------------------------------------------


def cw_agent_config(
    metrics,
    logs=None,
    interval=DEFAULT_INTERVAL,
    run_as_user=DEFAULT_RUN_AS_USER,
    region=None,
    namespace=DEFAULT_NAMESPACE,
    append_dimensions=None,
    aggregation_dimensions=None,
    journald=None,
    force_flush_interval=None,
    omit_hostname=False,
    credentials_profile=None,
):
    """The agent's JSON config (a dict) for the role's variables; see the module docstring."""
    agent = {"metrics_collection_interval": _int(VAR + "metrics_interval", interval)}
    user = _str(VAR + "run_as_user", run_as_user, 33)
    if not _USER_RE.match(user):
        _fail(
            VAR + "run_as_user",
            f"must be a user name (letters, digits, _ . -; e.g. root or cwagent); got {_show(user)}",
        )
    agent["run_as_user"] = user
    if region is not None:
        if not aws_region(region):
            _fail(VAR + "region", f"must look like 'eu-west-1' (or be left unset); got {_show(region)}")
        agent["region"] = region
    if omit_hostname is not None and _bool(VAR + "omit_hostname", omit_hostname):
        agent["omit_hostname"] = True
    if credentials_profile is not None and (
        not isinstance(credentials_profile, str) or not _PROFILE_RE.match(credentials_profile)
    ):
        _fail(
            VAR + "credentials_profile",
            f"must be a shared-credentials profile name (letters, digits, _ . @ + -); got {_show(credentials_profile)}",
        )

    collected = _metrics_collected(metrics)
    ns = _str(VAR + "namespace", namespace, 255)
    if ns.startswith(("AWS/", ":")):
        _fail(VAR + "namespace", f"must not start with 'AWS/' (reserved) or ':'; got {_show(ns)}")
    ec2_dims = _metrics_append_dimensions(append_dimensions)
    aggregation = _aggregation_dimensions(aggregation_dimensions)

    files = _collect_list("logs", logs, FILE_KEYS, ("file_path", "log_group_name"))
    journal = _collect_list("journald", journald, JOURNALD_KEYS, ("log_group_name",))
    _check_duplicate_files(files)
    _no_duplicates(VAR + "journald", journal)
    _check_log_groups((("logs", files), ("journald", journal)))
    flush = None if force_flush_interval is None else _int(VAR + "force_flush_interval", force_flush_interval)

    if not collected and not files and not journal:
        _fail(
            VAR + "metrics",
            f"nothing to collect: {VAR}metrics has no plugin and {VAR}logs and {VAR}journald "
            f"are empty; set at least one",
        )
    for name, given in (("append_dimensions", ec2_dims), ("aggregation_dimensions", aggregation)):
        if given and not collected:
            _fail(
                VAR + name,
                f"applies to the metrics section, but {VAR}metrics has no plugin; leave it unset or collect metrics",
            )
    if flush is not None and not files and not journal:
        _fail(
            VAR + "force_flush_interval",
            f"applies to the logs section, but {VAR}logs and {VAR}journald are empty; leave it unset or collect logs",
        )

    config = {"agent": agent}
    if collected:
        section = {"namespace": ns}
        if ec2_dims:
            section["append_dimensions"] = ec2_dims
        if aggregation:
            section["aggregation_dimensions"] = aggregation
        section["metrics_collected"] = collected
        config["metrics"] = section
    if files or journal:
        logs_collected = {}
        if files:
            logs_collected["files"] = {"collect_list": files}
        if journal:
            logs_collected["journald"] = {"collect_list": journal}
        config["logs"] = {"logs_collected": logs_collected}
        if flush is not None:
            config["logs"]["force_flush_interval"] = flush
    return config


class FilterModule(object):
    """CloudWatch agent config filter."""

    def filters(self):
        return {"cw_agent_config": cw_agent_config}
