"""Lab stand-in for amazon-cloudwatch-agent: ``amazon-cloudwatch-agent-ctl`` and the agent itself.

A test double, never the product. What the product touches behaves like the real agent: the ctl
actions and flags (``-a fetch-config|append-config|start|stop|status -m onPremise|ec2 -c file:…|ssm:…
-s``), ``etc/amazon-cloudwatch-agent.d/`` + ``.toml``, ``common-config.toml`` credentials
(``[credentials] shared_credential_profile/shared_credential_file``, else profile
``AmazonCloudWatchAgent`` in /root/.aws/credentials with the region from /root/.aws/config), the status
JSON, and the data path: PutMetricData (query protocol, SigV4) to ``monitoring.<region>`` and
PutLogEvents (JSON ``Logs_20140328.*``) to ``logs.<region>``, over HTTPS via the host's DNS.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import glob
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib

import cw_metrics
import cw_translator
import labaws
from labaws import AwsError, Credentials, RequestError, root_path

DEFAULT_VERSION = "1.300057.1b1167"
BASE = "/opt/aws/amazon-cloudwatch-agent"
ETC = f"{BASE}/etc"
CONF_D = f"{ETC}/amazon-cloudwatch-agent.d"
TOML = f"{ETC}/amazon-cloudwatch-agent.toml"
COMMON_CONFIG = f"{ETC}/common-config.toml"
LOG_FILE = f"{BASE}/logs/amazon-cloudwatch-agent.log"
STATE_DIR = f"{BASE}/logs/state"
PID_FILE = f"{BASE}/var/amazon-cloudwatch-agent.pid"
SERVICE = "amazon-cloudwatch-agent"
DEFAULT_PROFILE = "AmazonCloudWatchAgent"
DEFAULT_CREDENTIALS = "/root/.aws/credentials"
DEFAULT_AWS_CONFIG = "/root/.aws/config"

log = logging.getLogger("amazon-cloudwatch-agent")


class AgentError(Exception):
    """A problem the ctl or the agent reports and stops on."""


def version() -> str:
    try:
        with open(
            os.path.join(os.path.dirname(os.path.abspath(__file__)), "VERSION"), encoding="utf-8"
        ) as fh:
            return fh.read().strip() or DEFAULT_VERSION
    except OSError:
        return DEFAULT_VERSION


# --- Credentials and region, as the real agent resolves them -------------------------------------


def load_common_config() -> dict:
    try:
        with open(root_path(COMMON_CONFIG), "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise AgentError(f"E! Failed to parse {COMMON_CONFIG}: {exc}") from exc


def normalize_mode(mode: str) -> str:
    mode = (mode or "ec2").strip()
    if mode in ("onPremise", "onPrem", "onprem", "onpremise"):
        return "onPremise"
    if mode == "auto":
        return "onPremise"  # auto = ec2 when IMDS answers; no lab host has IMDS
    if mode == "ec2":
        return "ec2"
    raise AgentError(f"E! Invalid mode {mode!r}: use ec2, onPremise or auto")


def credential_settings(mode: str) -> dict:
    """{profile, file} the agent will read: common-config first, then the on-prem default."""
    creds = load_common_config().get("credentials") or {}
    profile = creds.get("shared_credential_profile") or ""
    cred_file = creds.get("shared_credential_file") or ""
    if not profile and normalize_mode(mode) == "onPremise":
        profile = DEFAULT_PROFILE
    if not profile:
        raise AgentError(
            "E! ec2 mode without shared_credential_profile needs the EC2 instance role (IMDS), which an "
            "on-premises host does not have; use -m onPremise or set [credentials] in common-config.toml"
        )
    return {"profile": profile, "file": cred_file or DEFAULT_CREDENTIALS}


def detect_region(settings: dict, config: dict | None = None) -> str:
    """agent.region, else the profile's region in ~/.aws/config, else AWS_REGION; error otherwise."""
    region = ((config or {}).get("agent") or {}).get("region")
    if region:
        return region
    aws_config = root_path(DEFAULT_AWS_CONFIG)
    for profile in (settings["profile"],):
        values = labaws.read_profile(aws_config, profile) or {}
        if values.get("region"):
            return values["region"]
    env = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if env:
        return env
    raise AgentError(
        f"E! Unable to determine aws-region. Please make sure the credentials and region set correctly on "
        f"your hosts (no agent.region in the config and no region for profile {settings['profile']} in "
        f"{DEFAULT_AWS_CONFIG})."
    )


