"""Supervisor secrets at rest: scrypt + AES-256-GCM (store contract §8.8).

Without a passphrase a 32-byte Ed25519 seed is stored as Meerkat stores it, a list of 32
integers, in a file of mode 0600. With a passphrase (the CLI reads ``MOBCTL_KEY_PASSPHRASE``)
each seed in ``supervisor.json`` — the record's ``secret_key`` and its
``pending_rotation.secret_key`` — is stored as an envelope instead::

    {"enc": "scrypt-aes256gcm-v1", "salt": "<base64, 16 bytes>", "n": 32768, "r": 8, "p": 1,
     "nonce": "<base64, 12 bytes>", "ct": "<base64, 32-byte seed + 16-byte GCM tag>"}

- key = scrypt(the passphrase's bytes as set, salt, n, r, p, 32 bytes); the seed is sealed with
  AES-256-GCM under that key and the 96-bit nonce, with associated data
  ``"{mob_id}:{public_peer_id}"`` (the peer id of the key the seed belongs to), so an envelope
  copied into another mob's or another key's record does not decrypt.
- ``enc`` versions the format; another value is refused as too new, never guessed at. The
  KDF parameters are read from the envelope (within sane bounds), so they can be raised later
  without breaking old files. Base64 is the standard alphabet with padding.
- One process derives one key per (salt, n, r, p) and reuses its salt for every envelope it
  writes, each with a fresh random nonce: a rotation costs one scrypt derivation, not four.

A wrong passphrase, or an envelope that was altered, fails the GCM tag check: that is
:class:`WrongPassphrase`. An envelope without a passphrase is :class:`PassphraseRequired`.
"""

from __future__ import annotations

import base64
import binascii
import os
from typing import Any, TypeGuard

from mobctl.errors import PassphraseRequired, StoreCorrupt, StoreFormatTooNew, WrongPassphrase

SCHEME = "scrypt-aes256gcm-v1"
MAX_SCRYPT_MEMORY = 256 * 2**20  # bytes (128 * n * r); mobctl writes 32 MiB
SCRYPT_N = 32768
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
NONCE_BYTES = 12
SEED_BYTES = 32
TAG_BYTES = 16
PASSPHRASE_VARIABLE = "MOBCTL_KEY_PASSPHRASE"  # named in messages; read only by the CLI


def is_envelope(value: object) -> bool:
    return isinstance(value, dict) and "enc" in value


class SecretBox:
    """Seals and opens seeds with one passphrase."""

    def __init__(self, passphrase: str) -> None:
        # the bytes the user set: an environment value that is not UTF-8 holds surrogates
        self._passphrase = os.fsencode(passphrase)
        self._keys: dict[tuple[bytes, int, int, int], bytes] = {}
        self._salt = os.urandom(SALT_BYTES)

    def _key(self, salt: bytes, n: int, r: int, p: int) -> bytes:
        from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

        found = self._keys.get((salt, n, r, p))
        if found is None:
            found = Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(self._passphrase)
            self._keys[(salt, n, r, p)] = found
        return found

    def seal(self, seed: bytes, associated: str) -> dict[str, Any]:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = os.urandom(NONCE_BYTES)
        key = self._key(self._salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
        sealed = AESGCM(key).encrypt(nonce, seed, associated.encode("utf-8"))
        return {
            "enc": SCHEME,
            "salt": _b64(self._salt),
            "n": SCRYPT_N,
            "r": SCRYPT_R,
            "p": SCRYPT_P,
            "nonce": _b64(nonce),
            "ct": _b64(sealed),
        }

    def open(self, envelope: dict[str, Any], associated: str, what: str) -> bytes:
        """The seed in ``envelope``; ``what`` names it in errors ("the supervisor secret …")."""
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        salt, n, r, p, nonce, sealed = parse_envelope(envelope, what)
        try:
            key = self._key(salt, n, r, p)
        except MemoryError:  # within the bounds, but more than this machine can give
            raise StoreCorrupt(
                f"{what}: the encrypted envelope demands more memory than is available"
            ) from None
        try:
            return AESGCM(key).decrypt(nonce, sealed, associated.encode("utf-8"))
        except InvalidTag:
            raise WrongPassphrase(
                f"cannot decrypt {what}: wrong passphrase, or the file was altered",
                hint=f"set {PASSPHRASE_VARIABLE} to the passphrase the secret was encrypted with",
            ) from None


def open_envelope(
    box: SecretBox | None, envelope: dict[str, Any], associated: str, what: str
) -> bytes:
    """Like :meth:`SecretBox.open`, refusing clearly when there is no passphrase at all."""
    parse_envelope(envelope, what)  # a too-new or broken envelope says so first
    if box is None:
        raise PassphraseRequired(
            f"{what} is encrypted at rest and no passphrase was given",
            hint=f"set {PASSPHRASE_VARIABLE} to the passphrase it was encrypted with",
        )
    return box.open(envelope, associated, what)


def parse_envelope(
    envelope: dict[str, Any], what: str
) -> tuple[bytes, int, int, int, bytes, bytes]:
    """(salt, n, r, p, nonce, ciphertext), refusing unknown schemes and absurd parameters."""
    scheme = envelope.get("enc")
    if scheme != SCHEME:
        raise StoreFormatTooNew(  # the scheme's name is not quoted: it is the file's content
            f"{what} is encrypted with a scheme this mobctl does not know; it reads only "
            f"'{SCHEME}'",
            hint="upgrade mobctl; the file was left untouched",
        )
    n, r, p = envelope.get("n"), envelope.get("r"), envelope.get("p")
    try:
        salt = _unb64(envelope.get("salt"))
        nonce = _unb64(envelope.get("nonce"))
        sealed = _unb64(envelope.get("ct"))
    except (TypeError, ValueError, binascii.Error):
        raise StoreCorrupt(f"{what}: the encrypted envelope is not valid base64") from None
    if not (_int(n) and _int(r) and _int(p)):
        raise StoreCorrupt(f"{what}: the encrypted envelope has invalid parameters")
    sane = (
        2**10 <= n <= 2**20
        and n & (n - 1) == 0
        and 1 <= r <= 32
        and 1 <= p <= 4
        and 128 * n * r <= MAX_SCRYPT_MEMORY  # what a hand-edited file may make us allocate
        and n * r * p <= 2**22  # and compute: 16x the work mobctl's own parameters take
        and 8 <= len(salt) <= 64
        and len(nonce) == NONCE_BYTES
        and len(sealed) == SEED_BYTES + TAG_BYTES
    )
    if not sane:
        raise StoreCorrupt(f"{what}: the encrypted envelope has invalid parameters")
    return salt, n, r, p, nonce, sealed


def _int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: object) -> bytes:
    if not isinstance(value, str):
        raise TypeError("not a string")
    return base64.b64decode(value.encode("ascii"), validate=True)
