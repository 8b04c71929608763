"""The keyring that seals emails and phone numbers: round trips, the field bound as associated
data, tampering detected, key ids and rotation, spec errors, and blind index normalization."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storage.crypto import Keyring, KeyringError, new_key, normalize

EMAIL, PHONE = "users.email", "users.phone"
OLD, NEW = new_key(), new_key()
RING = Keyring.parse(f"old:{OLD}")
ROTATING = Keyring.parse(f"new:{NEW},old:{OLD}")


def test_a_value_opens_under_its_field_only() -> None:
    blob = RING.encrypt("ana@example.com", field=EMAIL)
    assert RING.decrypt(blob, field=EMAIL) == "ana@example.com"
    assert b"ana" not in blob
    with pytest.raises(KeyringError, match="does not open"):
        RING.decrypt(blob, field=PHONE)  # an email's ciphertext pasted into the phone column


def test_each_seal_is_new() -> None:
    first, second = (RING.encrypt("+14155550100", field=PHONE) for _ in range(2))
    assert first != second  # a fresh nonce each time: equal numbers do not look equal


@pytest.mark.parametrize("position", [0, 1, 5, 20, -1])
def test_tampering_is_detected(position: int) -> None:
    blob = bytearray(RING.encrypt("ana@example.com", field=EMAIL))
    blob[position] ^= 0x01
    with pytest.raises(KeyringError):
        RING.decrypt(bytes(blob), field=EMAIL)


def test_truncated_and_foreign_blobs_are_refused() -> None:
    blob = RING.encrypt("ana@example.com", field=EMAIL)
    for broken in (b"", b"\x01", blob[:10], b"\x02" + blob[1:]):
        with pytest.raises(KeyringError):
            RING.decrypt(broken, field=EMAIL)


def test_the_first_key_seals_and_every_key_opens() -> None:
    sealed_old = RING.encrypt("ana@example.com", field=EMAIL)
    sealed_new = ROTATING.encrypt("ana@example.com", field=EMAIL)
    assert (RING.key_of(sealed_old), ROTATING.key_of(sealed_new)) == ("old", "new")
    assert ROTATING.decrypt(sealed_old, field=EMAIL) == "ana@example.com"
    with pytest.raises(KeyringError, match="not in the ring"):
        RING.decrypt(sealed_new, field=EMAIL)
    assert ROTATING.ids == ["new", "old"] and ROTATING.current == "new"


def test_the_same_key_under_another_id_does_not_open_it() -> None:
    blob = RING.encrypt("ana@example.com", field=EMAIL)
    with pytest.raises(KeyringError):
        Keyring.parse(f"other:{NEW}").decrypt(blob, field=EMAIL)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "id:base64"),
        ("nokey", "id:base64"),
        (f"bad id:{OLD}", "id:base64"),
        (f"{'x' * 33}:{OLD}", "id:base64"),
        ("k:not*base64!", "base64|32 bytes"),
        (f"k:{base64.urlsafe_b64encode(b'short').decode()}", "32 bytes"),
        (f"k:{OLD},k:{NEW}", "twice"),
    ],
    ids=["empty", "no key", "bad id", "long id", "not base64", "short key", "id twice"],
)
def test_malformed_specs_are_refused(spec: str, message: str) -> None:
    with pytest.raises(KeyringError, match=message):
        Keyring.parse(spec)


def test_the_current_key_must_be_in_the_ring() -> None:
    with pytest.raises(KeyringError, match="not in the ring"):
        Keyring({"a": bytes(32)}, "b")


def test_new_keys_are_random_and_parse() -> None:
    assert new_key() != new_key()
    assert len(Keyring.parse(f"k:{new_key()}").keys["k"]) == 32


def test_blind_indexes_ignore_case_and_spacing_of_emails_only() -> None:
    index = RING.blind_index("ana@example.com", field=EMAIL)
    for variant in ("ANA@Example.COM", "  ana@example.com\t", "ａｎａ@example.com"):
        assert RING.blind_index(variant, field=EMAIL) == index
    assert RING.blind_index("bob@example.com", field=EMAIL) != index
    assert RING.blind_index("Ana", field="users.name") != RING.blind_index(
        "ana", field="users.name"
    )
    assert normalize(" ANA@x.io ", field=EMAIL) == "ana@x.io"


def test_blind_indexes_differ_per_key_and_field() -> None:
    under_new = ROTATING.blind_index("ana@example.com", field=EMAIL)
    under_old = ROTATING.blind_index("ana@example.com", field=EMAIL, key_id="old")
    assert under_old == RING.blind_index("ana@example.com", field=EMAIL) != under_new
    assert ROTATING.blind_indexes("ana@example.com", field=EMAIL) == [under_new, under_old]
    assert RING.blind_index("+14155550100", field=PHONE) != RING.blind_index(
        "+14155550100", field=EMAIL
    )
    blob = RING.encrypt("ana@example.com", field=EMAIL)
    assert RING.blind_index("ana@example.com", field=EMAIL) not in blob


@given(st.text(max_size=300), st.sampled_from([EMAIL, PHONE, "x.y"]))
def test_any_text_round_trips(text: str, field: str) -> None:
    clean = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    assert ROTATING.decrypt(ROTATING.encrypt(clean, field=field), field=field) == clean
    assert ROTATING.decrypt(RING.encrypt(clean, field=field), field=field) == clean


@given(st.emails())
def test_an_email_finds_itself_in_any_case(email: str) -> None:
    assert RING.blind_index(email.upper(), field=EMAIL) == RING.blind_index(
        email.lower(), field=EMAIL
    )
