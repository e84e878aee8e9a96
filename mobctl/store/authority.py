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
