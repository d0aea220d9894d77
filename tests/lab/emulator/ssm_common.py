"""Shared plumbing of the lab emulator's SSM extensions: errors, clock, per-backend state, validation.

The SSM extensions (``ssm_ext`` and the ``ssm_*`` modules beside it) keep their state on moto's own
``SimpleSystemManagerBackend`` object of each account and region, so a moto reset (which rebuilds
every backend) forgets it together with moto's own SSM state.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from moto.core.exceptions import ServiceException
from moto.ssm.models import ssm_backends

try:  # the emulator's lab clock (honours a lab clock offset); absent while the emulator is being built
    from emulator import clock as _clock
except ImportError:  # pragma: no cover - depends on what else exists in the lab tree
    _clock = None

try:
    import labconst

    DEFAULT_REGION = labconst.REGION
except ImportError:  # pragma: no cover
    DEFAULT_REGION = "us-east-1"

LOG = logging.getLogger("emulator.ssm")

# One lock for all extension state: the moto server is threaded, state changes are tiny.
LOCK = threading.RLock()

STATE_ATTR = "_holab_ssm_state"


class SsmError(ServiceException):
    """An AWS JSON-protocol error (``{"__type": code, "message": ...}``, HTTP 400)."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(code, message)
        self.status = status


def validation_error(value: Any, member: str, constraint: str) -> SsmError:
    """The exact shape AWS uses for model-constraint failures."""
    return SsmError(
        "ValidationException",
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: "
        f"Member must {constraint}",
    )


def now() -> datetime:
    """Current time of the lab (timezone-aware)."""
    if _clock is not None:
        return _clock.now()
    return datetime.now(UTC)


def to_datetime(value: Any, member: str) -> datetime:
    """Parse a JSON-protocol timestamp (epoch number, or ISO 8601 string as some clients send)."""
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(float(value), tz=UTC)
    if isinstance(value, str):
        try:
            return datetime.fromtimestamp(float(value), tz=UTC)
        except ValueError:
            pass
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise validation_error(value, member, "be a timestamp") from exc
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise validation_error(value, member, "be a timestamp")


