"""Lab stand-in for amazon-ssm-agent: registration CLI, Vault files, and the agent daemon.

A test double, never the product. What the product touches behaves like the real agent: the
``-register/-clear/-fingerprint/-version`` CLI and its messages, the Vault
(``/var/lib/amazon/ssm/Vault/Store/RegistrationKey``, ``Vault/Manifest``), the stale-able
``/var/lib/amazon/ssm/registration`` file, ``/root/.aws/credentials`` sharing, heartbeats and
Run Command (wire protocol: tests/lab/PROTOCOL.md). Runs on Debian hosts with python3 + openssl only.
"""

from __future__ import annotations

import base64
import concurrent.futures
import datetime as _dt
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import labaws
from labaws import AwsError, Credentials, RequestError, root_path

DEFAULT_VERSION = "3.3.1957.0"
CONFIG = "/etc/amazon/ssm/amazon-ssm-agent.json"
TEMPLATE = "/etc/amazon/ssm/amazon-ssm-agent.json.template"
SSM_DIR = "/var/lib/amazon/ssm"
VAULT_DIR = f"{SSM_DIR}/Vault"
REGISTRATION_KEY = f"{VAULT_DIR}/Store/RegistrationKey"
FINGERPRINT_KEY = f"{VAULT_DIR}/Store/InstanceFingerprint"
MANIFEST = f"{VAULT_DIR}/Manifest"
REGISTRATION_FILE = f"{SSM_DIR}/registration"
LOG_DIR = "/var/log/amazon/ssm"
SHARED_CREDENTIALS = "/root/.aws/credentials"
LIB_DIR = "/usr/share/amazon-ssm-agent-lab"
SIGNING_KEY = f"{LIB_DIR}/lab-agent-signing.gpg"
OUTPUT_LIMIT = 24000
REPLIES_DIR = "replies"
TIMEOUT_RC = 124  # a step that ran out of time (reported as status TimedOut)

log = logging.getLogger("amazon-ssm-agent")


def version() -> str:
    """The packaged version (VERSION beside this module, written by the lab build)."""
    try:
        with open(
            os.path.join(os.path.dirname(os.path.abspath(__file__)), "VERSION"), encoding="utf-8"
        ) as fh:
            return fh.read().strip() or DEFAULT_VERSION
    except OSError:
        return DEFAULT_VERSION


# --- Configuration -------------------------------------------------------------------------------

