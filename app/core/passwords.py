"""Passwords, kept only as argon2id hashes (argon2-cffi's RFC 9106 parameters). Hashing or
checking one costs tens of milliseconds of CPU and 64 MiB: callers on an event loop run
these in a thread."""

from functools import cache

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


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with other parameters than today's (a password that
    matched is then hashed again, so stored hashes follow the parameters)."""
    return _hasher.check_needs_rehash(password_hash)


@cache
def _stand_in_hash() -> str:
    return _hasher.hash("not anyone's password")


def no_password_matches(password: str) -> bool:
    """The work of a check against no account, so that an email nobody has takes as long
    to refuse as a wrong password (the timing tells nobody which accounts exist)."""
    password_matches(_stand_in_hash(), password)
    return False
