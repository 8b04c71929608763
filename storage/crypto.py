"""Personal data at rest: AES-256-GCM for emails and phone numbers, HMAC blind indexes to find
a user by email without decrypting anything.

A ``Keyring`` holds one or more application keys, each named by an id; the first is current:
new values are sealed under it, and any key of the ring opens what it sealed. Rotating is two
steps: put a new key first (the old one stays in the ring, so everything still opens), then
re-seal every row under it (``seatserver rotate-keys``); after that the old key may leave.

Each master key is never used directly: HKDF derives one encryption key and one index key per
field from it, so an index never equals a ciphertext's key and the email's index key is not the
phone's. A sealed value is ``b"\\x01" | len(key id) | key id | 12-byte nonce | ciphertext+tag``,
and its field name is the associated data, so an email's ciphertext does not open as a phone.

A blind index is HMAC-SHA256 of the normalized value (trimmed, NFKC, lower case for emails),
under the field's index key: equal emails give equal indexes under one key. While a rotation
runs, rows carry indexes under either key, so look-ups ask for ``blind_indexes`` (one per key).

    >>> ring = Keyring.parse("k2:" + new_key() + ",k1:" + old)
    >>> blob = ring.encrypt("ana@example.com", field="users.email")
    >>> ring.decrypt(blob, field="users.email")
    'ana@example.com'
    >>> ring.blind_index("ANA@example.com ", field="users.email") == ring.blind_index(
    ...     "ana@example.com", field="users.email")
    True
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import unicodedata
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_FORMAT = 1
_NONCE = 12
_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
# Fields whose blind index ignores letter case (email addresses, matched case-insensitively).
_CASELESS = frozenset({"users.email"})


class KeyringError(Exception):
    """A keyring that cannot be used: a malformed spec, a missing key, a value that won't open."""


def new_key() -> str:
    """A fresh random 256-bit key, base64url, for ``SEATSERVER_DATA_KEYS``."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


def _decode_key(text: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise KeyringError("a key is not base64") from exc
    if len(raw) != 32:
        raise KeyringError(f"a key must be 32 bytes, this one is {len(raw)}")
    return raw


def normalize(value: str, *, field: str) -> str:
    """What the blind index is computed on: trimmed, NFKC, lower case for caseless fields."""
    text = unicodedata.normalize("NFKC", value).strip()
    return text.lower() if field in _CASELESS else text


@dataclass(frozen=True)
class Keyring:
    """Application keys by id; ``current`` seals, any of them opens."""

    keys: dict[str, bytes]
    current: str
    _derived: dict[tuple[str, str, str], bytes] = field(
        default_factory=dict, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise KeyringError(f"the current key {self.current!r} is not in the ring")

    @classmethod
    def parse(cls, spec: str) -> Keyring:
        """``"id:base64key,id:base64key"``, the current key first."""
        keys: dict[str, bytes] = {}
        for part in (p.strip() for p in spec.split(",")):
            key_id, sep, encoded = part.partition(":")
            if not sep or not _KEY_ID.match(key_id):
                raise KeyringError("write each key as id:base64 (id: letters, digits, _.-)")
            if key_id in keys:
                raise KeyringError(f"the key id {key_id!r} appears twice")
            keys[key_id] = _decode_key(encoded.strip())
        if not keys:
            raise KeyringError("the keyring is empty")
        return cls(keys, next(iter(keys)))

    @property
    def ids(self) -> list[str]:
        return list(self.keys)

    def _key(self, key_id: str, purpose: str, field: str) -> bytes:
        cached = self._derived.get((key_id, purpose, field))
        if cached is None:
            hkdf = HKDF(
                algorithm=hashes.SHA256(),
                length=32,
                salt=b"seatserver personal data",
                info=f"{purpose}:{field}".encode(),
            )
            cached = self._derived[(key_id, purpose, field)] = hkdf.derive(self.keys[key_id])
        return cached

    def encrypt(self, plaintext: str, *, field: str) -> bytes:
        """``plaintext`` sealed under the current key, with ``field`` as associated data."""
        key_id = self.current.encode()
        nonce = os.urandom(_NONCE)
        sealed = AESGCM(self._key(self.current, "enc", field)).encrypt(
            nonce, plaintext.encode(), field.encode()
        )
        return bytes([_FORMAT, len(key_id)]) + key_id + nonce + sealed

    def key_of(self, blob: bytes) -> str:
        """The id of the key that sealed ``blob``."""
        if len(blob) < 2 or blob[0] != _FORMAT:
            raise KeyringError("not a sealed value")
        return bytes(blob[2 : 2 + blob[1]]).decode()

    def decrypt(self, blob: bytes, *, field: str) -> str:
        """Open ``blob``; ``KeyringError`` if its key left the ring or it was tampered with."""
        key_id = self.key_of(blob)
        if key_id not in self.keys:
            raise KeyringError(f"the key {key_id!r} is not in the ring")
        start = 2 + blob[1]
        nonce, sealed = blob[start : start + _NONCE], blob[start + _NONCE :]
        if len(nonce) != _NONCE or len(sealed) < 16:  # the 16-byte tag at least
            raise KeyringError(f"a {field} value is truncated")
        try:
            plain = AESGCM(self._key(key_id, "enc", field)).decrypt(
                bytes(nonce), bytes(sealed), field.encode()
            )
        except InvalidTag as exc:
            raise KeyringError(
                f"a {field} value does not open (tampered, or another field)"
            ) from exc
        return plain.decode()

    def blind_index(self, value: str, *, field: str, key_id: str | None = None) -> bytes:
        """The look-up index of ``value`` under the current key (or ``key_id``)."""
        key = self._key(key_id or self.current, "index", field)
        return hmac.new(key, normalize(value, field=field).encode(), hashlib.sha256).digest()

    def blind_indexes(self, value: str, *, field: str) -> list[bytes]:
        """The index under every key of the ring: a look-up that finds rows sealed under any."""
        return [self.blind_index(value, field=field, key_id=k) for k in self.keys]
