# -*- coding: utf-8 -*-
# Copyright: hybrid-onboard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The SSM Agent's hybrid registration as the host holds it: which agent binary and systemd unit, and what the
agent's Vault and its registration file say. Shared by ``ssm_agent_registration`` (registers the host) and
``ssm_agent_registration_info`` (only reads).

"Registered" is decided by the Vault (``<data_dir>/Vault/Store/RegistrationKey``), never by
``<data_dir>/registration``: the agent keeps that file after ``amazon-ssm-agent -register -clear``, so it can be
stale. The Vault also holds the registration's private key, which is never read into a result.

Python standard library only and Python 3.6 syntax: both modules run on managed hosts (RHEL 8's platform Python
is 3.6).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import json
import os

SNAP_AGENT = "/snap/amazon-ssm-agent/current/amazon-ssm-agent"
PACKAGE_AGENT = "/usr/bin/amazon-ssm-agent"
SNAP_SERVICE = "snap.amazon-ssm-agent.amazon-ssm-agent.service"
PACKAGE_SERVICE = "amazon-ssm-agent.service"
DEFAULT_DATA_DIR = "/var/lib/amazon/ssm"
# Said when a state file cannot be read: the agent's data directory is root's.
NEEDS_ROOT = "reading the agent's Vault needs root: run the task with become: true"


def vault_path(data_dir):
    return os.path.join(data_dir, "Vault", "Store", "RegistrationKey")


def detect(agent_path=None, service_name=None, snap_agent=SNAP_AGENT):
    """(agent_path, service_name, snap): the snap's binary when present, else the package's."""
    if not agent_path:
        agent_path = snap_agent if os.path.exists(snap_agent) else PACKAGE_AGENT
    snap = "/snap/" in agent_path
    if not service_name:
        service_name = SNAP_SERVICE if snap else PACKAGE_SERVICE
    return agent_path, service_name, snap


def is_executable(path):
    return os.path.isfile(path) and os.access(path, os.X_OK)


class UnreadableError(Exception):
    """A state file exists but cannot be read (permissions): the result would be a guess."""


def read_json(path):
    """The JSON object in ``path``; None when missing; {"__invalid__": reason} when not a JSON object."""
    try:
        with open(path) as handle:
            text = handle.read()
    except (IOError, OSError) as exc:
        if getattr(exc, "errno", None) == errno.ENOENT:
            return None
        raise UnreadableError("cannot read %s: %s" % (path, getattr(exc, "strerror", None) or exc)) from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        return {"__invalid__": "not JSON (%s)" % exc}
    if not isinstance(data, dict):
        return {"__invalid__": "not a JSON object"}
    return data


def read_registration(data_dir):
    """The registration as the Vault and the registration file say, plus warnings; never the private key."""
    warnings = []
    vault_file = vault_path(data_dir)
    vault = read_json(vault_file)
    if vault and "__invalid__" in vault:
        warnings.append("%s is %s: treated as not registered" % (vault_file, vault["__invalid__"]))
        vault = None
    instance_id = (vault or {}).get("instanceID") or None
    region = ((vault or {}).get("region") or None) if instance_id else None

    file_path = os.path.join(data_dir, "registration")
    raw = read_json(file_path)
    registration_file = None
    stale = False
    if raw is not None:
        if "__invalid__" in raw:
            warnings.append("%s is %s" % (file_path, raw["__invalid__"]))
            stale = True
        else:
            registration_file = {
                "instance_id": raw.get("ManagedInstanceID") or None,
                "region": raw.get("Region") or None,
            }
            stale = (
                instance_id is None
                or registration_file["instance_id"] != instance_id
                or (region is not None and registration_file["region"] != region)
            )
    return {
        "registered": instance_id is not None,
        "instance_id": instance_id,
        "region": region,
        "registration_file": registration_file,
        "registration_file_stale": stale,
    }, warnings


def host_registration(data_dir=DEFAULT_DATA_DIR, agent_path=None, service_name=None):
    """(state, warnings): the registration plus the agent's binary, unit, whether it is the snap and whether it is
    installed - the keys both modules return. Raises UnreadableError when a state file cannot be read."""
    agent_path, service_name, snap = detect(agent_path, service_name)
    state, warnings = read_registration(data_dir or DEFAULT_DATA_DIR)
    state.update(
        agent_path=agent_path,
        service_name=service_name,
        snap=snap,
        installed=is_executable(agent_path),
    )
    return state, warnings