def iso(ts: datetime) -> str:
    """ISO 8601 with milliseconds and Z, the format SSM uses inside string fields."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def tags_to_dict(tags: Any, member: str = "tags") -> dict[str, str]:
    """Validate a TagList and return it as a dict."""
    if tags is None:
        return {}
    if not isinstance(tags, list) or len(tags) > 1000:
        raise validation_error(tags, member, "have length less than or equal to 1000")
    out: dict[str, str] = {}
    for tag in tags:
        key, value = tag.get("Key"), tag.get("Value")
        if not isinstance(key, str) or not 1 <= len(key) <= 128:
            raise validation_error(key, f"{member}.member.key", "have length between 1 and 128")
        if not isinstance(value, str) or len(value) > 256:
            raise validation_error(value, f"{member}.member.value", "have length less than or equal to 256")
        out[key] = value
    return out


def dict_to_tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def check_max_results(value: Any, low: int, high: int, default: int) -> int:
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        if isinstance(value, int) and value < low:
            raise validation_error(value, "maxResults", f"have value greater than or equal to {low}")
        raise validation_error(value, "maxResults", f"have value less than or equal to {high}")
    return value


def paginate(items: list[Any], max_results: int, next_token: str | None) -> tuple[list[Any], str | None]:
    """Slice ``items`` by an opaque offset token; a token we did not hand out is InvalidNextToken."""
    start = 0
    if next_token:
        try:
            decoded = base64.urlsafe_b64decode(next_token.encode()).decode()
            if not decoded.startswith("holab:"):
                raise ValueError(decoded)
            start = int(decoded[len("holab:") :])
            if start < 0:
                raise ValueError(start)
        except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
            raise SsmError("InvalidNextToken", "The specified token isn't valid.") from exc
    page = items[start : start + max_results]
    end = start + max_results
    token = base64.urlsafe_b64encode(f"holab:{end}".encode()).decode() if end < len(items) else None
    return page, token


_MAX_CONCURRENCY = re.compile(r"^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$")
_MAX_ERRORS = re.compile(r"^([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)$")


def check_rate_controls(params: dict[str, Any]) -> None:
    conc, errs = params.get("MaxConcurrency"), params.get("MaxErrors")
    if conc is not None and not (isinstance(conc, str) and _MAX_CONCURRENCY.match(conc)):
        raise validation_error(
            conc, "maxConcurrency", f"satisfy regular expression pattern: {_MAX_CONCURRENCY.pattern}"
        )
    if errs is not None and not (isinstance(errs, str) and _MAX_ERRORS.match(errs)):
        raise validation_error(
            errs, "maxErrors", f"satisfy regular expression pattern: {_MAX_ERRORS.pattern}"
        )


def rate_limit(value: str, total: int) -> int:
    """Absolute number for a MaxConcurrency / MaxErrors value ("10" or "25%") over ``total`` targets."""
    if value.endswith("%"):
        pct = int(value[:-1])
        return max(1, -(-total * pct // 100)) if pct else 0
    return int(value)


@dataclass
class Activation:
    activation_id: str
    code: str
    description: str
    default_instance_name: str
    iam_role: str
    registration_limit: int
    expiration: datetime
    created: datetime
    tags: dict[str, str]
    registrations: int = 0

    def expired(self) -> bool:
        return now() >= self.expiration


@dataclass
class ManagedInstance:
    instance_id: str
    activation_id: str
    iam_role: str
    name: str
    registration_date: datetime
    public_key: Any  # cryptography RSA public key
    fingerprint: str
    tags: dict[str, str] = field(default_factory=dict)
    access_keys: set[str] = field(default_factory=set)
    last_ping: datetime | None = None
    agent_name: str | None = None
    agent_version: str | None = None
    platform_type: str | None = None
    platform_name: str | None = None
    platform_version: str | None = None
    ip_address: str | None = None
    computer_name: str | None = None


@dataclass
class SsmState:
    """Everything the extensions add to one account+region."""

    account_id: str
    region: str
    activations: dict[str, Activation] = field(default_factory=dict)
    instances: dict[str, ManagedInstance] = field(default_factory=dict)
    associations: dict[str, Any] = field(default_factory=dict)  # AssociationId -> ssm_statemgr.Association
    data_syncs: dict[str, dict[str, Any]] = field(default_factory=dict)
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    commands: dict[str, Any] = field(default_factory=dict)  # CommandId -> ssm_commands.Command (ordered)
    inventory: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # instance -> type -> item


def moto_backend(account_id: str, region: str) -> Any:
    return ssm_backends[account_id][region]


def state_of(backend: Any) -> SsmState:
    """Extension state stored on a moto SSM backend (created on first use)."""
    with LOCK:
        st = backend.__dict__.get(STATE_ATTR)
        if st is None:
            st = SsmState(account_id=backend.account_id, region=backend.region_name)
            backend.__dict__[STATE_ATTR] = st
        return st


def state_for(account_id: str, region: str) -> SsmState:
    return state_of(moto_backend(account_id, region))


def existing_states(region: str) -> list[SsmState]:
    """States of every account that already has an SSM backend in ``region`` (creates none)."""
    out = []
    for account_backends in list(ssm_backends.values()):
        backend = dict.get(account_backends, region)
        if backend is not None and STATE_ATTR in backend.__dict__:
            out.append(backend.__dict__[STATE_ATTR])
    return out


def find_instance(region: str, instance_id: str) -> tuple[SsmState, ManagedInstance] | None:
    for st in existing_states(region):
        inst = st.instances.get(instance_id)
        if inst is not None:
            return st, inst
    return None


def ping_timeout() -> float:
    """Seconds after the last heartbeat that a node still counts as Online (lab setting)."""
    import os

    raw = os.environ.get("HYBRID_LAB_PING_TIMEOUT", "60")
    try:
        return float(raw)
    except ValueError:
        LOG.warning("HYBRID_LAB_PING_TIMEOUT=%r is not a number; using 60", raw)
        return 60.0


def ping_status(inst: ManagedInstance) -> str:
    # "Inactive" is deprecated by AWS; a node that never pinged is reported as ConnectionLost.
    if inst.last_ping is None:
        return "ConnectionLost"
    age = (now() - inst.last_ping).total_seconds()
    return "Online" if age <= ping_timeout() else "ConnectionLost"
