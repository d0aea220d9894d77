"""cloudwatch_agent_data_info run for real against the lab emulator, with metrics and log streams created the way
the CloudWatch agent creates them (PutMetricData with a ``host`` dimension, one log stream per host)."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

MODULE = "cloudwatch_agent_data_info"
MEM, DISK = "mem_used_percent", "disk_used_percent"


class Site:
    """A namespace, host names and log groups of this test only (moto's state is shared by the session)."""

    def __init__(self, emulator, count=3):
        tag = uuid.uuid4().hex[:8]
        self.cloudwatch = emulator.client("cloudwatch")
        self.logs = emulator.client("logs")
        self.namespace = f"CWAgent-{tag}"
        self.hosts = [f"web{index:02d}-{tag}" for index in range(1, count + 1)]
        self.syslog = f"/hybrid-onboard/{tag}/syslog"
        self.secure = f"/hybrid-onboard/{tag}/secure"

    def metrics(self, host, names=(MEM, DISK), dimension="host"):
        data = []
        for name in names:
            dimensions = [{"Name": dimension, "Value": host}]
            if name == DISK:  # the agent adds the disk's dimensions next to host
                dimensions.append({"Name": "path", "Value": "/"})
            data.append({"MetricName": name, "Value": 1.0, "Dimensions": dimensions})
        self.cloudwatch.put_metric_data(Namespace=self.namespace, MetricData=data)

    def group(self, name, streams):
        self.logs.create_log_group(logGroupName=name)
        for stream in streams:
            self.logs.create_log_stream(logGroupName=name, logStreamName=stream)

    def args(self, **extra):
        return {
            "hosts": self.hosts,
            "namespace": self.namespace,
            "log_groups": [{"name": self.syslog}, {"name": self.secure, "stream": "secure/{hostname}.log"}],
            **extra,
        }


def entry(host, names=(DISK, MEM), missing=()):
    return {
        "host": host,
        "metrics_seen": bool(names),
        "metric_names": sorted(names),
        "log_streams_seen": not missing,
        "missing_log_streams": list(missing),
    }


def test_all_present_is_ready_in_check_mode_too(run_module, emulator, tools):
    site = Site(emulator)
    for host in site.hosts:
        site.metrics(host)
    site.group(site.syslog, site.hosts)
    site.group(site.secure, [f"secure/{host}.log" for host in site.hosts])

    result = run_module(MODULE, site.args())
    assert result.get("failed") is not True, result
    assert result["changed"] is False
    assert result["ready"] is True
    assert result["hosts"] == [entry(host) for host in site.hosts]
    assert result["missing_metrics_hosts"] == [] and result["missing_logs_hosts"] == []
    assert 0 <= result["waited"] < 5
    assert set(result) - tools.STANDARD_KEYS == tools.return_keys(MODULE)

    emulator.reset_calls()
    checked = run_module(MODULE, site.args(), check=True)
    assert checked["changed"] is False
    assert checked["hosts"] == result["hosts"] and checked["ready"] is True
    calls = emulator.calls()
    assert calls["monitoring"]["ListMetrics"] == 1 and calls["logs"]["DescribeLogStreams"] == 2
    assert tools.mutations(calls) == {}


def test_hosts_without_metrics_or_stream_are_listed(run_module, emulator):
    site = Site(emulator)
    first, no_metrics, no_stream = site.hosts
    site.metrics(first)
    site.metrics(no_stream)
    # Neither a longer name that starts like the host nor another dimension with its name counts for it.
    site.metrics(f"{no_metrics}x")
    site.metrics(no_metrics, dimension="InstanceId")
    site.group(site.syslog, [first, no_metrics])
    site.group(site.secure, [f"secure/{host}.log" for host in site.hosts])

    result = run_module(MODULE, site.args(hosts=[*site.hosts, first]))
    assert result.get("failed") is not True, result
    assert result["ready"] is False
    assert result["missing_metrics_hosts"] == [no_metrics]
    assert result["missing_logs_hosts"] == [no_stream]
    assert result["hosts"] == [
        entry(first),
        entry(no_metrics, names=()),
        entry(no_stream, missing=[f"{site.syslog}/{no_stream}"]),
    ]
    assert result["waited"] < 5  # wait_timeout 0: one look, no waiting


def test_metric_names_must_all_be_there(run_module, emulator):
    site = Site(emulator, count=2)
    complete, partial = site.hosts
    site.metrics(complete, names=(MEM, DISK, "swap_used_percent"))
    site.metrics(partial, names=(MEM,))

    wanted = run_module(MODULE, site.args(metric_names=[MEM, DISK], log_groups=[]))
    assert wanted.get("failed") is not True, wanted
    assert wanted["missing_metrics_hosts"] == [partial]
    assert wanted["hosts"][0]["metrics_seen"] is True
    assert wanted["hosts"][0]["metric_names"] == [DISK, MEM, "swap_used_percent"]
    assert wanted["hosts"][1] == entry(partial, names=(MEM,)) | {"metrics_seen": False}
    assert wanted["missing_logs_hosts"] == [] and wanted["ready"] is False

    anything = run_module(MODULE, site.args(log_groups=[]))
    assert anything["missing_metrics_hosts"] == [] and anything["ready"] is True


def test_missing_log_group_is_not_an_error(run_module, emulator):
    site = Site(emulator, count=2)
    for host in site.hosts:
        site.metrics(host)
    site.group(site.syslog, site.hosts)

    result = run_module(MODULE, site.args())
    assert result.get("failed") is not True, result
    assert result["missing_metrics_hosts"] == []
    assert result["missing_logs_hosts"] == site.hosts
    assert [h["missing_log_streams"] for h in result["hosts"]] == [
        [f"{site.secure}/secure/{host}.log"] for host in site.hosts
    ]
    assert result["ready"] is False


def test_waits_for_data_that_arrives_later(run_module, emulator):
    site = Site(emulator, count=2)
    early, late = site.hosts
    site.metrics(early)
    site.group(site.syslog, [early])
    emulator.reset_calls()

    def agent_starts_late():
        # Two seconds after the module's first look, the late host's agent sends its data.
        deadline = time.monotonic() + 60
        while not emulator.calls().get("monitoring", {}).get("ListMetrics") and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(2)
        site.metrics(late)
        site.logs.create_log_stream(logGroupName=site.syslog, logStreamName=late)

    thread = threading.Thread(target=agent_starts_late, daemon=True)
    thread.start()
    result = run_module(MODULE, site.args(log_groups=[{"name": site.syslog}], wait_timeout=60, wait_delay=1))
    thread.join(timeout=60)
    assert result.get("failed") is not True, result
    assert result["ready"] is True, result
    assert result["hosts"] == [entry(early), entry(late)]
    assert 2 <= result["waited"] < 30
    calls = emulator.calls()
    assert calls["monitoring"]["ListMetrics"] >= 2  # it did poll again


def test_wait_is_bounded_and_returns_what_never_came(run_module, emulator):
    site = Site(emulator, count=2)
    site.metrics(site.hosts[0])
    started = time.monotonic()
    result = run_module(MODULE, site.args(log_groups=[], wait_timeout=3, wait_delay=1))
    assert result.get("failed") is not True, result
    assert result["ready"] is False and result["missing_metrics_hosts"] == [site.hosts[1]]
    assert 3 <= result["waited"] < 6
    assert time.monotonic() - started < 30


def test_calls_do_not_grow_with_the_number_of_hosts(run_module, emulator):
    counts = []
    for count in (3, 30):
        site = Site(emulator, count=count)
        for host in site.hosts:
            site.metrics(host)
        site.group(site.syslog, site.hosts)
        site.group(site.secure, [f"secure/{host}.log" for host in site.hosts])
        emulator.reset_calls()
        result = run_module(MODULE, site.args())
        assert result.get("failed") is not True, result
        assert result["ready"] is True and len(result["hosts"]) == count
        counts.append(emulator.calls())
    assert counts[0] == counts[1] == {"monitoring": {"ListMetrics": 1}, "logs": {"DescribeLogStreams": 2}}


def test_every_page_is_read(run_module, emulator):
    # 60 hosts: more streams than one DescribeLogStreams page (50) and, at 9 metrics a host, more metrics than
    # one ListMetrics page (500). A module reading only the first pages misses hosts.
    site = Site(emulator, count=60)
    names = [f"metric_{index}" for index in range(9)]
    for host in site.hosts:
        site.metrics(host, names=names)
    site.group(site.syslog, site.hosts)
    emulator.reset_calls()
    result = run_module(MODULE, site.args(log_groups=[{"name": site.syslog}]))
    assert result.get("failed") is not True, result
    assert result["missing_metrics_hosts"] == [] and result["missing_logs_hosts"] == []
    assert all(h["metric_names"] == sorted(names) for h in result["hosts"])
    assert emulator.calls() == {"monitoring": {"ListMetrics": 2}, "logs": {"DescribeLogStreams": 2}}


def test_retries_on_throttling(run_module, emulator):
    site = Site(emulator)
    for host in site.hosts:
        site.metrics(host)
    site.group(site.syslog, site.hosts)
    site.group(site.secure, [f"secure/{host}.log" for host in site.hosts])
    expected_calls = 3  # one ListMetrics, one DescribeLogStreams a group
    emulator.reset_calls()
    with emulator.faults(throttle_rate=0.5, seed=3):
        result = run_module(MODULE, site.args())
    calls = emulator.calls()
    assert result.get("failed") is not True, result
    assert result["ready"] is True
    assert sum(n for actions in calls.values() for n in actions.values()) > expected_calls, (
        "the seed threw no throttling error: the test proves nothing"
    )


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ({"hosts": []}, "hosts must name at least one host"),
        ({"hosts": ["web01", " "]}, "hosts[2]"),
        ({"metric_names": []}, "metric_names must name at least one metric"),
        ({"namespace": ""}, "namespace must be 1 to 255 characters"),
        ({"log_groups": [{"name": "/ok"}, {"name": "/app", "stream": "{instance_id}"}]}, "log_groups[2].stream uses"),
        ({"log_groups": [{"name": "/app", "stream": "{hostname}-{ip_address}"}]}, "{ip_address}; only {hostname}"),
        ({"log_groups": [{"name": "/app/{hostname}"}]}, "log_groups[1].name"),
        ({"log_groups": [{"stream": "{hostname}"}]}, "name"),
        ({"wait_delay": 0}, "wait_delay >= 1"),
        ({"wait_timeout": -1}, "wait_timeout must be >= 0"),
    ],
)
def test_bad_input_fails_before_any_call(run_module, emulator, tools, args, fragment):
    emulator.reset_calls()
    result = run_module(MODULE, {"hosts": ["web01"], **args})
    assert result.get("failed") is True and fragment in result["msg"], result
    assert tools.total_calls(emulator.calls()) == 0


