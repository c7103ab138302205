"""Passwords (argon2), token hashing, secret encryption at rest, phone hashing and masking."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet

from shequn.core.settings import get_settings

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    """Hash a password with argon2id."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Check a password against its argon2 hash without raising."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_token(prefix: str) -> str:
    """A random bearer token with a readable prefix (e.g. sqt_…)."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def hash_token(token: str) -> str:
    """Tokens are stored only as SHA-256: they are long random strings, so no slow hash is needed."""
    return hashlib.sha256(token.encode()).hexdigest()


@lru_cache(maxsize=4)
def _fernet(secret_key: str) -> Fernet:
    key = hmac.new(secret_key.encode(), b"shequn.secrets", hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt_secret(plain: str) -> str:
    """Encrypt a channel secret for storage (Fernet, key derived from SHEQUN_SECRET_KEY)."""
    return _fernet(get_settings().secret_key).encrypt(plain.encode()).decode()


def decrypt_secret(token: str) -> str:
    """Decrypt a stored channel secret."""
    return _fernet(get_settings().secret_key).decrypt(token.encode()).decode()


_PHONE_JUNK = re.compile(r"[\s\-()'\"=]")


def normalize_phone(raw: str) -> str | None:
    """Canonical digits of a Chinese mobile (11 digits) or an international number; None if not a phone."""
    digits = _PHONE_JUNK.sub("", raw or "")
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if digits.startswith("+"):
        rest = digits[1:]
        return "+" + rest if rest.isdigit() and 7 <= len(rest) <= 15 else None
    if not digits.isdigit():
        return None
    if len(digits) == 11 and digits.startswith("1"):
        return digits
    if 7 <= len(digits) <= 15:
        return digits
    return None


@lru_cache(maxsize=4)
def _phone_key(secret_key: str) -> bytes:
    return hmac.new(secret_key.encode(), b"shequn.phone", hashlib.sha256).digest()


def phone_hash(normalized: str) -> str:
    """Keyed hash of a normalized phone: joinable across imports, useless to someone without the key."""
    return _phone_hash(get_settings().secret_key, normalized)


@lru_cache(maxsize=65536)
def _phone_hash(secret_key: str, normalized: str) -> str:
    # Repeat buyers hash the same phone many times during an import; the cache is keyed by secret too.
    return hmac.new(_phone_key(secret_key), normalized.encode(), hashlib.sha256).hexdigest()


def mask_phone(normalized: str) -> str:
    """Display form that hides the middle digits: 138****5678."""
    if len(normalized) >= 11:
        return normalized[:3] + "****" + normalized[-4:]
    if len(normalized) > 4:
        return "*" * (len(normalized) - 4) + normalized[-4:]
    return "****"


def mask_email(email: str) -> str:
    """Display form of an email: z***@example.com."""
    local, _, domain = email.partition("@")
    if not domain:
        return "***"
    return (local[:1] or "*") + "***@" + domain
