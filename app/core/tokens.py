"""Secret tokens (API keys, sessions, one-time links) are stored only as their SHA-256
hash: they are long and random, so a fast hash is enough, and lookups by hash are exact."""

import hashlib


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
