"""Supervisor authority keys: Ed25519 seeds and the public peer id (store contract §7.1)."""

from __future__ import annotations

import base64
import hashlib
import uuid

PEER_ID_NAMESPACE = uuid.UUID("6d656572-6b61-7450-6565-724964300001")
SUPPORTED_PROTOCOLS = frozenset({2, 3, 4, 5})
MAX_EPOCH = 2**64 - 1


def public_key(seed: bytes) -> bytes:
    """The raw 32-byte Ed25519 public key of a 32-byte seed."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def peer_id(public: bytes) -> str:
    """UUIDv5 over the raw public key bytes (``uuid.uuid5`` only takes ``str`` names)."""
    digest = hashlib.sha1(PEER_ID_NAMESPACE.bytes + public).digest()[:16]
    return str(uuid.UUID(bytes=digest, version=5))


def display_key(public: bytes) -> str:
    return "ed25519:" + base64.b64encode(public).decode("ascii")


def parse_display_key(text: str) -> bytes | None:
    """The raw key of an ``ed25519:<base64>`` string; None when it is not one."""
    prefix = "ed25519:"
    if not text.startswith(prefix):
        return None
    try:
        raw = base64.b64decode(text[len(prefix) :].encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        return None
    return raw if len(raw) == 32 else None


def history_message(mob_id: str, epoch: int, previous_key: str | None, key: str) -> bytes:
    """What a history entry's endorsement and acceptance sign: the key of ``epoch`` and the
    key it succeeds (``ed25519:`` display forms; empty for the first key), for one mob."""
    return f"mobctl-authority-v1\n{mob_id}\n{epoch}\n{previous_key or ''}\n{key}".encode()


def generate_seed() -> bytes:
    """A fresh Ed25519 seed (32 bytes) from the operating system's CSPRNG."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    key = Ed25519PrivateKey.generate()
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def sign(seed: bytes, message: bytes) -> bytes:
    """The 64-byte Ed25519 signature of ``message``."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(seed).sign(message)


def signature_valid(public: bytes, signature: bytes, message: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
