# -*- coding: utf-8 -*-
# Copyright: hybrid-onboard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small pure helpers of the network phase's preflight (no netaddr needed, unlike ansible.utils.ipaddr).

- ``invalid_ipv4_cidrs``: the entries of a list that are not IPv4 networks written as ``a.b.c.d/n``
  (host bits set, a missing prefix length, a hostname, a non-string all count as invalid), so a preflight assert
  can name exactly the bad values.
- ``ipv4_host_cidrs``: ``['172.16.10.53', '10.1.1.1/32']`` -> ``['172.16.10.53/32', '10.1.1.1/32']``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress


def _is_ipv4_network(value):
    if not isinstance(value, str) or "/" not in value:
        return False
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError:
        return False
    return network.version == 4


def invalid_ipv4_cidrs(values):
    """Entries of ``values`` that are not IPv4 networks in CIDR form (a string counts as one entry)."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    try:
        items = list(values)
    except TypeError:
        return [values]
    return [v for v in items if not _is_ipv4_network(v)]


def ipv4_host_cidrs(values):
    """Host addresses as /32 networks; entries that already carry a prefix length are kept as they are."""
    result = []
    for value in values or []:
        text = str(value).strip()
        result.append(text if "/" in text else text + "/32")
    return result


class FilterModule:
    """Network-phase helpers."""

    def filters(self):
        return {
            "invalid_ipv4_cidrs": invalid_ipv4_cidrs,
            "ipv4_host_cidrs": ipv4_host_cidrs,
        }
