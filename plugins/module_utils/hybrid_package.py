# -*- coding: utf-8 -*-
# Copyright: hybrid-onboard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Trusting a downloaded package: OpenPGP armor, ``gpgv`` in a throwaway keyring, SHA-256. Used by
``agent_package`` (download, verify, install).

Python standard library only and Python 3.6 syntax: the module runs on managed hosts (RHEL 8's platform
Python is 3.6).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import hashlib
import os
import re
import shutil
import tempfile

HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_ARMOR_BEGIN = re.compile(r"^-----BEGIN PGP (PUBLIC KEY BLOCK|PRIVATE KEY BLOCK|SIGNATURE)-----\s*$")
_ARMOR_END = re.compile(r"^-----END PGP [A-Z ]+-----\s*$")
_ARMOR_HEADER = re.compile(r"^[A-Za-z][A-Za-z0-9-]*: ")


class ArmorError(ValueError):
    pass


def crc24(data):
    """OpenPGP's CRC-24 (RFC 4880 6.1), the checksum of the armor."""
    crc = 0xB704CE
    for byte in bytearray(data):
        crc ^= byte << 16
        for _bit in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


def dearmor(text):
    """Binary OpenPGP data of every armored block in ``text`` (its CRC checked when present)."""
    blocks, body, checksum, state = [], None, None, "outside"
    for raw in text.splitlines():
        line = raw.strip()
        if state == "outside":
            if _ARMOR_BEGIN.match(line):
                body, checksum, state = [], None, "headers"
            continue
        if _ARMOR_END.match(line):
            blocks.append(_decode_block(body, checksum))
            state = "outside"
            continue
        if state == "headers":
            if _ARMOR_HEADER.match(line):
                continue
            state = "body"
            if not line:
                continue
        if line.startswith("=") and len(line) == 5:
            checksum = line[1:]
        elif line:
            body.append(line)
    if state != "outside":
        raise ArmorError("armor block has no END line")
    if not blocks:
        raise ArmorError("no -----BEGIN PGP PUBLIC KEY BLOCK----- found")
    return b"".join(blocks)


def _decode_block(lines, checksum):
    try:
        data = base64.b64decode("".join(lines).encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise ArmorError("armored data is not valid base64 (%s)" % exc) from exc
    if checksum is not None:
        try:
            expected = int.from_bytes(base64.b64decode(checksum.encode("ascii"), validate=True), "big")
        except (binascii.Error, ValueError) as exc:
            raise ArmorError("armor checksum line is not base64") from exc
        if crc24(data) != expected:
            raise ArmorError("armor checksum mismatch: the key file is damaged")
    if not data:
        raise ArmorError("armor block is empty")
    return data


def load_key(path):
    """Binary OpenPGP key data of the key file at ``path``, armored or binary."""
    with open(path, "rb") as handle:
        return key_bytes(handle.read())


def key_bytes(data):
    """Binary OpenPGP key data of a key file's content (bytes), armored or binary."""
    head = data.lstrip()[:40]
    if head.startswith(b"-----BEGIN PGP"):
        return dearmor(data.decode("ascii", "replace"))
    # Binary OpenPGP: the first byte of a packet always has its high bit set; a keybox starts with a blob header.
    if data and (bytearray(data[:1])[0] & 0x80 or data[8:12] == b"KBXf"):
        return data
    raise ArmorError("neither an ASCII-armored nor a binary OpenPGP public key")


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def parse_status(text):
    """{keyword: [args, ...]} of gpgv's ``--status-fd`` lines (``[GNUPG:] KEYWORD args``)."""
    found = {}
    for line in text.splitlines():
        if not line.startswith("[GNUPG:] "):
            continue
        parts = line[len("[GNUPG:] ") :].split(" ", 1)
        found.setdefault(parts[0], []).append(parts[1] if len(parts) > 1 else "")
    return found


def gpgv_reason(status, stderr):
    """Why gpgv did not accept the signature, in words."""
    if "BADSIG" in status:
        return "BAD signature (the file or the signature was changed after signing)"
    if "REVKEYSIG" in status:
        return "signed by a revoked key"
    # ERRSIG <keyid> <pkalgo> <hashalgo> <class> <time> <rc> [<fpr>]: rc 9 is "no public key".
    if "NO_PUBKEY" in status or any(args.split(" ")[5:6] == ["9"] for args in status.get("ERRSIG", [])):
        keyid = (status.get("NO_PUBKEY") or status.get("ERRSIG") or [""])[0].split(" ")[0]
        return "no public key for the signature's key %s (signed by another key)" % keyid
    if "NODATA" in status or "NO_DATA" in status:
        return "the signature file holds no OpenPGP signature"
    lines = [line for line in (stderr or "").splitlines() if line.strip()]
    return "; ".join(lines[-3:]) or "gpgv failed"


def gpg_check(run_command, gpgv, key, signature, path):
    """Check ``signature`` of ``path`` with the binary OpenPGP ``key`` in a throwaway keyring.

    ``run_command`` is ``AnsibleModule.run_command``. Returns ``(reason, stderr, signer, signer_uid, expired)``:
    ``reason`` is None when the signature is good.
    """
    home = tempfile.mkdtemp(prefix="package-verify-")
    try:
        keyring = os.path.join(home, "trusted.gpg")
        with open(keyring, "wb") as handle:
            handle.write(key)
        rc, out, err = run_command(
            [gpgv, "--homedir", home, "--status-fd", "1", "--keyring", keyring, signature, path],
            environ_update={"LC_ALL": "C", "LANG": "C"},
        )
    finally:
        shutil.rmtree(home, ignore_errors=True)
    status = parse_status(out)
    if rc != 0 or "VALIDSIG" not in status or "REVKEYSIG" in status:
        return gpgv_reason(status, err), (err or "").strip(), None, None, False
    signer = status["VALIDSIG"][0].split(" ")[0]
    good = (status.get("GOODSIG") or status.get("EXPKEYSIG") or [""])[0].split(" ", 1)
    return None, "", signer, good[1] if len(good) > 1 else None, "EXPKEYSIG" in status
