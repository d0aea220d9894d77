"""Network plan of the lab's on-prem side and the `ip` commands that build it.

    host namespaces (eth0) ─┐
    controller (root ns,    ├─ lan0 bridge in NS_ROUTER (ROUTER_ONPREM_IP/24) ── uplink (ROUTER_VPC_IP/16)
      holab-ctl)           ─┘                                                        │ veth
                                                              NS_VPC: VPC_IFACE (VPC_NS_BASE_IP/16)

The router namespace stands in for Direct Connect: it forwards between the on-prem LAN and the
VPC. No namespace has a default route, so nothing can leave the lab even by mistake. The plan is
computed as plain data (command lists) so it can be checked without root.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass

import labconst

from .system import OnpremError, run

log = logging.getLogger(__name__)

LAN_PREFIX = ipaddress.ip_network(labconst.ONPREM_CIDR).prefixlen
VPC_PREFIX = ipaddress.ip_network(labconst.VPC_CIDR).prefixlen
BRIDGE = "lan0"  # inside NS_ROUTER
UPLINK = "uplink"  # router's end of the link to NS_VPC
CONTROLLER_LINK = "holab-ctl"  # the only link the lab creates in the root namespace
CONTROLLER_PEER = "ctl"  # its other end, a bridge port inside NS_ROUTER
IFNAMSIZ = 15  # longest interface name the kernel accepts


@dataclass(frozen=True)
class HostPlan:
    """Where one on-prem host lives on the LAN."""

    name: str
    ip: str
    ns: str
    port: str  # its bridge port in NS_ROUTER; cutting this link takes the host off the network


def host_port(name: str) -> str:
    port = f"p-{name}"
    if len(port) > IFNAMSIZ:
        raise ValueError(f"host name {name!r} too long for an interface name ({port!r} > {IFNAMSIZ} chars)")
    return port


def make_host(name: str, ip: str) -> HostPlan:
    return HostPlan(name=name, ip=ip, ns=labconst.host_ns(name), port=host_port(name))


def plan(n_hosts: int) -> list[HostPlan]:
    """The DNS host followed by host1..hostN."""
    if not 0 <= n_hosts <= labconst.MAX_HOSTS:
        raise ValueError(f"number of hosts must be 0..{labconst.MAX_HOSTS}, got {n_hosts}")
    hosts = [make_host(labconst.DNS_HOST_NAME, labconst.DNS_HOST_IP)]
    hosts += [make_host(labconst.host_name(i), labconst.host_ip(i)) for i in range(1, n_hosts + 1)]
    lan = ipaddress.ip_network(labconst.ONPREM_CIDR)
    reserved = {labconst.ROUTER_ONPREM_IP, labconst.CONTROLLER_IP}
    seen: set[str] = set()
    for host in hosts:
        if ipaddress.ip_address(host.ip) not in lan:
            raise ValueError(f"{host.name} address {host.ip} is outside {lan}")
        if host.ip in reserved or host.ip in seen:
            raise ValueError(f"{host.name} address {host.ip} collides with another lab address")
        seen.add(host.ip)
    return hosts


def _in(ns: str, *args: str) -> list[str]:
    return ["ip", "-n", ns, *args]


def core_commands() -> list[list[str]]:
    """Router, VPC namespace, the link between them, and the controller's place on the LAN."""
    r, v = labconst.NS_ROUTER, labconst.NS_VPC
    return [
        ["ip", "netns", "add", r],
        ["ip", "netns", "add", v],
        _in(r, "link", "set", "lo", "up"),
        _in(v, "link", "set", "lo", "up"),
        # Forwarding only inside the router namespace; the machine's own setting is left alone.
        ["ip", "netns", "exec", r, "sysctl", "-qw", "net.ipv4.ip_forward=1"],
        _in(r, "link", "add", BRIDGE, "type", "bridge", "stp_state", "0"),
        _in(r, "addr", "add", f"{labconst.ROUTER_ONPREM_IP}/{LAN_PREFIX}", "dev", BRIDGE),
        _in(r, "link", "set", BRIDGE, "up"),
        _in(r, "link", "add", UPLINK, "type", "veth", "peer", "name", labconst.VPC_IFACE, "netns", v),
        _in(r, "addr", "add", f"{labconst.ROUTER_VPC_IP}/{VPC_PREFIX}", "dev", UPLINK),
        _in(r, "link", "set", UPLINK, "up"),
        _in(v, "addr", "add", f"{labconst.VPC_NS_BASE_IP}/{VPC_PREFIX}", "dev", labconst.VPC_IFACE),
        _in(v, "link", "set", labconst.VPC_IFACE, "up"),
        _in(v, "route", "add", labconst.ONPREM_CIDR, "via", labconst.ROUTER_VPC_IP),
        ["ip", "link", "add", CONTROLLER_LINK, "type", "veth", "peer", "name", CONTROLLER_PEER, "netns", r],
        _in(r, "link", "set", CONTROLLER_PEER, "master", BRIDGE, "up"),
        ["ip", "addr", "add", f"{labconst.CONTROLLER_IP}/{LAN_PREFIX}", "dev", CONTROLLER_LINK],
        ["ip", "link", "set", CONTROLLER_LINK, "up"],
        ["ip", "route", "add", labconst.VPC_CIDR, "via", labconst.ROUTER_ONPREM_IP, "dev", CONTROLLER_LINK],
    ]


def host_commands(host: HostPlan) -> list[list[str]]:
    """One host's namespace and its cable to the LAN bridge."""
    r = labconst.NS_ROUTER
    return [
        ["ip", "netns", "add", host.ns],
        _in(host.ns, "link", "set", "lo", "up"),
        _in(r, "link", "add", host.port, "type", "veth", "peer", "name", "eth0", "netns", host.ns),
        _in(r, "link", "set", host.port, "master", BRIDGE, "up"),
        _in(host.ns, "addr", "add", f"{host.ip}/{LAN_PREFIX}", "dev", "eth0"),
        _in(host.ns, "link", "set", "eth0", "up"),
        _in(host.ns, "route", "add", labconst.VPC_CIDR, "via", labconst.ROUTER_ONPREM_IP),
    ]


def commands(hosts: list[HostPlan]) -> list[list[str]]:
    cmds = core_commands()
    for host in hosts:
        cmds += host_commands(host)
    return cmds


def _check_no_clash() -> None:
    # If the machine itself already routes the lab's ranges, adding ours would shadow real traffic.
    for cidr in (labconst.ONPREM_CIDR, labconst.VPC_CIDR):
        out = run(["ip", "-o", "route", "show", "to", "match", cidr.split("/", maxsplit=1)[0]]).stdout
        for line in out.splitlines():
            if not line.startswith("default") and "holab-" not in line:
                raise OnpremError(f"the machine already routes {cidr} ({line.strip()}); the lab would clash")


def create(hosts: list[HostPlan]) -> None:
    """Build the whole topology. Expects a clean slate (cleanup.down() first)."""
    _check_no_clash()
    for cmd in commands(hosts):
        run(cmd)
    log.info("topology up: router, vpc, controller and %d host namespace(s)", len(hosts))


def set_link(name: str, up: bool) -> None:
    """Plug (`up=True`) or unplug host `name` from the LAN, leaving its own configuration untouched."""
    run(_in(labconst.NS_ROUTER, "link", "set", host_port(name), "up" if up else "down"))
    log.info("link of %s %s", name, "restored" if up else "cut")


def link_is_up(name: str) -> bool:
    out = run(_in(labconst.NS_ROUTER, "-o", "link", "show", host_port(name))).stdout
    return "state UP" in out or ",UP" in out.split(">")[0]
