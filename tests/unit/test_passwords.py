"""Slow salted password hashes: scrypt with a random salt, constant-time verification."""

from __future__ import annotations

import base64

import pytest

from chalicelib.core.auth.passwords import hash_password, verify_password

N = 1024  # cheap cost for tests; production uses 2**14


def test_hash_verifies_with_the_right_password() -> None:
    # Given a stored hash of a password
    stored = hash_password("correct horse battery", n=N)
    # When the same password is checked
    # Then it verifies
    assert verify_password("correct horse battery", stored, n=N) is True


@pytest.mark.parametrize("attempt", ["correct horse batter", "Correct horse battery", "correct horse battery ", "", "x" * 300])
def test_wrong_password_does_not_verify(attempt: str) -> None:
    # Given a stored hash of a password
    stored = hash_password("correct horse battery", n=N)
    # When a different password is checked
    # Then it does not verify
    assert verify_password(attempt, stored, n=N) is False


def test_two_hashes_of_the_same_password_differ_but_both_verify() -> None:
    # Given the same password hashed twice
    first, second = hash_password("same-password-1", n=N), hash_password("same-password-1", n=N)
    # When the two hashes are compared
    # Then their salts and digests differ (a random salt per hash), and both verify
    assert first != second
    assert first.split("$")[2] != second.split("$")[2]
    assert verify_password("same-password-1", first, n=N) and verify_password("same-password-1", second, n=N)


def test_hash_is_scrypt_with_its_cost_salt_and_digest_and_never_the_password() -> None:
    # Given a password
    password = "visible-password-123"
    # When it is hashed
    stored = hash_password(password, n=N)
    # Then the stored form is scrypt$<n>$<16-byte salt>$<32-byte digest> and does not contain the password
    scheme, n_text, salt, digest = stored.split("$")
    assert (scheme, int(n_text)) == ("scrypt", N)
    assert len(base64.b64decode(salt)) == 16
    assert len(base64.b64decode(digest)) == 32
    assert password not in stored


def test_hash_keeps_verifying_after_the_cost_setting_changes() -> None:
    # Given a hash made at a lower cost, before the setting was raised
    stored = hash_password("old-password-1", n=N)
    # When it is checked with the new setting
    # Then the cost stored in the hash is used and it still verifies
    assert verify_password("old-password-1", stored, n=4 * N) is True


def test_unicode_password_round_trips() -> None:
    # Given a non-ASCII password
    stored = hash_password("密码-пароль-🔑", n=N)
    # When it and a near-miss are checked
    # Then only the exact one verifies
    assert verify_password("密码-пароль-🔑", stored, n=N) is True
    assert verify_password("密码-пароль", stored, n=N) is False


@pytest.mark.parametrize("stored", [None, ""])
def test_no_stored_hash_never_verifies(stored: str | None) -> None:
    # Given an unknown user (no stored hash)
    # When any password is checked
    # Then it does not verify
    assert verify_password("anything", stored, n=N) is False


@pytest.mark.parametrize(
    "stored",
    ["plaintext", "scrypt$1024$onlythree", "bcrypt$1024$c2FsdA==$ZGlnZXN0", "scrypt$abc$c2FsdA==$ZGlnZXN0", "scrypt$1024$!!$ZGlnZXN0"],
    ids=["plain", "too-few-parts", "other-scheme", "bad-cost", "bad-base64"],
)
def test_malformed_stored_hash_never_verifies(stored: str) -> None:
    # Given a corrupt or foreign stored hash
    # When a password is checked against it
    # Then it does not verify (and does not crash)
    assert verify_password("anything", stored, n=N) is False


def test_hash_with_the_scheme_swapped_does_not_verify() -> None:
    # Given a genuine hash whose scheme label was rewritten
    stored = hash_password("right-password", n=N)
    forged = "md5" + stored[len("scrypt") :]
    # When the right password is checked against it
    # Then it does not verify
    assert verify_password("right-password", forged, n=N) is False
