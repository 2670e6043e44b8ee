"""Logins for a shared studio (core.accounts): password hashes, the settings read from the secrets."""

from __future__ import annotations

import pytest

from core import cli
from core.accounts import LOCAL, Logins, hash_password, verify_password
from core.errors import GlassboxError


def test_a_password_hash_checks_that_password_only_and_is_salted() -> None:
    stored = hash_password("correct horse")
    assert stored.startswith("scrypt$16384$8$1$")
    assert verify_password("correct horse", stored)
    assert not verify_password("correct hors", stored)
    assert not verify_password("", stored)
    assert hash_password("correct horse") != stored  # a fresh salt each time


def test_a_malformed_hash_lets_nobody_in() -> None:
    assert not verify_password("x", "not a hash")
    assert not verify_password("x", "bcrypt$1$2$3$abc$def")
    assert not verify_password("x", "scrypt$16384$8$1$!!$??")
    with pytest.raises(GlassboxError, match="empty"):
        hash_password("")


def test_logins_are_off_without_settings_and_the_local_owner_sees_all() -> None:
    found = Logins.from_secrets({})
    assert found.mode == "off"
    assert LOCAL.admin and LOCAL.scope is None


def test_password_users_and_admins_from_the_secrets() -> None:
    secrets = {"glassbox": {"admins": ["carol"], "users": {
        "alice": {"password": hash_password("a-pass")},
        "bob": {"password": hash_password("b-pass"), "admin": True},
        "carol": {"password": hash_password("c-pass")},
    }}}
    found = Logins.from_secrets(secrets)
    assert found.mode == "passwords"
    alice = found.check("alice", "a-pass")
    assert alice is not None and alice.name == "alice" and not alice.admin and alice.scope == "alice"
    assert found.check("alice", "b-pass") is None
    assert found.check("mallory", "a-pass") is None
    assert found.check("bob", "b-pass").admin  # type: ignore[union-attr]
    assert found.check("carol", "c-pass").admin  # type: ignore[union-attr]


def test_a_user_without_a_hash_is_a_configuration_error_not_an_open_door() -> None:
    with pytest.raises(GlassboxError, match="alice.*hash-password"):
        Logins.from_secrets({"glassbox": {"users": {"alice": {"password": "plain-text"}}}})


def test_an_identity_provider_in_auth_turns_on_oidc() -> None:
    auth = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "s", "client_id": "id",
            "client_secret": "secret", "server_metadata_url": "https://idp.example/.well-known/openid-configuration"}
    assert Logins.from_secrets({"auth": auth}).mode == "oidc"
    named = {"redirect_uri": auth["redirect_uri"], "cookie_secret": "s",
             "google": {k: auth[k] for k in ("client_id", "client_secret", "server_metadata_url")}}
    assert Logins.from_secrets({"auth": named, "glassbox": {"admins": ["a@x.org"]}}).account("a@x.org").admin
    assert Logins.from_secrets({"auth": {"cookie_secret": "s"}}).mode == "off"


def test_the_cli_hashes_a_password_read_from_stdin(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret\n"))
    assert cli.main(["users", "hash-password"]) == 0
    printed = capsys.readouterr().out.strip()
    assert verify_password("s3cret", printed) and not verify_password("s3cret\n", printed)
