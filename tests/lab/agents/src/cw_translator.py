"""Lab stand-in for the CloudWatch agent's ``config-translator``: validates agent config JSON.

The real translator validates against the agent's JSON schema (draft-04, shipped in the package as
``doc/amazon-cloudwatch-agent-schema.json``) and prints ``Under path : /a/b | Error : …`` lines.
This module implements, with the stdlib only, the part of JSON Schema that schema uses: type,
properties, patternProperties, additionalProperties, required, enum, pattern, minimum/maximum
(+ draft-04 boolean exclusives), min/maxLength, min/maxItems, uniqueItems, items, min/maxProperties,
oneOf/anyOf/allOf/not, $ref into (nested) definitions.

When the package was built without the vendored schema, ``structural_checks`` stands in: a much
smaller hand-written check of the sections the lab's agent runs (and it says so on stderr).

Platform rule (a lab decision, documented in tests/lab/agents/README.md): with ``--os linux`` (the
default) Windows-only sections — ``logs.logs_collected.windows_events`` and Windows performance
counter objects in ``metrics.metrics_collected`` (keys the schema does not name) — are rejected.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys

SCHEMA_PATHS = ("/opt/aws/amazon-cloudwatch-agent/doc/amazon-cloudwatch-agent-schema.json",)

_TYPE_NAMES = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


def _type_of(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    for name, py in _TYPE_NAMES.items():
        if isinstance(value, py):
            return name
    return type(value).__name__


def _is_type(value, expected: str) -> bool:
    actual = _type_of(value)
    if expected == "number":
        return actual in ("integer", "number")
    return actual == expected


def _fmt_path(path: tuple) -> str:
    return "/" + "/".join(str(p) for p in path) if path else "/"


class Validator:
    """A draft-04 subset validator; ``errors(instance)`` returns (path, message) pairs."""

    def __init__(self, schema: dict):
        self.schema = schema

    def resolve(self, ref: str) -> dict:
        if not ref.startswith("#"):
            raise ValueError(f"only local $ref is supported, got {ref!r}")
        node = self.schema
        for part in ref.lstrip("#").strip("/").split("/"):
            if not part:
                continue
            part = part.replace("~1", "/").replace("~0", "~")
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node

    def errors(self, instance, schema: dict | None = None, path: tuple = ()) -> list[tuple[str, str]]:
        schema = self.schema if schema is None else schema
        out: list[tuple[str, str]] = []
        if not isinstance(schema, dict):
            return out
        if "$ref" in schema:
            # draft-04: $ref replaces every sibling keyword.
            return self.errors(instance, self.resolve(schema["$ref"]), path)
        where = _fmt_path(path)

        if "type" in schema:
            types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
            if not any(_is_type(instance, t) for t in types):
                out.append(
                    (where, f"Invalid type. Expected: {', '.join(types)}, given: {_type_of(instance)}")
                )
                return out
        # json's True == 1, so an enum match also compares the JSON types
        if "enum" in schema and not any(
            instance == e and _type_of(instance) == _type_of(e) for e in schema["enum"]
        ):
            allowed = ", ".join(json.dumps(e) for e in schema["enum"])
            field = str(path[-1]) if path else "(root)"
            out.append((where, f"{field} must be one of the following: {allowed}"))

        if isinstance(instance, str):
            if "minLength" in schema and len(instance) < schema["minLength"]:
                out.append((where, f"String length must be greater than or equal to {schema['minLength']}"))
            if "maxLength" in schema and len(instance) > schema["maxLength"]:
                out.append((where, f"String length must be less than or equal to {schema['maxLength']}"))
            if "pattern" in schema and not re.search(schema["pattern"], instance):
                out.append((where, f"Does not match pattern '{schema['pattern']}'"))

        if _type_of(instance) in ("integer", "number"):
            if "minimum" in schema:
                low = schema["minimum"]
                if instance < low or (schema.get("exclusiveMinimum") is True and instance == low):
                    op = (
                        "greater than"
                        if schema.get("exclusiveMinimum") is True
                        else "greater than or equal to"
                    )
                    out.append((where, f"Must be {op} {low}"))
            if "maximum" in schema:
                high = schema["maximum"]
                if instance > high or (schema.get("exclusiveMaximum") is True and instance == high):
                    op = "less than" if schema.get("exclusiveMaximum") is True else "less than or equal to"
                    out.append((where, f"Must be {op} {high}"))
            if "multipleOf" in schema:
                ratio = instance / schema["multipleOf"]
                if not math.isclose(ratio, round(ratio)):
                    out.append((where, f"Must be a multiple of {schema['multipleOf']}"))

        if isinstance(instance, list):
            if "minItems" in schema and len(instance) < schema["minItems"]:
                out.append((where, f"Array must have at least {schema['minItems']} items"))
            if "maxItems" in schema and len(instance) > schema["maxItems"]:
                out.append((where, f"Array must have at most {schema['maxItems']} items"))
            if schema.get("uniqueItems"):
                seen: list[str] = []
                for index, item in enumerate(instance):
                    key = json.dumps(item, sort_keys=True)
                    if key in seen:
                        out.append((where, f"array items[{seen.index(key)},{index}] must be unique"))
                        break
                    seen.append(key)
            items = schema.get("items")
            if isinstance(items, dict):
                for index, item in enumerate(instance):
                    out += self.errors(item, items, (*path, index))
            elif isinstance(items, list):
                for index, (item, sub) in enumerate(zip(instance, items, strict=False)):
                    out += self.errors(item, sub, (*path, index))
                extra = schema.get("additionalItems", True)
                if extra is False and len(instance) > len(items):
                    out.append((where, f"Array must have at most {len(items)} items"))

        if isinstance(instance, dict):
            if "minProperties" in schema and len(instance) < schema["minProperties"]:
                out.append((where, f"Must have at least {schema['minProperties']} properties"))
            if "maxProperties" in schema and len(instance) > schema["maxProperties"]:
                out.append((where, f"Must have at most {schema['maxProperties']} properties"))
            for name in schema.get("required", []):
                if name not in instance:
                    out.append((where, f"{name} is required"))
            props = schema.get("properties", {})
            patterns = schema.get("patternProperties", {})
            additional = schema.get("additionalProperties", True)
            for key, value in instance.items():
                matched = False
                if key in props:
                    matched = True
                    out += self.errors(value, props[key], (*path, key))
                for pattern, sub in patterns.items():
                    if re.search(pattern, key):
                        matched = True
                        out += self.errors(value, sub, (*path, key))
                if not matched:
                    if additional is False:
                        out.append((where, f"Additional property {key} is not allowed"))
                    elif isinstance(additional, dict):
                        out += self.errors(value, additional, (*path, key))

        if "allOf" in schema:
            for sub in schema["allOf"]:
                out += self.errors(instance, sub, path)
        if "anyOf" in schema:
            branches = [self.errors(instance, sub, path) for sub in schema["anyOf"]]
            if all(branches):
                out.append((where, "Must validate at least one schema (anyOf)"))
                out += min(branches, key=len)
        if "oneOf" in schema:
            branches = [self.errors(instance, sub, path) for sub in schema["oneOf"]]
            passing = sum(1 for b in branches if not b)
            if passing == 0:
                out.append((where, "Must validate one and only one schema (oneOf)"))
                out += min(branches, key=len)
            elif passing > 1:
                out.append((where, "Must validate one and only one schema (oneOf)"))
        if "not" in schema and not self.errors(instance, schema["not"], path):
            out.append((where, "Must not validate the schema (not)"))
        if "dependencies" in schema and isinstance(instance, dict):
            for key, dep in schema["dependencies"].items():
                if key not in instance:
                    continue
                if isinstance(dep, list):
                    out += [(where, f"Has a dependency on {d}") for d in dep if d not in instance]
                else:
                    out += self.errors(instance, dep, path)
        return out


def platform_errors(config: dict, schema: dict | None, os_name: str) -> list[tuple[str, str]]:
    """Sections that cannot run on `os_name` (see the module docstring for the rule)."""
    if os_name != "linux" or not isinstance(config, dict):
        return []
    out = []
    logs_collected = (config.get("logs") or {}).get("logs_collected") or {}
    if isinstance(logs_collected, dict) and "windows_events" in logs_collected:
        out.append(("/logs/logs_collected/windows_events", "windows_events is only supported on Windows"))
    collected = (config.get("metrics") or {}).get("metrics_collected") or {}
    known = set()
    if schema:
        try:
            known = set(
                schema["definitions"]["metricsDefinition"]["properties"]["metrics_collected"]["properties"]
            )
        except (KeyError, TypeError):
            known = set()
    # nvidia_gpu is the Linux agent's alias of nvidia_smi (the vendor's own valid sample uses it).
    known |= set(LINUX_PLUGINS)
    if isinstance(collected, dict):
        for key in collected:
            if key not in known:
                out.append(
                    (
                        f"/metrics/metrics_collected/{key}",
                        f"{key} is a Windows performance counter object, not supported on Linux",
                    )
                )
    return out


LINUX_PLUGINS = (
    "cpu",
    "disk",
    "diskio",
    "mem",
    "net",
    "netstat",
    "processes",
    "procstat",
    "swap",
    "collectd",
    "statsd",
    "ethtool",
    "nvidia_smi",
    "nvidia_gpu",
    "jmx",
    "otlp",
    "prometheus",
    "efa",
)


# The measurements the real Linux agent accepts per plugin (its translator rejects any other name, with or
# without the "<plugin>_" prefix).
_CPU = ("active", "guest", "guest_nice", "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user")
MEASUREMENTS = {
    "cpu": tuple(f"{kind}_{field}" for kind in ("time", "usage") for field in _CPU),
    "mem": ("active", "available", "available_percent", "buffered", "cached", "free", "inactive", "shared", "total",
            "used", "used_percent"),
    "swap": ("free", "used", "used_percent"),
    "disk": ("free", "inodes_free", "inodes_total", "inodes_used", "total", "used", "used_percent"),
    "diskio": ("iops_in_progress", "io_time", "read_bytes", "read_time", "reads", "write_bytes", "write_time",
               "writes"),
    "net": ("bytes_recv", "bytes_sent", "drop_in", "drop_out", "err_in", "err_out", "packets_recv", "packets_sent"),
    "netstat": ("tcp_close", "tcp_close_wait", "tcp_closing", "tcp_established", "tcp_fin_wait1", "tcp_fin_wait2",
                "tcp_last_ack", "tcp_listen", "tcp_none", "tcp_syn_recv", "tcp_syn_sent", "tcp_time_wait",
                "udp_socket"),
    "processes": ("blocked", "dead", "idle", "paging", "running", "sleeping", "stopped", "total", "total_threads",
                  "wait", "zombies"),
}


def measurement_errors(config) -> list[tuple[str, str]]:
    """Measurement names the agent does not collect for their plugin."""
    collected = ((config.get("metrics") or {}).get("metrics_collected") or {}) if isinstance(config, dict) else {}
    out = []
    if not isinstance(collected, dict):
        return out
    for plugin, spec in collected.items():
        allowed = MEASUREMENTS.get(plugin)
        if allowed is None or not isinstance(spec, dict) or not isinstance(spec.get("measurement"), list):
            continue
        for index, item in enumerate(spec["measurement"]):
            name = item.get("name") if isinstance(item, dict) else item
            if not isinstance(name, str):
                continue
            field = name[len(plugin) + 1:] if name.startswith(plugin + "_") else name
            if field not in allowed:
                out.append((f"/metrics/metrics_collected/{plugin}/measurement/{index}",
                            f"measurement name {name} is invalid for {plugin}; valid: {', '.join(allowed)}"))
    return out


def structural_checks(config) -> list[tuple[str, str]]:
    """Fallback when the package carries no schema: the shapes the lab's agent itself relies on."""
    out: list[tuple[str, str]] = []
    if not isinstance(config, dict):
        return [("/", f"Invalid type. Expected: object, given: {_type_of(config)}")]
    for section in ("agent", "metrics", "logs", "traces"):
        if section in config and not isinstance(config[section], dict):
            out.append((f"/{section}", f"Invalid type. Expected: object, given: {_type_of(config[section])}"))
    metrics = config.get("metrics")
    if isinstance(metrics, dict):
        collected = metrics.get("metrics_collected")
        if not isinstance(collected, dict) or not collected:
            out.append(("/metrics", "metrics_collected is required"))
        else:
            for name, plugin in collected.items():
                if name in ("cpu", "disk", "diskio", "mem", "net", "netstat", "swap", "processes"):
                    m = plugin.get("measurement") if isinstance(plugin, dict) else None
                    if not isinstance(m, list) or not m:
                        out.append((f"/metrics/metrics_collected/{name}", "measurement is required"))
    logs = config.get("logs")
    if isinstance(logs, dict):
        files = (logs.get("logs_collected") or {}).get("files")
        if files is not None:
            entries = files.get("collect_list") if isinstance(files, dict) else None
            if not isinstance(entries, list) or not entries:
                out.append(("/logs/logs_collected/files", "collect_list is required"))
            else:
                for index, entry in enumerate(entries):
                    if not isinstance(entry, dict) or not entry.get("file_path"):
                        out.append(
                            (f"/logs/logs_collected/files/collect_list/{index}", "file_path is required")
                        )
    return out