_FALLBACK_CONFIG = {
    "Profile": {"ShareCreds": True, "ShareProfile": "", "ForceUpdateCreds": False},
    "Mds": {"CommandWorkersLimit": 5, "Endpoint": ""},
    "Ssm": {"Endpoint": ""},
    "Agent": {"Region": ""},
    "S3": {"Endpoint": "", "Region": ""},
}


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = (
            _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


def load_config() -> dict:
    """Template defaults overlaid with amazon-ssm-agent.json, as the real agent reads them."""
    config = dict(_FALLBACK_CONFIG)
    for path in (TEMPLATE, CONFIG):
        try:
            with open(root_path(path), encoding="utf-8") as fh:
                config = _merge(config, json.load(fh))
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as exc:
            # The real agent also logs and carries on with defaults on a broken config file.
            log.error("Error occurred while reading configuration %s: %s; using defaults", path, exc)
    return config


# --- Vault ----------------------------------------------------------------------------------------


def load_registration() -> dict | None:
    """The Vault RegistrationKey (authoritative), or None when not registered."""
    try:
        with open(root_path(REGISTRATION_KEY), encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if data.get("instanceID") else None


def _write_manifest() -> None:
    store = root_path(f"{VAULT_DIR}/Store")
    entries = {name: name for name in sorted(os.listdir(store))} if os.path.isdir(store) else {}
    labaws.atomic_write(root_path(MANIFEST), json.dumps(entries).encode(), 0o600)


def load_fingerprint() -> dict:
    """The instance fingerprint, created on first use (hardware hash + similarity threshold)."""
    path = root_path(FINGERPRINT_KEY)
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        if data.get("fingerprint"):
            return data
    except (OSError, ValueError):
        pass
    hardware = {"hostname": socket.gethostname(), "machine-id": _read(root_path("/etc/machine-id")).strip()}
    data = {"fingerprint": str(uuid.uuid4()), "hardwareHash": hardware, "similarityThreshold": 40}
    _save_fingerprint(data)
    return data


def _save_fingerprint(data: dict) -> None:
    os.makedirs(root_path(f"{VAULT_DIR}/Store"), mode=0o700, exist_ok=True)
    labaws.atomic_write(root_path(FINGERPRINT_KEY), json.dumps(data).encode(), 0o600)
    _write_manifest()


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError:
        return ""


# --- RSA key handling (openssl CLI: the hosts have no Python crypto library) -------------------------


def _openssl(args: list[str], data: bytes = b"") -> bytes:
    proc = subprocess.run(["openssl", *args], input=data, capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


def generate_keypair() -> tuple[str, str]:
    """(private key as base64 PKCS#1 DER like the Go agent stores it, public key as base64 SPKI DER)."""
    pem = _openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
    private_der = _openssl(["rsa", "-traditional", "-outform", "DER"], pem)
    public_der = _openssl(["pkey", "-pubout", "-outform", "DER"], pem)
    return base64.b64encode(private_der).decode(), base64.b64encode(public_der).decode()


def rsa_sign(private_key_b64: str, data: bytes) -> str:
    """base64 RSA-SHA256 (PKCS#1 v1.5) signature of `data`, via ``openssl dgst -sha256 -sign``."""
    der = base64.b64decode(private_key_b64)
    body = base64.encodebytes(der).decode()
    pem = f"-----BEGIN RSA PRIVATE KEY-----\n{body}-----END RSA PRIVATE KEY-----\n"
    tmpdir = tempfile.mkdtemp(prefix="ssm-sign-")  # 0700: the key never sits world-readable
    try:
        key_file = os.path.join(tmpdir, "key.pem")
        with open(os.open(key_file, os.O_WRONLY | os.O_CREAT, 0o600), "w", encoding="ascii") as fh:
            fh.write(pem)
        return base64.b64encode(_openssl(["dgst", "-sha256", "-sign", key_file], data)).decode()
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


# --- Endpoints --------------------------------------------------------------------------------------


def ssm_url(config: dict, region: str) -> str:
    return labaws.service_url("ssm", region, config.get("Ssm", {}).get("Endpoint", ""))


def mds_url(config: dict, region: str) -> str:
    return labaws.service_url("ec2messages", region, config.get("Mds", {}).get("Endpoint", ""))


def s3_url(config: dict, region: str) -> str:
    return labaws.service_url("s3", region, config.get("S3", {}).get("Endpoint", ""))


# --- CLI ---------------------------------------------------------------------------------------------

_BOOL_FLAGS = {"register", "clear", "y", "version", "fingerprint", "help", "h"}
_VALUE_FLAGS = {"code", "id", "region", "similarityThreshold", "tags"}

USAGE = """Usage of amazon-ssm-agent:
  -clear
        Clears the previously saved SSM registration
  -code string
        Activation Code
  -fingerprint
        Whether to set the similarity threshold
  -id string
        Activation ID
  -region string
        Region
  -register
        Registers with AWS SSM
  -similarityThreshold int
        Similarity threshold for the instance fingerprint (default -1)
  -version
        Displays current agent version
  -y    Yes, update registration with new values
"""


class UsageError(Exception):
    """Bad command line (Go's flag package prints the message then the usage, exit 2)."""


def parse_args(argv: list[str]) -> dict:
    """Go-``flag``-style parsing: ``-flag``, ``--flag``, ``-flag value``, ``-flag=value``."""
    opts: dict = {}
    i = 0
    while i < len(argv):
        token = argv[i]
        if not token.startswith("-") or token in ("-", "--"):
            break  # Go's flag stops at the first non-flag argument
        name, eq, value = token.lstrip("-").partition("=")
        if name in _BOOL_FLAGS:
            opts[name] = value.lower() not in ("false", "0") if eq else True
        elif name in _VALUE_FLAGS:
            if not eq:
                i += 1
                if i >= len(argv):
                    raise UsageError(f"flag needs an argument: -{name}")
                value = argv[i]
            opts[name] = value
        else:
            raise UsageError(f"flag provided but not defined: -{name}")
        i += 1
    return opts


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        opts = parse_args(argv)
    except UsageError as exc:
        sys.stderr.write(f"{exc}\n{USAGE}")
        return 2
    if opts.get("help") or opts.get("h"):
        sys.stdout.write(USAGE)
        return 0
    if opts.get("version"):
        print(f"SSM Agent version: {version()}")
        return 0
    _setup_logging(console=bool(opts))
    if opts.get("register"):
        # As the real agent's processRegistration: without code, id and region, -clear clears the registration.
        if opts.get("clear") and not (opts.get("code") and opts.get("id") and opts.get("region")):
            return clear()
        return register(opts.get("code", ""), opts.get("id", ""), opts.get("region", ""), bool(opts.get("y")))
    if opts.get("fingerprint"):
        return set_similarity_threshold(opts.get("similarityThreshold", ""))
    if opts:
        sys.stderr.write(USAGE)
        return 1
    return Agent(load_config()).run()


def _setup_logging(console: bool) -> None:
    if log.handlers:
        return
    try:
        labaws.setup_file_logging(
            "amazon-ssm-agent",
            root_path(f"{LOG_DIR}/amazon-ssm-agent.log"),
            root_path(f"{LOG_DIR}/errors.log"),
        )
    except OSError as exc:
        sys.stderr.write(f"cannot open agent log files: {exc}\n")
    if not console:
        log.addHandler(logging.StreamHandler(sys.stderr))  # the daemon: stderr goes to the journal


def register(code: str, activation_id: str, region: str, force: bool) -> int:
    """``-register``: RegisterManagedInstance, then write the Vault and the registration file."""
    if not (code and activation_id and region):
        sys.stderr.write(USAGE)
        return 1
    current = load_registration()
    if current and not force:
        sys.stdout.write(
            f"\nInstance already registered with ID {current['instanceID']}.\n"
            "Do you want to override the existing registration? [Yes/No]\n"
        )
        sys.stdout.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("yes", "y"):
            print("Registration cancelled by user; keeping the existing registration.")
            log.info("Registration cancelled by user")
            return 1
    config = load_config()
    region = config.get("Agent", {}).get("Region") or region
    try:
        fingerprint = load_fingerprint()["fingerprint"]
        private_key, public_key = generate_keypair()
        response = labaws.json_call(
            ssm_url(config, region),
            "AmazonSSM.RegisterManagedInstance",
            {
                "ActivationCode": code,
                "ActivationId": activation_id,
                "PublicKey": public_key,
                "PublicKeyType": "Rsa",
                "Fingerprint": fingerprint,
            },
            region=region,
            service="ssm",
        )
        instance_id = response["InstanceId"]
    except (AwsError, RequestError, RuntimeError, KeyError, OSError) as exc:
        cause = str(exc) if not isinstance(exc, KeyError) else f"malformed response, missing {exc}"
        message = f"Registration failed due to error registering the instance with AWS SSM. {cause}"
        print(message)
        log.error(message)
        return 1
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    key = {
        "instanceID": instance_id,
        "privateKey": private_key,
        "privateKeyType": "Rsa",
        "privateKeyCreatedDate": now,
        "region": region,
        "availabilityZone": "",
        "availabilityZoneId": "",
        "instanceType": "",
        "reservedPrivateKey": "",
        "reservedPrivateKeyType": "",
        "reservedPrivateKeyCreatedDate": "",
    }
    os.makedirs(root_path(f"{VAULT_DIR}/Store"), mode=0o700, exist_ok=True)
    os.chmod(root_path(VAULT_DIR), 0o700)
    labaws.atomic_write(root_path(REGISTRATION_KEY), json.dumps(key).encode(), 0o600)
    _write_manifest()
    labaws.atomic_write(
        root_path(REGISTRATION_FILE),
        json.dumps({"ManagedInstanceID": instance_id, "Region": region}).encode(),
        0o644,
    )
    message = f"Successfully registered the instance with AWS SSM using Managed instance-id: {instance_id}"
    print(message)
    log.info(message)
    return 0


def clear() -> int:
    """``-register -clear``: drop the Vault. Like the real agent, the registration file stays (and goes stale)."""
    vault = root_path(VAULT_DIR)
    try:
        if os.path.isdir(vault):
            shutil.rmtree(vault)
    except OSError as exc:
        print(f"Error occurred while clearing registration: {exc}")
        return 1
    message = "Registration information has been removed from the instance."
    print(message)
    log.info(message)
    return 0


def set_similarity_threshold(value: str) -> int:
    """``-fingerprint -similarityThreshold N`` (1..100)."""
    try:
        threshold = int(value)
        if not 1 <= threshold <= 100:
            raise ValueError
    except ValueError:
        print(f"Invalid similarity threshold {value!r}: must be an integer between 1 and 100")
        return 1
    data = load_fingerprint()
    data["similarityThreshold"] = threshold
    _save_fingerprint(data)
    print(f"Similarity threshold set to {threshold}")
    return 0


# --- Daemon ------------------------------------------------------------------------------------------


class Agent:
    """The long-running agent: role token, shared credentials, heartbeats, Run Command."""

    def __init__(self, config: dict):
        self.config = config
        self.stop = threading.Event()
        self.heartbeat_every = float(os.environ.get("HYBRID_LAB_AGENT_HEARTBEAT", "10"))
        self.poll_every = float(os.environ.get("HYBRID_LAB_AGENT_POLL", "3"))
        workers = int(config.get("Mds", {}).get("CommandWorkersLimit") or 5)
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers))
        self.in_flight: set[str] = set()
        self.lock = threading.Lock()
        self.instance_id = ""
        self.region = ""
        self.creds: Credentials | None = None
        self.refresh_at = 0.0
        self.next_heartbeat = 0.0
        self.next_poll = 0.0

    def run(self) -> int:
        signal.signal(signal.SIGTERM, lambda *_: self.stop.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop.set())
        log.info("amazon-ssm-agent - v%s (lab stand-in) starting", version())
        unregistered_logged = 0.0
        while not self.stop.is_set():
            reg = load_registration()
            if reg is None:
                if time.monotonic() - unregistered_logged > 300 or not unregistered_logged:
                    log.warning(
                        "Agent is not registered: %s not found. Register with amazon-ssm-agent -register; "
                        "waiting",
                        REGISTRATION_KEY,
                    )
                    unregistered_logged = time.monotonic()
                self.instance_id, self.creds = "", None
                self.stop.wait(5)
                continue
            unregistered_logged = 0.0
            if reg["instanceID"] != self.instance_id:
                log.info("Managed instance-id %s, region %s", reg["instanceID"], reg.get("region"))
                self.instance_id, self.region, self.creds = reg["instanceID"], reg.get("region", ""), None
                self.next_heartbeat = self.next_poll = 0.0
            try:
                self.tick(reg)
            except (AwsError, RequestError, OSError, RuntimeError, ValueError) as exc:
                log.error("%s", exc)
                if isinstance(exc, AwsError) and exc.code in _AUTH_ERRORS:
                    self.creds = None  # fetch a fresh role token next round
                self.stop.wait(5)
                continue
            self.stop.wait(1)
        log.info("amazon-ssm-agent stopping")
        self.pool.shutdown(wait=False, cancel_futures=True)
        return 0

    def tick(self, reg: dict) -> None:
        now = time.monotonic()
        if self.creds is None or now >= self.refresh_at:
            self.refresh_token(reg)
        if now >= self.next_heartbeat:
            self.heartbeat()
            self.next_heartbeat = now + self.heartbeat_every
        if now >= self.next_poll:
            self.send_failed_replies()
            self.poll_messages()
            self.next_poll = now + self.poll_every

    def refresh_token(self, reg: dict) -> None:
        body = json.dumps({"Fingerprint": load_fingerprint()["fingerprint"]}).encode()
        signature = rsa_sign(reg["privateKey"], body)
        url = ssm_url(self.config, self.region).rstrip("/") + "/"
        headers = {
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "AmazonSSM.RequestManagedInstanceRoleToken",
            "X-Amz-Date": _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ"),
            "Authorization": f"SSM-RSA InstanceId={reg['instanceID']}, Signature={signature}",
        }
        status, _headers, data = labaws.http_request("POST", url, headers, body)
        if status >= 300:
            raise labaws._parse_error(status, data)
        token = json.loads(data)
        self.creds = Credentials(token["AccessKeyId"], token["SecretAccessKey"], token["SessionToken"])
        lifetime = float(token.get("TokenExpirationDate", time.time() + 3600)) - time.time()
        # Refresh at half-life (the real agent rotates about every 30 min of a 1 h token); clamp
        # because the emulator's clock may be shifted relative to ours.
        self.refresh_at = time.monotonic() + min(max(lifetime / 2, 30.0), 1800.0)
        log.info("Retrieved role credentials for %s", reg["instanceID"])
        self.share_credentials()

    def share_credentials(self) -> None:
        profile = self.config.get("Profile", {})
        if not profile.get("ShareCreds", True) or self.creds is None:
            return
        name = profile.get("ShareProfile") or "default"
        labaws.write_profile(
            root_path(SHARED_CREDENTIALS),
            name,
            {
                "aws_access_key_id": self.creds.access_key,
                "aws_secret_access_key": self.creds.secret_key,
                "aws_session_token": self.creds.token or "",
            },
        )
        log.info("Shared credentials written to %s [%s]", SHARED_CREDENTIALS, name)

    def call(self, url: str, target: str, payload: dict, service: str) -> dict:
        return labaws.json_call(url, target, payload, region=self.region, service=service, creds=self.creds)

    def heartbeat(self) -> None:
        osr = labaws.read_os_release()
        host = f"ssm.{self.region}.amazonaws.com"
        self.call(
            ssm_url(self.config, self.region),
            "AmazonSSM.UpdateInstanceInformation",
            {
                "InstanceId": self.instance_id,
                "AgentName": "amazon-ssm-agent",
                "AgentVersion": version(),
                "AgentStatus": "Active",
                "PlatformType": "Linux",
                "PlatformName": osr.get("NAME", "Linux"),
                "PlatformVersion": osr.get("VERSION_ID", ""),
                "IPAddress": labaws.primary_ip(host),
                "ComputerName": socket.gethostname(),
            },
            "ssm",
        )
        log.debug("Heartbeat sent")

    def poll_messages(self) -> None:
        response = self.call(
            mds_url(self.config, self.region),
            "EC2WindowsMessageDeliveryService.GetMessages",
            {
                "Destination": self.instance_id,
                "MessagesRequestId": str(uuid.uuid4()),
                "VisibilityTimeoutInSeconds": 10,
            },
            "ec2messages",
        )
        for message in response.get("Messages") or []:
            message_id = message.get("MessageId", "")
            with self.lock:
                if message_id in self.in_flight:
                    continue
                self.in_flight.add(message_id)
            self.pool.submit(self._process, message)

    def _process(self, message: dict) -> None:
        message_id = message["MessageId"]
        try:
            self.call(
                mds_url(self.config, self.region),
                "EC2WindowsMessageDeliveryService.AcknowledgeMessage",
                {"MessageId": message_id},
                "ec2messages",
            )
            try:
                payload = json.loads(message.get("Payload") or "{}")
                status, out, err, rc = Commands(self).execute(payload)
            except Exception as exc:  # noqa: BLE001 - a plugin crash must still produce a reply
                log.exception("command %s crashed", message_id)
                status, out, err, rc = "Failed", "", f"internal error: {exc}", 1
            log.info("Command %s finished: %s (rc=%s)", message_id, status, rc)
            self.send_reply(
                {
                    "MessageId": message_id,
                    "ReplyId": str(uuid.uuid4()),
                    "Payload": json.dumps(
                        {
                            "status": status,
                            "standardOutput": out[-OUTPUT_LIMIT:],
                            "standardError": err[-OUTPUT_LIMIT:],
                            "responseCode": rc,
                        }
                    ),
                }
            )
        except (AwsError, RequestError) as exc:
            log.error("Failed to process message %s: %s", message_id, exc)
        finally:
            with self.lock:
                self.in_flight.discard(message_id)

    # -- replies that could not reach the service: kept on disk and sent again, as the real agent's
    #    <data store>/<instance id>/replies/<ReplyId>_<time> files (the service drops a ReplyId it has seen).
    def _replies_dir(self) -> str:
        return root_path(f"{SSM_DIR}/{self.instance_id}/{REPLIES_DIR}")

    def _send_reply(self, reply: dict) -> None:
        self.call(mds_url(self.config, self.region), "EC2WindowsMessageDeliveryService.SendReply", reply, "ec2messages")

    def send_reply(self, reply: dict) -> None:
        try:
            self._send_reply(reply)
        except (AwsError, RequestError) as exc:
            log.error("SendReply Error: %s", exc)
            directory = self._replies_dir()
            os.makedirs(directory, mode=0o700, exist_ok=True)
            name = f"{reply['ReplyId']}_{_dt.datetime.now(_dt.UTC).strftime('%Y-%m-%dT%H-%M-%S')}"
            fd = os.open(os.path.join(directory, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(reply, fh, indent=2)
            log.info("Saving reply %s to local disk", reply["ReplyId"])

    def send_failed_replies(self) -> None:
        directory = self._replies_dir()
        try:
            names = sorted(os.listdir(directory))
        except FileNotFoundError:
            return
        for name in names:
            path = os.path.join(directory, name)
            try:
                with open(path, encoding="utf-8") as fh:
                    reply = json.load(fh)
            except (OSError, ValueError) as exc:
                log.error("Dropping unreadable saved reply %s: %s", path, exc)
                os.remove(path)
                continue
            try:
                self._send_reply(reply)
            except AwsError as exc:
                if exc.code not in _REPLY_GONE:
                    log.error("Saved reply %s not sent yet: %s", reply.get("ReplyId"), exc)
                    return
                log.warning("Dropping saved reply %s: %s", reply.get("ReplyId"), exc)
            except RequestError as exc:
                log.error("Saved reply %s not sent yet: %s", reply.get("ReplyId"), exc)
                return
            else:
                log.info("Sent saved reply %s for %s", reply.get("ReplyId"), reply.get("MessageId"))
            os.remove(path)


# The service will never take these replies (the message is unknown or the reply malformed): sending again is no use.
_REPLY_GONE = {"InvalidMessageId", "ValidationException"}

_AUTH_ERRORS = {
    "ExpiredTokenException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "AccessDeniedException",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
}

# --- Run Command plugins -------------------------------------------------------------------------

_DEFAULT_STEPS = {
    "AWS-RunShellScript": [
        {
            "action": "aws:runShellScript",
            "inputs": {
                "runCommand": "{{ commands }}",
                "workingDirectory": "{{ workingDirectory }}",
                "timeoutSeconds": "{{ executionTimeout }}",
            },
        },
    ],
    "AWS-ConfigureAWSPackage": [
        {
            "action": "aws:configurePackage",
            "inputs": {"name": "{{ name }}", "action": "{{ action }}", "version": "{{ version }}"},
        },
    ],
    "AWS-UpdateSSMAgent": [
        {
            "action": "aws:updateSsmAgent",
            "inputs": {"agentName": "amazon-ssm-agent", "targetVersion": "{{ version }}"},
        },
    ],
    "AWS-GatherSoftwareInventory": [
        {"action": "aws:softwareInventory", "inputs": {"applications": "{{ applications }}"}},
    ],
}
_PARAM_RE = re.compile(r"\{\{\s*([A-Za-z0-9_.:-]+)\s*\}\}")


def _substitute(value, params: dict):
    """Replace ``{{ name }}`` with the command's parameter values (a whole-value list stays a list)."""
    if isinstance(value, str):
        whole = _PARAM_RE.fullmatch(value.strip())
        if whole:
            return params.get(whole.group(1))
        return _PARAM_RE.sub(lambda m: "\n".join(map(str, _as_list(params.get(m.group(1))))), value)
    if isinstance(value, list):
        return [_substitute(v, params) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, params) for k, v in value.items()}
    return value


def _as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _first(value, default: str = "") -> str:
    items = [v for v in _as_list(value) if v not in (None, "")]
    return str(items[0]) if items else default


class Commands:
    """Executes one SendCommand payload step by step, like the agent's document worker."""

    def __init__(self, agent: Agent):
        self.agent = agent

    def execute(self, payload: dict) -> tuple[str, str, str, int]:
        params = payload.get("Parameters") or {}
        content = payload.get("DocumentContent") or {}
        if isinstance(content, str):
            content = json.loads(content or "{}")
        steps = list(content.get("mainSteps") or [])
        # schemaVersion 1.2: runtimeConfig {plugin: {"properties": [one step's inputs, ...]}}
        for action, config in (content.get("runtimeConfig") or {}).items():
            props = config.get("properties", config) if isinstance(config, dict) else config
            for prop in props if isinstance(props, list) else [props]:
                steps.append({"action": action, "name": prop.get("id", action), "inputs": prop})
        if not steps:
            steps = _DEFAULT_STEPS.get(payload.get("DocumentName", ""), [])
        if not steps:
            return (
                "Failed",
                "",
                f"document {payload.get('DocumentName')!r} has no steps the lab agent runs",
                1,
            )
        outs, errs, rc = [], [], 0
        for index, step in enumerate(steps):
            inputs = _substitute(step.get("inputs") or {}, params)
            handler = _PLUGINS.get(step.get("action", ""))
            if handler is None:
                errs.append(f"Step {step.get('name', index)}: plugin {step.get('action')} is not supported")
                rc = 1
                break
            s_rc, s_out, s_err = handler(self, payload, inputs)
            outs.append(s_out)
            errs.append(s_err)
            if s_rc != 0:
                rc = s_rc
                break
        status = "Success" if rc == 0 else ("TimedOut" if rc == TIMEOUT_RC else "Failed")
        return status, "".join(outs), "".join(errs), rc

    # -- aws:runShellScript
    def run_shell(self, payload: dict, inputs: dict) -> tuple[int, str, str]:
        lines = [str(line) for line in _as_list(inputs.get("runCommand"))]
        timeout = int(_first(inputs.get("timeoutSeconds"), "3600"))
        workdir = _first(inputs.get("workingDirectory")) or None
        orchestration = root_path(
            f"{SSM_DIR}/{self.agent.instance_id}/document/orchestration/{payload.get('CommandId', 'local')}"
            "/awsrunShellScript/0.awsrunShellScript"
        )
        os.makedirs(orchestration, mode=0o700, exist_ok=True)
        script = os.path.join(orchestration, "_script.sh")
        with open(script, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
        try:
            proc = subprocess.run(
                ["bash", script], cwd=workdir, capture_output=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            out = (exc.stdout or b"").decode(errors="replace")
            return (
                TIMEOUT_RC,
                out,
                f"{(exc.stderr or b'').decode(errors='replace')}\nCommand execution timed out\n",
            )
        except OSError as exc:
            return 1, "", f"failed to run commands: {exc}\n"
        err = proc.stderr.decode(errors="replace")
        if proc.returncode != 0:
            err += f"failed to run commands: exit status {proc.returncode}\n"
        return proc.returncode, proc.stdout.decode(errors="replace"), err

    # -- shared download + verify
    def _download(self, bucket: str, key: str, dest_dir: str) -> str:
        url = f"{s3_url(self.agent.config, self.agent.region).rstrip('/')}/{bucket}/{key}"
        status, _headers, data = labaws.http_request("GET", url)
        if status != 200:
            raise RuntimeError(
                f"download of {url} failed: HTTP {status} {data[:200].decode(errors='replace')}"
            )
        path = os.path.join(dest_dir, os.path.basename(key))
        with open(path, "wb") as fh:
            fh.write(data)
        return path

    def _fetch_verified(self, bucket: str, key: str, dest_dir: str) -> str:
        deb = self._download(bucket, key, dest_dir)
        sig = self._download(bucket, key + ".sig", dest_dir)
        keyring = root_path(SIGNING_KEY)
        proc = subprocess.run(["gpgv", "--keyring", keyring, sig, deb], capture_output=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(
                f"signature verification of {key} failed: {proc.stderr.decode(errors='replace').strip()}"
            )
        return deb

    # -- aws:configurePackage
    def configure_package(self, payload: dict, inputs: dict) -> tuple[int, str, str]:
        name = _first(inputs.get("name"))
        action = _first(inputs.get("action"), "Install")
        wanted = _first(inputs.get("version"), "latest")
        if name != "AmazonCloudWatchAgent":
            return 1, "", f"Package {name!r} is not available in the lab (only AmazonCloudWatchAgent)\n"
        if action == "Uninstall":
            proc = subprocess.run(["dpkg", "-r", "amazon-cloudwatch-agent"], capture_output=True, check=False)
            out = proc.stdout.decode(errors="replace")
            if proc.returncode != 0:
                return proc.returncode, out, proc.stderr.decode(errors="replace")
            return 0, out + "Successfully uninstalled AmazonCloudWatchAgent\n", ""
        if action != "Install":
            return 1, "", f"Invalid action {action!r}: use Install or Uninstall\n"
        region = self.agent.region
        key = f"debian/amd64/{wanted}/amazon-cloudwatch-agent.deb"
        workdir = tempfile.mkdtemp(prefix="configurepackage-")
        try:
            deb = self._fetch_verified(f"amazoncloudwatch-agent-{region}", key, workdir)
            new_version = _deb_field(deb, "Version")
            if _installed_version("amazon-cloudwatch-agent") == new_version:
                return 0, f"AmazonCloudWatchAgent {new_version} is already installed\n", ""
            proc = subprocess.run(["dpkg", "--force-confold", "-i", deb], capture_output=True, check=False)
            out = proc.stdout.decode(errors="replace")
            if proc.returncode != 0:
                return (
                    proc.returncode,
                    out,
                    proc.stderr.decode(errors="replace") + "Failed to install package\n",
                )
            return 0, out + f"Successfully installed AmazonCloudWatchAgent {new_version}\n", ""
        except (RuntimeError, RequestError, OSError) as exc:
            return 1, "", f"Failed to install package; {exc}\n"
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    # -- aws:updateSsmAgent
    def update_agent(self, payload: dict, inputs: dict) -> tuple[int, str, str]:
        region = self.agent.region
        bucket = f"amazon-ssm-{region}"
        current = version()
        try:
            url = f"{s3_url(self.agent.config, region).rstrip('/')}/{bucket}/latest/VERSION"
            status, _headers, data = labaws.http_request("GET", url)
            if status != 200:
                raise RuntimeError(f"download of {url} failed: HTTP {status}")
            target = _first(inputs.get("targetVersion")) or data.decode().strip()
            if _version_tuple(target) <= _version_tuple(current):
                return 0, f"amazon-ssm-agent {current} has already been installed, update skipped\n", ""
            update_dir = root_path(f"{SSM_DIR}/update/{target}")
            os.makedirs(update_dir, exist_ok=True)
            deb = self._fetch_verified(bucket, f"{target}/debian_amd64/amazon-ssm-agent.deb", update_dir)
        except (RuntimeError, RequestError, OSError) as exc:
            return 1, "", f"Failed to update amazon-ssm-agent: {exc}\n"
        # dpkg's postinst restarts this very service; run it outside our cgroup so it survives.
        cmd = ["dpkg", "--force-confold", "-i", deb]
        if shutil.which("systemd-run") and os.path.isdir("/run/systemd/system"):
            cmd = [
                "systemd-run",
                "--no-block",
                "--collect",
                f"--unit=amazon-ssm-agent-update-{int(time.time())}",
                *cmd,
            ]
        proc = subprocess.run(cmd, capture_output=True, check=False)
        if proc.returncode != 0:
            return proc.returncode, "", proc.stderr.decode(errors="replace")
        return 0, f"Updating amazon-ssm-agent from {current} to {target}\nUpdate initiated\n", ""

    # -- aws:softwareInventory
    def software_inventory(self, payload: dict, inputs: dict) -> tuple[int, str, str]:
        if _first(inputs.get("applications"), "Enabled") != "Enabled":
            return 0, "Application inventory disabled\n", ""
        fmt = (
            "${Package}\\t${Version}\\t${Architecture}\\t${Maintainer}\\t${binary:Summary}"
            "\\t${db:Status-Status}\\n"
        )
        proc = subprocess.run(["dpkg-query", "-W", "-f", fmt], capture_output=True, check=False)
        if proc.returncode != 0:
            return 1, "", proc.stderr.decode(errors="replace")
        content = []
        for line in proc.stdout.decode(errors="replace").splitlines():
            fields = line.split("\t")
            if len(fields) < 6 or fields[5] != "installed":
                continue
            content.append(
                {
                    "Name": fields[0],
                    "Version": fields[1],
                    "Architecture": fields[2],
                    "Publisher": fields[3],
                    "Summary": fields[4],
                    "ApplicationType": "",
                    "PackageId": f"{fields[0]}_{fields[1]}_{fields[2]}.deb",
                }
            )
        capture = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        item = {
            "TypeName": "AWS:Application",
            "SchemaVersion": "1.1",
            "CaptureTime": capture,
            "ContentHash": hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest(),
            "Content": content,
        }
        try:
            self.agent.call(
                ssm_url(self.agent.config, self.agent.region),
                "AmazonSSM.PutInventory",
                {"InstanceId": self.agent.instance_id, "Items": [item]},
                "ssm",
            )
        except (AwsError, RequestError) as exc:
            return 1, "", f"PutInventory failed: {exc}\n"
        return 0, f"Gathered {len(content)} applications\n", ""


_PLUGINS = {
    "aws:runShellScript": Commands.run_shell,
    "aws:configurePackage": Commands.configure_package,
    "aws:updateSsmAgent": Commands.update_agent,
    "aws:softwareInventory": Commands.software_inventory,
}


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text))


def _deb_field(deb: str, field: str) -> str:
    return (
        subprocess.run(["dpkg-deb", "-f", deb, field], capture_output=True, check=True)
        .stdout.decode()
        .strip()
    )


def _installed_version(package: str) -> str:
    proc = subprocess.run(
        ["dpkg-query", "-W", "-f", "${db:Status-Status} ${Version}", package],
        capture_output=True,
        check=False,
    )
    status, _sep, ver = proc.stdout.decode().partition(" ")
    return ver.strip() if proc.returncode == 0 and status == "installed" else ""


# --- ssm-cli --------------------------------------------------------------------------------------


def ssm_cli(argv: list[str] | None = None) -> int:
    """``ssm-cli get-instance-information`` and ``get-diagnostics`` (DNS + TCP 443 to the endpoints)."""
    argv = sys.argv[1:] if argv is None else argv
    command = argv[0] if argv else ""
    reg = load_registration() or {}
    if command == "get-instance-information":
        print(
            json.dumps(
                {
                    "instance-id": reg.get("instanceID", ""),
                    "region": reg.get("region", ""),
                    "release-track": "public",
                    "agent-version": version(),
                    "instance-type": "",
                    "availability-zone": reg.get("availabilityZone", ""),
                }
            )
        )
        return 0
    if command == "get-diagnostics":
        region = reg.get("region") or load_config().get("Agent", {}).get("Region") or ""
        checks = []
        for service in ("ssm", "ec2messages", "ssmmessages", "s3"):
            host = f"{service}.{region}.amazonaws.com"
            try:
                address = socket.gethostbyname(host)
                with socket.create_connection((address, 443), timeout=5):
                    checks.append(
                        {
                            "Check": f"Connectivity to {service} endpoint",
                            "Status": "Success",
                            "Note": f"{host} is reachable ({address})",
                        }
                    )
            except OSError as exc:
                checks.append(
                    {
                        "Check": f"Connectivity to {service} endpoint",
                        "Status": "Failed",
                        "Note": f"{host} is not reachable: {exc}",
                    }
                )
        print(json.dumps({"DiagnosticsOutput": checks}, indent=2))
        return 0 if all(c["Status"] == "Success" for c in checks) else 1
    sys.stderr.write("usage: ssm-cli get-instance-information | get-diagnostics\n")
    return 2


if __name__ == "__main__":
    sys.exit(ssm_cli() if os.path.basename(sys.argv[0]) == "ssm-cli" else main())
