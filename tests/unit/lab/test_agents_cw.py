"""amazon-cloudwatch-agent stand-in: metric readers, ctl fetch-config/status, credential resolution as the
real agent does it, and PutMetricData / PutLogEvents against the lab emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

LAB = Path(__file__).resolve().parents[3] / "tests" / "lab"
SRC = LAB / "agents" / "src"
for p in (LAB, SRC):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import cw_agent  # noqa: E402
import cw_metrics  # noqa: E402
import labconst  # noqa: E402

CONFIG = {
    "agent": {"metrics_collection_interval": 10},
    "metrics": {
        "append_dimensions": {"InstanceId": "${aws:InstanceId}", "Site": "lab"},
        "aggregation_dimensions": [["host"]],
        "metrics_collected": {
            "cpu": {"measurement": ["cpu_usage_idle", "usage_active"], "totalcpu": True},
            "mem": {"measurement": ["mem_used_percent"]},
            "disk": {"measurement": ["used_percent"], "resources": ["/"]},
        },
    },
    "logs": {
        "logs_collected": {
            "files": {
                "collect_list": [
                    {
                        "file_path": "/var/log/lab-test.log",
                        "log_group_name": "/lab/test",
                        "log_stream_name": "{hostname}-stream",
                        "retention_in_days": 7,
                    }
                ]
            }
        }
    },
}


def test_metric_readers_return_sane_values():
    mem = cw_metrics.mem()
    assert mem["total"] > 0 and 0 <= mem["used_percent"] <= 100 and 0 < mem["available"] <= mem["total"]
    cpu = cw_metrics.CpuCollector()
    cpu.collect()
    sample = cpu.collect()["cpu-total"]
    assert 0 <= sample["usage_idle"] <= 100 and -0.001 <= sample["usage_active"] <= 100.001
    disks = cw_metrics.disk(["/"])
    assert len(disks) == 1
    dims, fields = disks[0]
    assert dims["path"] == "/" and dims["fstype"] and fields["total"] >= fields["free"] > 0
    assert 0 <= fields["used_percent"] <= 100
    procs = cw_metrics.processes()
    assert procs["total"] >= 1 and procs["total_threads"] >= procs["total"]
    assert set(cw_metrics.swap()) == {"total", "free", "used", "used_percent"}
    assert all(v >= 0 for v in cw_metrics.netstat().values())


def test_pipeline_names_dimensions_and_units(monkeypatch):
    pipeline = cw_agent.MetricsPipeline(CONFIG, "host7")
    data = pipeline.due(0.0)
    names = {d["MetricName"] for d in data}
    assert names == {"cpu_usage_idle", "cpu_usage_active", "mem_used_percent", "disk_used_percent"}
    mem = [d for d in data if d["MetricName"] == "mem_used_percent"]
    # the ${aws:...} dimension is dropped on-prem, static ones kept; plus the host-only roll-up
    assert {"host": "host7", "Site": "lab"} in [d["Dimensions"] for d in mem]
    assert {"host": "host7"} in [d["Dimensions"] for d in mem]
    disk = next(d for d in data if d["MetricName"] == "disk_used_percent" and "path" in d["Dimensions"])
    assert disk["Unit"] == "Percent" and disk["Dimensions"]["path"] == "/" and "fstype" in disk["Dimensions"]
    assert all(d.get("StorageResolution") == 1 for d in data)  # interval 10 s = high resolution
    assert pipeline.due(1.0) == []  # not due again before its interval


def _ctl(root, *args, env=None):
    full = dict(os.environ, HYBRID_LAB_AGENT_ROOT=str(root), **(env or {}))
    full.pop("AWS_REGION", None)
    full.pop("AWS_DEFAULT_REGION", None)
    return subprocess.run(
        [sys.executable, str(SRC / "cw_agent.py"), *args],
        capture_output=True,
        text=True,
        env=full,
        timeout=30, check=False,
    )


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_fetch_config_needs_a_region(tmp_path):
    cfg = _write(tmp_path / "cfg.json", json.dumps(CONFIG))
    out = _ctl(tmp_path, "-a", "fetch-config", "-m", "onPremise", "-c", f"file:{cfg}")
    assert out.returncode == 1 and "Unable to determine aws-region" in out.stderr


def test_fetch_config_onpremise_default_profile(tmp_path):
    _write(tmp_path / "root/.aws/config", f"[profile AmazonCloudWatchAgent]\nregion = {labconst.REGION}\n")
    cfg = _write(tmp_path / "cfg.json", json.dumps(CONFIG))
    out = _ctl(tmp_path, "-a", "fetch-config", "-m", "onPremise", "-c", f"file:{cfg}")
    assert out.returncode == 0, out.stderr
    conf_d = tmp_path / "opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.d"
    assert [p.name for p in conf_d.iterdir()] == ["file_cfg.json"]
    toml = (tmp_path / "opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.toml").read_text()
    assert 'shared_credential_profile = "AmazonCloudWatchAgent"' in toml and labconst.REGION in toml
    status = json.loads(_ctl(tmp_path, "-a", "status").stdout)
    assert status["status"] == "stopped" and status["configstatus"] == "configured"
    assert set(status) == {"status", "starttime", "configstatus", "version"}


def test_fetch_config_rejects_invalid_config(tmp_path):
    schema = Path(labconst.VENDOR_DIR) / "amazon-cloudwatch-agent" / "schema.json"
    if schema.is_file():  # where the package puts it; without it the ctl uses the structural fallback
        _write(
            tmp_path / "opt/aws/amazon-cloudwatch-agent/doc/amazon-cloudwatch-agent-schema.json",
            schema.read_text(),
        )
    cfg = _write(tmp_path / "bad.json", json.dumps({"metrics": {"metrics_collected": {}}}))
    _write(tmp_path / "root/.aws/config", "[profile AmazonCloudWatchAgent]\nregion = eu-west-1\n")
    out = _ctl(tmp_path, "-a", "fetch-config", "-m", "onPremise", "-c", f"file:{cfg}")
    expected = (
        "Under path : /metrics/metrics_collected | Error : Must have at least 1 properties"
        if schema.is_file()
        else "Under path : /metrics | Error : metrics_collected is required"
    )
    assert out.returncode == 1 and expected in out.stderr
    assert not (tmp_path / "opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.toml").exists()


def test_common_config_credentials_win(tmp_path, monkeypatch):
    monkeypatch.setenv("HYBRID_LAB_AGENT_ROOT", str(tmp_path))
    _write(
        tmp_path / "opt/aws/amazon-cloudwatch-agent/etc/common-config.toml",
        '[credentials]\n  shared_credential_profile = "default"\n'
        '  shared_credential_file = "/root/.aws/credentials"\n',
    )
    assert cw_agent.credential_settings("onPremise") == {
        "profile": "default",
        "file": "/root/.aws/credentials",
    }
    with pytest.raises(cw_agent.AgentError, match=r"profile \[default\] not found"):
        cw_agent.load_credentials(cw_agent.credential_settings("onPremise"))
    _write(
        tmp_path / "root/.aws/credentials",
        "[default]\naws_access_key_id = A\naws_secret_access_key = S\naws_session_token = T\n",
    )
    creds = cw_agent.load_credentials(cw_agent.credential_settings("onPremise"))
    assert (creds.access_key, creds.secret_key, creds.token) == ("A", "S", "T")


def test_ec2_mode_without_profile_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("HYBRID_LAB_AGENT_ROOT", str(tmp_path))
    with pytest.raises(cw_agent.AgentError, match="IMDS"):
        cw_agent.credential_settings("ec2")


def test_agent_refuses_to_start_without_credentials(tmp_path):
    _write(tmp_path / "root/.aws/config", "[profile AmazonCloudWatchAgent]\nregion = eu-west-1\n")
    cfg = _write(tmp_path / "cfg.json", json.dumps(CONFIG))
    assert _ctl(tmp_path, "-a", "fetch-config", "-m", "onPremise", "-c", f"file:{cfg}").returncode == 0
    out = _ctl(tmp_path, "--run")
    assert out.returncode == 1
    log = (tmp_path / "opt/aws/amazon-cloudwatch-agent/logs/amazon-cloudwatch-agent.log").read_text()
    assert "No credentials" in log and "AmazonCloudWatchAgent" in log and "refusing to start" in log


def test_metrics_and_logs_reach_the_emulator(tmp_path, monkeypatch):
    boto3 = pytest.importorskip("boto3")
    server = pytest.importorskip("emulator.server")
    handle = server.start_in_thread()
    try:
        monkeypatch.setenv("HYBRID_LAB_AGENT_ROOT", str(tmp_path))
        monkeypatch.setenv("HYBRID_LAB_AGENT_ENDPOINT_URL", handle.url)
        _write(
            tmp_path / "root/.aws/config", f"[profile AmazonCloudWatchAgent]\nregion = {labconst.REGION}\n"
        )
        _write(
            tmp_path / "root/.aws/credentials",
            f"[AmazonCloudWatchAgent]\naws_access_key_id = {labconst.ACCESS_KEY}\n"
            f"aws_secret_access_key = {labconst.SECRET_KEY}\n",
        )
        cfg = _write(tmp_path / "cfg.json", json.dumps(CONFIG))
        cw_agent.fetch_config(f"file:{cfg}", "onPremise", append=False)
        logfile = _write(tmp_path / "var/log/lab-test.log", "first line\nsecond line\n")
        agent = cw_agent.Agent()
        pipeline = cw_agent.MetricsPipeline(agent.config, "host7")
        agent.send_metrics(pipeline.namespace, pipeline.due(0.0))
        default_stream = "{instance_id}"
        tails = [
            cw_agent.FileTail(e, default_stream, "host7", "172.16.10.101")
            for e in agent.config["logs"]["logs_collected"]["files"]["collect_list"]
        ]
        agent.ship_logs(tails)
        with logfile.open("a") as fh:
            fh.write("third line\npartial")  # no newline yet: must wait
        agent.ship_logs(tails)

        kw = dict(
            endpoint_url=handle.url,
            region_name=labconst.REGION,
            aws_access_key_id=labconst.ACCESS_KEY,
            aws_secret_access_key=labconst.SECRET_KEY,
        )
        cw = boto3.client("cloudwatch", **kw)
        metrics = cw.list_metrics(Namespace="CWAgent")["Metrics"]
        assert {"mem_used_percent", "cpu_usage_idle", "disk_used_percent"} <= {
            m["MetricName"] for m in metrics
        }
        logs = boto3.client("logs", **kw)
        group = logs.describe_log_groups(logGroupNamePrefix="/lab/test")["logGroups"][0]
        assert group.get("retentionInDays") == 7
        events = logs.get_log_events(logGroupName="/lab/test", logStreamName="host7-stream")["events"]
        assert [e["message"] for e in events] == ["first line", "second line", "third line"]
    finally:
        handle.stop()
