"""Who may use a shared studio, and whose datasets and runs each person sees.

Logins are off by default: on a one-person machine everything belongs to the local owner (`LOCAL`), which is
also who the CLI acts as. A studio turns them on in its secrets (`.streamlit/secrets.toml`), in one of two ways:

- an OpenID Connect identity provider (Streamlit's `st.login`): an `[auth]` section with `client_id`,
  `client_secret`, `server_metadata_url`, `redirect_uri` and `cookie_secret`; people are known by their email;
- a list of users with hashed passwords (`[glassbox.users.NAME]` with `password` = `hash_password(...)`'s
  string, made by `python -m core users hash-password`).

`[glassbox] admins = [...]` (or `admin = true` on a listed user) names who sees everyone's data. This module
reads the settings and checks passwords; the gate itself is `ui.shell.setup`, which every page calls first.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.errors import GlassboxError

__all__ = ["LOCAL", "Account", "Logins", "hash_password", "verify_password"]

# scrypt's cost (RFC 7914; n = 2**14, r = 8, p = 1 is the interactive-login setting of its paper and of
# Python's own examples): ~50 ms a check, 16 MiB of memory, so a stolen hash is slow to guess
_N, _R, _P = 2**14, 8, 1
_SALT_BYTES = 16
_OIDC_KEYS = ("client_id", "client_secret", "server_metadata_url")


@dataclass(frozen=True)
class Account:
    """A person using the studio: `name` (a user name or an email), and whether they see everyone's data."""

    name: str
    admin: bool = False

    @property
    def scope(self) -> str | None:
        """The owner whose datasets and runs this account sees (`core.store.Store.scoped`); None: all of them."""
        return None if self.admin else self.name


LOCAL = Account("local", admin=True)
"""The owner of a studio without logins, and of everything the CLI makes: sees and owns all."""


def hash_password(password: str) -> str:
    """A salted scrypt hash of `password` (RFC 7914, Python's `hashlib.scrypt`), as one string
    "scrypt$n$r$p$salt$hash" (salt and hash base64) to paste into the secrets. Raises GlassboxError for an empty
    password."""
    if not password:
        raise GlassboxError("the password is empty")
    salt = os.urandom(_SALT_BYTES)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P)
    return "$".join(["scrypt", str(_N), str(_R), str(_P), base64.b64encode(salt).decode(),
                     base64.b64encode(digest).decode()])


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches a `hash_password` string, compared in constant time; False (never an error) for
    a malformed stored string, so a typo in the secrets locks that user out rather than letting anyone in."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        expected = base64.b64decode(digest)
        found = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                               dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(found, expected)


@dataclass(frozen=True)
class Logins:
    """The studio's login settings, read from its secrets: `mode` "off", "oidc" or "passwords"; the password
    users (name -> hash) and the admins (names or emails)."""

    mode: str
    users: Mapping[str, str]
    admins: frozenset[str]

    @classmethod
    def from_secrets(cls, secrets: Mapping[str, Any]) -> Logins:
        """From Streamlit's secrets (a mapping): an `[auth]` section with a provider's client settings means OIDC;
        else `[glassbox.users]` means passwords; else logins are off. Raises GlassboxError for a half-made setting
        (a user without a password hash), so a studio meant to be private never opens unguarded."""
        auth = secrets.get("auth") or {}
        own = secrets.get("glassbox") or {}
        users_section = own.get("users") or {}
        admins = {str(a) for a in own.get("admins", [])}
        users: dict[str, str] = {}
        for name, entry in users_section.items():
            password = entry.get("password") if isinstance(entry, Mapping) else None
            if not password or not str(password).startswith("scrypt$"):
                raise GlassboxError(f"user {name!r} in the secrets has no password hash: make one with "
                                    "`python -m core users hash-password` and set it as password")
            users[str(name)] = str(password)
            if isinstance(entry, Mapping) and entry.get("admin"):
                admins.add(str(name))
        has_provider = all(key in auth for key in _OIDC_KEYS) or any(
            isinstance(v, Mapping) and all(key in v for key in _OIDC_KEYS) for v in auth.values())
        mode = "oidc" if has_provider else "passwords" if users else "off"
        return cls(mode=mode, users=users, admins=frozenset(admins))

    def account(self, name: str) -> Account:
        """The account of someone who proved to be `name` (a user name, or an OIDC email)."""
        return Account(name, admin=name in self.admins)

    def check(self, name: str, password: str) -> Account | None:
        """The account when `password` is that user's, else None (an unknown user costs the same time as a wrong
        password, so the answer does not tell which names exist)."""
        stored = self.users.get(name)
        if stored is None:
            verify_password(password, hash_password("timing"))
            return None
        return self.account(name) if verify_password(password, stored) else None
