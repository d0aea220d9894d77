"""Send, for each host name given, the metrics the lab's CloudWatch agent stand-in sends with the cloudwatch_agent
role's default config (plugins/filter/cw_agent_config.py DEFAULT_METRICS), read from this machine's /proc, to the
AWS endpoint of the environment (the scenario's emulator). The host alarms are then checked against series whose
names and dimensions come from the agent's own code, not from the role under test.

    python agent_metrics.py HOST [HOST ...]
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import sys
from pathlib import Path

import boto3

ROOT = Path(os.environ.get("HYBRID_PROJECT_DIR") or Path(__file__).resolve().parents[4])
sys.path.insert(0, str(ROOT / "tests" / "lab" / "agents" / "src"))
# The filter imports its siblings by collection path (ansible_collections.hybrid.onboard.plugins...), which the
# in-place link collections/ansible_collections/hybrid/onboard resolves outside Ansible's own loader too.
sys.path.insert(0, str(ROOT / "collections"))

import cw_agent  # noqa: E402  (the lab agent stand-in)


def default_config() -> dict:
    spec = importlib.util.spec_from_file_location("cw_agent_config", ROOT / "plugins" / "filter" / "cw_agent_config.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.cw_agent_config(module.DEFAULT_METRICS)


def main(hosts: list[str]) -> int:
    if not hosts:
        print(__doc__, file=sys.stderr)
        return 2
    config = default_config()
    client = boto3.client("cloudwatch")
    for host in hosts:
        pipeline = cw_agent.MetricsPipeline(config, host)
        data = [datum for plugin, spec in pipeline.plugins.items() for datum in pipeline.collect(plugin, spec)]
        now = dt.datetime.now(dt.UTC)
        for start in range(0, len(data), 500):
            client.put_metric_data(
                Namespace=pipeline.namespace,
                MetricData=[
                    {
                        "MetricName": datum["MetricName"],
                        "Value": datum["Value"],
                        "Unit": datum["Unit"],
                        "Timestamp": now,
                        "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(datum["Dimensions"].items())],
                    }
                    for datum in data[start : start + 500]
                ],
            )
        print(f"{host}: {len(data)} data points in {pipeline.namespace}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