def load_credentials(settings: dict) -> Credentials:
    values = labaws.read_profile(root_path(settings["file"]), settings["profile"])
    if not values:
        raise AgentError(
            f"E! No credentials: profile [{settings['profile']}] not found in {settings['file']} "
            "(NoCredentialProviders: no valid providers in chain)"
        )
    key, secret = values.get("aws_access_key_id"), values.get("aws_secret_access_key")
    if not key or not secret:
        raise AgentError(
            f"E! No credentials: profile [{settings['profile']}] in {settings['file']} lacks "
            "aws_access_key_id/aws_secret_access_key"
        )
    return Credentials(key, secret, values.get("aws_session_token"))


def apply_common_network_settings() -> None:
    """[proxy] and [ssl] from common-config.toml; absent → the environment's, as the real agent."""
    common = load_common_config()
    for key, value in (common.get("proxy") or {}).items():
        if value:
            os.environ[key] = value
            os.environ[key.upper()] = value
    ca = (common.get("ssl") or {}).get("ca_bundle_path")
    if ca:
        os.environ["AWS_CA_BUNDLE"] = ca


# --- Configuration files ---------------------------------------------------------------------------


def merge_configs(configs: list[dict]) -> dict:
    """Merge amazon-cloudwatch-agent.d/* like append-config: dicts merge, collect_lists concatenate."""

    def merge(a, b):
        if isinstance(a, dict) and isinstance(b, dict):
            out = dict(a)
            for k, v in b.items():
                out[k] = merge(out[k], v) if k in out else v
            return out
        if isinstance(a, list) and isinstance(b, list):
            return a + [x for x in b if x not in a]
        return b

    merged: dict = {}
    for config in configs:
        merged = merge(merged, config)
    return merged


def read_config_dir() -> dict:
    files = sorted(glob.glob(os.path.join(root_path(CONF_D), "*")))
    configs = []
    for path in files:
        if path.endswith(".tmp"):
            continue
        with open(path, encoding="utf-8") as fh:
            configs.append(json.load(fh))
    return merge_configs(configs)