def test_a_long_wait_shows_the_hosts_still_missing_data(run_module, emulator, tools):
    # Longer than one slice (the plugin's own wait with wait_delay 1 is 11 s), so progress lines come in between.
    site = Site(emulator, count=3)
    done, no_logs, late = site.hosts
    site.metrics(done)
    site.metrics(no_logs)
    site.group(site.syslog, [done])
    emulator.reset_calls()

    def agent_starts_late():
        # After the first progress line (about 12 s after the first look), the late host's agent sends its data.
        deadline = time.monotonic() + 60
        while not emulator.calls().get("monitoring", {}).get("ListMetrics") and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(14)
        site.metrics(late)
        site.logs.create_log_stream(logGroupName=site.syslog, logStreamName=late)

    thread = threading.Thread(target=agent_starts_late, daemon=True)
    thread.start()
    args = site.args(log_groups=[{"name": site.syslog}], wait_timeout=25, wait_delay=1)
    result = run_module(MODULE, args, via="ansible")
    thread.join(timeout=60)
    assert result.get("failed") is not True, result
    # One result for all hosts, in the order given, as a single run returns it.
    assert result["hosts"] == [entry(done), entry(no_logs, missing=[f"{site.syslog}/{no_logs}"]), entry(late)]
    assert result["missing_metrics_hosts"] == [] and result["missing_logs_hosts"] == [no_logs]
    assert result["ready"] is False
    assert 25 <= result["waited"] < 40
    # action and _ansible_no_log: what the json callback adds to every task result.
    assert set(result) - tools.STANDARD_KEYS - {"action", "_ansible_no_log"} == tools.return_keys(MODULE)
    assert result["invocation"]["module_args"]["wait_timeout"] == 25
    progress = [line for line in run_module.displayed if line.startswith("Waiting for ")]
    assert progress, run_module.displayed
    first = progress[0]
    assert first.startswith("Waiting for CloudWatch data from 2 of 3 hosts ("), first
    assert first.endswith(f" s left): {no_logs} (1 log stream), {late} (metrics, 1 log stream)"), first
    assert all(done not in line for line in progress)
