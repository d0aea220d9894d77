"""Constants shared by every piece of the lab (emulator, VPC side, on-prem hosts, labctl).

The lab is a closed network on one machine. Every address below lives only inside network
namespaces the lab creates (or on loopback); nothing here is routed anywhere else.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

# --- AWS side -------------------------------------------------------------------------------
REGION = os.environ.get("HYBRID_LAB_REGION", "eu-west-1")
ACCOUNT_ID = "123456789012"  # moto's default account
EMULATOR_HOST = "127.0.0.1"
EMULATOR_PORT = int(os.environ.get("HYBRID_LAB_EMULATOR_PORT", "4566"))
EMULATOR_URL = f"http://{EMULATOR_HOST}:{EMULATOR_PORT}"
# Lab credentials for the emulator. Not secrets: moto accepts anything. Lower case on purpose,
# so nothing here looks like a real access key id.
ACCESS_KEY = "labaccesskey"
SECRET_KEY = "labsecretkey"

# The VPC the account "already has" before onboarding (seeded by the emulator, deterministic ids
# so inventory/lab/ can name them statically).
VPC_CIDR = "10.0.0.0/16"
VPC_ID = "vpc-0c0ffee0000000001"
SUBNETS = [  # (subnet id, availability zone, cidr)
    ("subnet-0c0ffee000000000a", f"{REGION}a", "10.0.1.0/24"),
    ("subnet-0c0ffee000000000b", f"{REGION}b", "10.0.2.0/24"),
]

# "Public" answers of the Resolver stand-in for names without private DNS: TEST-NET-3, which no
# lab namespace routes. This is how the S3 public trap shows up in the lab.
PUBLIC_TRAP_NET = ipaddress.ip_network("203.0.113.0/24")

# Agent download buckets, where the real ones live.
SSM_AGENT_BUCKET = f"amazon-ssm-{REGION}"
CW_AGENT_BUCKET = f"amazoncloudwatch-agent-{REGION}"

# --- Network namespaces ----------------------------------------------------------------------
NS_PREFIX = "holab-"
NS_VPC = "holab-vpc"  # holds endpoint ENI IPs and Resolver inbound IPs
NS_ROUTER = "holab-router"  # "Direct Connect": joins on-prem LAN and VPC
VPC_IFACE = "vpc0"  # interface inside NS_VPC that carries every VPC-side address
ROUTER_VPC_IP = "10.0.0.1"  # router's address on the VPC link (/16)
VPC_NS_BASE_IP = "10.0.0.2"  # base address of NS_VPC (/16); ENI IPs are added beside it

ONPREM_CIDR = "172.16.10.0/24"
ROUTER_ONPREM_IP = "172.16.10.1"
CONTROLLER_IP = "172.16.10.2"  # the root namespace joins the on-prem LAN as the controller
DNS_HOST_NAME = "dns1"
DNS_HOST_IP = "172.16.10.53"
MAX_HOSTS = 150


def host_name(index: int) -> str:
    """Name of on-prem host number `index` (1-based)."""
    return f"host{index}"


def host_ip(index: int) -> str:
    """Address of on-prem host number `index` (1-based) on the on-prem LAN."""
    if not 1 <= index <= MAX_HOSTS:
        raise ValueError(f"host index must be 1..{MAX_HOSTS}, got {index}")
    return f"172.16.10.{100 + index}"


def host_ns(name: str) -> str:
    """Network namespace of the on-prem host called `name`."""
    return f"{NS_PREFIX}{name}"


# --- Files -----------------------------------------------------------------------------------
# Cache survives lab runs (debootstrap image, lab CA, built agent packages).
CACHE_DIR = Path(os.environ.get("HYBRID_LAB_CACHE", "/var/cache/hybrid-onboard-lab"))
# Run dir holds one lab's runtime state (pids, logs, ssh key, per-host files); removed by `down`.
RUN_DIR = Path(os.environ.get("HYBRID_LAB_RUN", "/run/hybrid-onboard-lab"))
CA_DIR = CACHE_DIR / "ca"
CA_CERT = CA_DIR / "lab-ca.crt"
CA_KEY = CA_DIR / "lab-ca.key"
SSH_KEY = RUN_DIR / "ssh" / "id_ed25519"
LOG_DIR = RUN_DIR / "logs"

# ../shared/vendor beside the project, overridable; code that needs it degrades when missing.
PROJECT_DIR = Path(__file__).resolve().parents[2]
VENDOR_DIR = Path(os.environ.get("HYBRID_SHARED_VENDOR", PROJECT_DIR.parent / "shared" / "vendor"))


def controller_env() -> dict[str, str]:
    """Environment a controller shell needs to talk to the lab's AWS emulator."""
    return {
        "AWS_ENDPOINT_URL": EMULATOR_URL,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    }