def read_toml() -> dict:
    try:
        with open(root_path(TOML), "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        return {}


def _toml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid TOML basic string


def write_toml(mode: str, settings: dict, region: str, config: dict) -> None:
    """The translated agent config (the fields the lab agent runs on; the real one is telegraf's)."""
    namespace = (config.get("metrics") or {}).get("namespace", "CWAgent")
    text = (
        "# Generated by the lab stand-in of config-translator from amazon-cloudwatch-agent.d; do not edit.\n"
        "[agent]\n"
        f"  mode = {_toml_str(mode)}\n"
        f"  region = {_toml_str(region)}\n"
        "\n[credentials]\n"
        f"  shared_credential_profile = {_toml_str(settings['profile'])}\n"
        f"  shared_credential_file = {_toml_str(settings['file'])}\n"
        "\n[outputs.cloudwatch]\n"
        f"  namespace = {_toml_str(namespace)}\n"
    )
    labaws.atomic_write(root_path(TOML), text.encode(), 0o644)


# --- ctl -----------------------------------------------------------------------------------------------


def _systemd() -> bool:
    return os.environ.get(labaws.ROOT_ENV, "/") in ("", "/") and os.path.isdir("/run/systemd/system")


def fetch_config(source: str, mode: str, append: bool, os_name: str = "linux") -> None:
    mode = normalize_mode(mode)
    settings = credential_settings(mode)
    if source.startswith("file:"):
        path = source[len("file:") :]
        name = "file_" + os.path.basename(path)
        try:
            local = root_path(path) if os.path.exists(root_path(path)) else path
            with open(local, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as exc:
            raise AgentError(f"E! Failed to read the config file {path}: {exc}") from exc
    elif source.startswith("ssm:"):
        param = source[len("ssm:") :]
        name = "ssm_" + re.sub(r"[^A-Za-z0-9_.-]", "_", param.lstrip("/"))
        region = detect_region(settings)
        apply_common_network_settings()
        try:
            response = labaws.json_call(
                labaws.service_url("ssm", region),
                "AmazonSSM.GetParameter",
                {"Name": param, "WithDecryption": True},
                region=region,
                service="ssm",
                creds=load_credentials(settings),
            )
        except (AwsError, RequestError) as exc:
            raise AgentError(f"E! Failed to download the parameter {param} from SSM: {exc}") from exc
        text = response["Parameter"]["Value"]
    elif source == "default":
        name, text = (
            "default",
            json.dumps(
                {
                    "metrics": {
                        "metrics_collected": {
                            "mem": {"measurement": ["mem_used_percent"]},
                            "disk": {"measurement": ["used_percent"], "resources": ["*"]},
                        }
                    }
                }
            ),
        )
    else:
        raise AgentError(
            f"E! Invalid config location {source!r}: use file:<path>, ssm:<parameter> or default"
        )
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise AgentError(f"E! Failed to parse the config from {source} as JSON: {exc}") from exc
    schema = cw_translator.load_schema()
    problems = cw_translator.validate(config, schema, os_name)
    if problems:
        raise AgentError(
            "\n".join(
                ["E! Invalid Json input schema.", *problems, "Configuration validation first phase failed."]
            )
        )
    conf_d = root_path(CONF_D)
    os.makedirs(conf_d, exist_ok=True)
    if not append:
        for old in glob.glob(os.path.join(conf_d, "*")):
            os.unlink(old)
    labaws.atomic_write(os.path.join(conf_d, name), json.dumps(config, indent=2).encode(), 0o644)
    merged = read_config_dir()
    region = detect_region(settings, merged)
    write_toml(mode, settings, region, merged)
    print(f"Successfully fetched the config and saved in {CONF_D}/{name}.tmp")
    print("Configuration validation first phase succeeded")
    print("Configuration validation second phase succeeded")
    print("Configuration validation succeeded")


def status() -> dict:
    pid, started = _running()
    return {
        "status": "running" if pid else "stopped",
        "starttime": started if pid else "",
        "configstatus": "configured" if os.path.exists(root_path(TOML)) else "not configured",
        "version": version(),
    }


def _running() -> tuple[int, str]:
    try:
        with open(root_path(PID_FILE), encoding="utf-8") as fh:
            data = json.load(fh)
        pid = int(data["pid"])
        os.kill(pid, 0)
        return pid, data.get("starttime", "")
    except (OSError, ValueError, KeyError):
        return 0, ""


def service(action: str) -> None:
    """start/stop through systemd like the real ctl; a detached process where there is no systemd."""
    if _systemd():
        if action == "start":
            subprocess.run(["systemctl", "enable", f"{SERVICE}.service"], check=False, capture_output=True)
            proc = subprocess.run(
                ["systemctl", "restart", f"{SERVICE}.service"], capture_output=True, check=False
            )
        else:
            proc = subprocess.run(
                ["systemctl", "stop", f"{SERVICE}.service"], capture_output=True, check=False
            )
        if proc.returncode != 0:
            raise AgentError(f"E! systemctl {action} {SERVICE} failed: {proc.stderr.decode().strip()}")
        return
    pid, _info = _running()
    if pid:
        os.kill(pid, signal.SIGTERM)
        for _wait in range(50):
            if not _running()[0]:
                break
            time.sleep(0.1)
    if action == "start":
        starter = os.path.join(os.path.dirname(os.path.abspath(sys.argv[0])), "start-amazon-cloudwatch-agent")
        cmd = [starter] if os.path.exists(starter) else [sys.executable, os.path.abspath(__file__), "--run"]
        subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def ctl_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="amazon-cloudwatch-agent-ctl", add_help=False)
    parser.add_argument("-a", dest="action", default="")
    parser.add_argument("-m", dest="mode", default="ec2")
    parser.add_argument("-c", dest="config", default="")
    parser.add_argument("-o", dest="otel", default="")
    parser.add_argument("-s", dest="restart", action="store_true")
    parser.add_argument("-h", dest="help", action="store_true")
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit:
        return 1
    usage = (
        "usage: amazon-cloudwatch-agent-ctl -a stop|start|status|fetch-config|append-config|"
        "remove-config [-m ec2|onPremise|onPrem|auto] [-c default|file:<path>|ssm:<name>] [-s]"
    )
    try:
        if args.help or not args.action:
            print(usage)
            return 0 if args.help else 1
        if args.action in ("fetch-config", "append-config"):
            if not args.config:
                raise AgentError("E! -c is required with -a " + args.action)
            fetch_config(args.config, args.mode, append=args.action == "append-config")
            if args.restart:
                service("start")
        elif args.action == "remove-config":
            for old in glob.glob(os.path.join(root_path(CONF_D), "*")):
                os.unlink(old)
            if os.path.exists(root_path(TOML)):
                os.unlink(root_path(TOML))
        elif args.action in ("start", "stop"):
            if args.action == "start" and not os.path.exists(root_path(TOML)):
                raise AgentError("E! amazon-cloudwatch-agent is not configured; run -a fetch-config first")
            service(args.action)
        elif args.action == "status":
            print(json.dumps(status(), indent=2))
        else:
            print(usage)
            return 1
    except AgentError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 0


# --- the agent -------------------------------------------------------------------------------------------

_CW_UNITS = {
    u.lower(): u
    for u in (
        "Seconds",
        "Microseconds",
        "Milliseconds",
        "Bytes",
        "Kilobytes",
        "Megabytes",
        "Gigabytes",
        "Terabytes",
        "Bits",
        "Kilobits",
        "Megabits",
        "Gigabits",
        "Terabits",
        "Percent",
        "Count",
        "Bytes/Second",
        "Kilobytes/Second",
        "Megabytes/Second",
        "Gigabytes/Second",
        "Terabytes/Second",
        "Bits/Second",
        "Kilobits/Second",
        "Megabits/Second",
        "Gigabits/Second",
        "Terabits/Second",
        "Count/Second",
        "None",
    )
}


def _interval(value, default: float) -> float:
    try:
        return float(value) if value else default
    except (TypeError, ValueError):
        return default


def measurements(plugin: str, spec: dict) -> list[tuple[str, str, str | None]]:
    """(field, metric name, unit override) for each configured measurement."""
    out = []
    for item in spec.get("measurement") or []:
        name, rename, unit = (
            (item, None, None)
            if isinstance(item, str)
            else (item.get("name", ""), item.get("rename"), item.get("unit"))
        )
        field = name[len(plugin) + 1 :] if name.startswith(plugin + "_") else name
        out.append((field, rename or f"{plugin}_{field}", _CW_UNITS.get(str(unit).lower()) if unit else None))
    return out


class MetricsPipeline:
    """Collects the configured plugins on their intervals and turns them into MetricDatum dicts."""

    SUPPORTED = ("cpu", "mem", "swap", "disk", "diskio", "net", "netstat", "processes")

    def __init__(self, config: dict, hostname: str):
        self.metrics = config.get("metrics") or {}
        agent = config.get("agent") or {}
        self.default_interval = _interval(agent.get("metrics_collection_interval"), 60.0)
        self.namespace = self.metrics.get("namespace") or "CWAgent"
        self.hostname = hostname
        self.cpu = cw_metrics.CpuCollector()
        self.plugins = {
            name: spec
            for name, spec in (self.metrics.get("metrics_collected") or {}).items()
            if name in self.SUPPORTED and isinstance(spec, dict)
        }
        for name in self.metrics.get("metrics_collected") or {}:
            if name not in self.SUPPORTED:
                log.warning("W! metrics plugin %s is not implemented by the lab agent; skipped", name)
        self.next_due = {name: 0.0 for name in self.plugins}
        if "cpu" in self.plugins:
            self.cpu.collect()  # prime: the first real sample is a delta over one interval

    def base_dimensions(self, spec: dict) -> dict[str, str]:
        dims = {"host": self.hostname} if not self.metrics.get("omit_hostname") else {}
        for source in (self.metrics.get("append_dimensions") or {}, spec.get("append_dimensions") or {}):
            for key, value in source.items():
                # ${aws:…} comes from EC2 metadata; an on-prem host has none, so the agent drops it.
                if isinstance(value, str) and not value.startswith("${aws:"):
                    dims[key] = value
        return dims

    def interval(self, spec: dict) -> float:
        return _interval(spec.get("metrics_collection_interval"), self.default_interval)

    def due(self, now: float) -> list[dict]:
        data: list[dict] = []
        for name, spec in self.plugins.items():
            if now < self.next_due[name]:
                continue
            self.next_due[name] = now + self.interval(spec)
            try:
                data += self.collect(name, spec)
            except OSError as exc:
                log.error("E! collecting %s failed: %s", name, exc)
        return data

    def collect(self, plugin: str, spec: dict) -> list[dict]:
        series: list[tuple[dict, dict]] = []
        resources = spec.get("resources")
        if plugin == "cpu":
            per_cpu = self.cpu.collect()
            for cpu_name, fields in per_cpu.items():
                if (
                    cpu_name == "cpu-total"
                    and spec.get("totalcpu", True)
                    or cpu_name != "cpu-total"
                    and resources
                    and "*" in resources
                ):
                    series.append(({"cpu": cpu_name}, fields))
        elif plugin == "mem":
            series.append(({}, cw_metrics.mem()))
        elif plugin == "swap":
            series.append(({}, cw_metrics.swap()))
        elif plugin == "disk":
            for dims, fields in cw_metrics.disk(resources, spec.get("ignore_file_system_types")):
                if spec.get("drop_device"):
                    dims.pop("device", None)
                series.append((dims, fields))
        elif plugin == "diskio":
            series += cw_metrics.diskio(resources)
        elif plugin == "net":
            series += cw_metrics.net(resources)
        elif plugin == "netstat":
            series.append(({}, cw_metrics.netstat()))
        elif plugin == "processes":
            series.append(({}, cw_metrics.processes()))
        base = self.base_dimensions(spec)
        high_res = self.interval(spec) < 60
        stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        out = []
        for field, metric_name, unit in measurements(plugin, spec):
            for dims, fields in series:
                if field not in fields:
                    continue
                all_dims = {**base, **dims}
                for dim_set in self.dimension_sets(all_dims):
                    datum = {
                        "MetricName": metric_name,
                        "Value": round(float(fields[field]), 6),
                        "Unit": unit or cw_metrics.unit_for(plugin, field),
                        "Timestamp": stamp,
                        "Dimensions": dim_set,
                    }
                    if high_res:
                        datum["StorageResolution"] = 1
                    if datum not in out:
                        out.append(datum)
        return out

    def dimension_sets(self, dims: dict[str, str]) -> list[dict[str, str]]:
        """The full dimension set plus each aggregation_dimensions roll-up the metric can satisfy."""
        sets = [dims]
        for names in self.metrics.get("aggregation_dimensions") or []:
            if all(n in dims for n in names):
                rollup = {n: dims[n] for n in names}
                if rollup not in sets:
                    sets.append(rollup)
        return sets


def put_metric_data_params(namespace: str, data: list[dict]) -> dict[str, str]:
    params = {"Action": "PutMetricData", "Version": "2010-08-01", "Namespace": namespace}
    for i, datum in enumerate(data, 1):
        prefix = f"MetricData.member.{i}"
        params[f"{prefix}.MetricName"] = datum["MetricName"]
        params[f"{prefix}.Value"] = repr(datum["Value"])
        params[f"{prefix}.Unit"] = datum["Unit"]
        params[f"{prefix}.Timestamp"] = datum["Timestamp"]
        if "StorageResolution" in datum:
            params[f"{prefix}.StorageResolution"] = str(datum["StorageResolution"])
        for j, (name, value) in enumerate(sorted(datum["Dimensions"].items()), 1):
            params[f"{prefix}.Dimensions.member.{j}.Name"] = name
            params[f"{prefix}.Dimensions.member.{j}.Value"] = value
    return params


def expand_placeholders(text: str, hostname: str, ip: str) -> str:
    # {instance_id} comes from EC2 metadata; on-prem the agent falls back to the host name.
    return (
        text.replace("{hostname}", hostname)
        .replace("{local_hostname}", hostname.split(".")[0])
        .replace("{instance_id}", hostname)
        .replace("{ip_address}", ip)
    )


class FileTail:
    """One collect_list entry's files: reads new complete lines after the persisted offset."""

    def __init__(self, entry: dict, default_stream: str, hostname: str, ip: str):
        self.entry = entry
        self.pattern = entry["file_path"]
        self.group = expand_placeholders(entry.get("log_group_name") or self.pattern, hostname, ip)
        self.stream = expand_placeholders(entry.get("log_stream_name") or default_stream, hostname, ip)
        self.retention = int(entry.get("retention_in_days") or -1)
        start = entry.get("multi_line_start_pattern")
        self.multiline = re.compile(start) if start and start != "{timestamp_format}" else None
        self.filters = [
            (f.get("type"), re.compile(f.get("expression", ""))) for f in entry.get("filters") or []
        ]

    def _state_file(self, path: str) -> str:
        return os.path.join(root_path(STATE_DIR), path.replace("/", "_"))

    def load_state(self, path: str) -> tuple[int, int]:
        try:
            with open(self._state_file(path), encoding="utf-8") as fh:
                parts = fh.read().split()
            return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
        except (OSError, ValueError, IndexError):
            return 0, 0

    def save_state(self, path: str, offset: int, inode: int) -> None:
        labaws.atomic_write(self._state_file(path), f"{offset} {inode}\n".encode(), 0o644)

    def keep(self, message: str) -> bool:
        for kind, regex in self.filters:
            found = bool(regex.search(message))
            if (kind == "include" and not found) or (kind == "exclude" and found):
                return False
        return True

    def read_new(self) -> list[tuple[str, int, int, list[dict]]]:
        """[(path, new offset, inode, events)] for each matching file with new complete lines."""
        out = []
        for path in sorted(glob.glob(root_path(self.pattern))):
            try:
                st = os.stat(path)
            except OSError:
                continue
            offset, inode = self.load_state(path)
            if inode != st.st_ino or st.st_size < offset:
                offset = 0  # rotated or truncated: start over
            if st.st_size == offset:
                continue
            with open(path, "rb") as fh:
                fh.seek(offset)
                chunk = fh.read(4 * 1024 * 1024)
            end = chunk.rfind(b"\n")
            if end < 0:
                continue
            lines = chunk[: end + 1].decode("utf-8", "replace").splitlines()
            now_ms = int(time.time() * 1000)
            messages: list[str] = []
            for line in lines:
                if self.multiline and messages and not self.multiline.search(line):
                    messages[-1] += "\n" + line
                elif line:
                    messages.append(line)
            events = [{"timestamp": now_ms, "message": m[: 256 * 1024]} for m in messages if self.keep(m)]
            out.append((path, offset + end + 1, st.st_ino, events))
        return out


class Agent:
    """The running agent: metrics and logs loops, credentials re-read on each send."""

    def __init__(self):
        self.stop = threading.Event()
        toml = read_toml()
        if not toml:
            raise AgentError(f"E! {TOML} not found: run amazon-cloudwatch-agent-ctl -a fetch-config first")
        self.settings = {
            "profile": toml.get("credentials", {}).get("shared_credential_profile", DEFAULT_PROFILE),
            "file": toml.get("credentials", {}).get("shared_credential_file", DEFAULT_CREDENTIALS),
        }
        self.region = toml.get("agent", {}).get("region", "")
        self.config = read_config_dir()
        self.hostname = socket.gethostname()
        self.known_streams: set[tuple[str, str]] = set()

    def creds(self) -> Credentials:
        return load_credentials(self.settings)  # re-read: the SSM agent rotates the shared file

    def logs_call(self, action: str, payload: dict) -> dict:
        return labaws.json_call(
            labaws.service_url("logs", self.region),
            f"Logs_20140328.{action}",
            payload,
            region=self.region,
            service="logs",
            creds=self.creds(),
        )

    def send_metrics(self, namespace: str, data: list[dict]) -> None:
        for start in range(0, len(data), 500):
            params = put_metric_data_params(namespace, data[start : start + 500])
            labaws.query_call(
                labaws.service_url("monitoring", self.region),
                params,
                region=self.region,
                service="monitoring",
                creds=self.creds(),
            )
        log.debug("D! sent %d metrics", len(data))

    def ensure_stream(self, tail: FileTail) -> None:
        key = (tail.group, tail.stream)
        if key in self.known_streams:
            return
        try:
            self.logs_call("CreateLogStream", {"logGroupName": tail.group, "logStreamName": tail.stream})
        except AwsError as exc:
            if exc.code == "ResourceNotFoundException":
                try:
                    self.logs_call("CreateLogGroup", {"logGroupName": tail.group})
                    log.info("I! created log group %s", tail.group)
                except AwsError as inner:
                    if inner.code != "ResourceAlreadyExistsException":
                        raise
                self.logs_call("CreateLogStream", {"logGroupName": tail.group, "logStreamName": tail.stream})
            elif exc.code != "ResourceAlreadyExistsException":
                raise
        if tail.retention > 0:
            self.logs_call(
                "PutRetentionPolicy", {"logGroupName": tail.group, "retentionInDays": tail.retention}
            )
        self.known_streams.add(key)

    def ship_logs(self, tails: list[FileTail]) -> None:
        for tail in tails:
            for path, offset, inode, events in tail.read_new():
                if events:
                    self.ensure_stream(tail)
                    for start in range(0, len(events), 10000):
                        self.logs_call(
                            "PutLogEvents",
                            {
                                "logGroupName": tail.group,
                                "logStreamName": tail.stream,
                                "logEvents": events[start : start + 10000],
                            },
                        )
                tail.save_state(path, offset, inode)  # only after the events are accepted

    def run(self) -> int:
        self.creds()  # refuse to start without usable credentials, as the real agent does
        apply_common_network_settings()
        signal.signal(signal.SIGTERM, lambda *_: self.stop.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop.set())
        started = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        labaws.atomic_write(
            root_path(PID_FILE), json.dumps({"pid": os.getpid(), "starttime": started}).encode()
        )
        log.info(
            "I! amazon-cloudwatch-agent %s (lab stand-in) started, region %s, credentials [%s] %s",
            version(),
            self.region,
            self.settings["profile"],
            self.settings["file"],
        )
        pipeline = MetricsPipeline(self.config, self.hostname)
        logs = self.config.get("logs") or {}
        default_stream = logs.get("log_stream_name") or "{instance_id}"
        ip = labaws.primary_ip(f"logs.{self.region}.amazonaws.com")
        files = ((logs.get("logs_collected") or {}).get("files") or {}).get("collect_list") or []
        tails = [FileTail(e, default_stream, self.hostname, ip) for e in files if e.get("file_path")]
        flush_every = _interval(logs.get("force_flush_interval"), 5.0)
        next_logs = 0.0
        try:
            while not self.stop.is_set():
                now = time.monotonic()
                try:
                    data = pipeline.due(now)
                    if data:
                        self.send_metrics(pipeline.namespace, data)
                    if tails and now >= next_logs:
                        next_logs = now + flush_every
                        self.ship_logs(tails)
                except (AwsError, RequestError, AgentError, OSError) as exc:
                    log.error("E! %s", exc)
                self.stop.wait(1)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(root_path(PID_FILE))
            log.info("I! amazon-cloudwatch-agent stopped")
        return 0


def run_main() -> int:
    """Entry point of the service (start-amazon-cloudwatch-agent)."""
    labaws.setup_file_logging("amazon-cloudwatch-agent", root_path(LOG_FILE))
    log.addHandler(logging.StreamHandler(sys.stderr))
    try:
        return Agent().run()
    except AgentError as exc:
        log.error("%s; refusing to start", exc)
        return 1


if __name__ == "__main__":
    sys.exit(run_main() if sys.argv[1:] == ["--run"] else ctl_main())
