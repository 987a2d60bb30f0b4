"""Passwords, kept only as argon2id hashes (argon2-cffi's RFC 9106 parameters). Hashing or
checking one costs tens of milliseconds of CPU and 64 MiB: callers on an event loop run
these in a thread."""

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