def load_schema(path: str | None = None) -> dict | None:
    """The packaged schema (or `path`), None when the package was built without it."""
    candidates = [path] if path else [_root(p) for p in SCHEMA_PATHS]
    for candidate in candidates:
        if candidate and os.path.exists(candidate):
            with open(candidate, encoding="utf-8") as fh:
                return json.load(fh)
    return None


def _root(path: str) -> str:
    root = os.environ.get("HYBRID_LAB_AGENT_ROOT", "")
    return os.path.join(root, path.lstrip("/")) if root and root != "/" else path


def validate(config, schema: dict | None, os_name: str = "linux") -> list[str]:
    """Every problem as ``Under path : … | Error : …`` (empty list = valid)."""
    problems = Validator(schema).errors(config) if schema is not None else structural_checks(config)
    problems += platform_errors(config, schema, os_name)
    problems += measurement_errors(config)
    seen, out = set(), []
    for where, message in problems:
        line = f"Under path : {where} | Error : {message}"
        if line not in seen:
            seen.add(line)
            out.append(line)
    return out


def translate_file(path: str, schema: dict | None, os_name: str = "linux") -> tuple[dict | None, list[str]]:
    """(parsed config, errors) for the config JSON at `path`."""
    try:
        with open(path, encoding="utf-8") as fh:
            config = json.load(fh)
    except OSError as exc:
        return None, [f"Failed to read the config file {path}: {exc}"]
    except ValueError as exc:
        return None, [f"Failed to parse the config file {path} as JSON: {exc}"]
    return config, validate(config, schema, os_name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="config-translator", description=__doc__.splitlines()[0])
    parser.add_argument("--input", "-input", required=True, help="agent config JSON to validate")
    parser.add_argument("--schema", "-schema", help="schema file (default: the packaged one)")
    parser.add_argument("--os", "-os", default="linux", choices=("linux", "windows", "darwin"))
    parser.add_argument("--mode", "-mode", default="onPremise", help="accepted for compatibility")
    parser.add_argument("--output", "-output", help="write the validated config here")
    args = parser.parse_args(argv)
    schema = load_schema(args.schema)
    if schema is None:
        print("W! No JSON schema packaged; falling back to the lab's structural checks", file=sys.stderr)
    config, problems = translate_file(args.input, schema, args.os)
    if problems:
        print("E! Invalid Json input schema.", file=sys.stderr)
        for line in problems:
            print(line, file=sys.stderr)
        print(
            "Configuration validation first phase failed. Agent version: lab. Verify the JSON input is "
            "only using features supported by this version.",
            file=sys.stderr,
        )
        return 1
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            json.dump(config, fh, indent=2, sort_keys=True)
    print("I! Valid Json input schema.")
    print("Configuration validation first phase succeeded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
