"""What the redirect keeps of a client's address in the click log: the address resolved (the
TCP peer, or a trusted proxy's forwarding headers), cut as TAUTAN_STORE_IP says (`full`
keeps it; `anonymized` and `none` keep its /24 or /48, which geography still needs), and a
keyed digest of the whole address, from which the writer makes the visitor id. So the log,
a file on disk until a writer reads it, never holds more of an address than the store
may; and clicks from TAUTAN_IGNORE_IPS are not logged at all."""

import hashlib
from functools import lru_cache

from app.clicks.enrich.network import ClientResolver, is_ignored, stored_ip
from app.config import Settings

ADDRESSES_KEPT = 16_384  # (peer, forwarding headers) whose answer is memoised: ~8 MB


class ClientIntake:
    def __init__(self, settings: Settings) -> None:
        self.resolver = ClientResolver(settings.trusted_proxies)
        self.ignore_ips = settings.ignore_ips
        self.kept_as = "full" if settings.store_ip == "full" else "anonymized"
        self._key = b""
        self.client = lru_cache(maxsize=ADDRESSES_KEPT)(self._client)

    def use_secret(self, secret: str) -> None:
        """Key the digests with the instance secret (read at start, before any redirect):
        the same address gives the same digest in every process, and nobody without the
        secret can tell an address from its digest."""
        self._key = hashlib.sha256(f"client address\n{secret}".encode()).digest()
        self.client.cache_clear()

    def _client(
        self, peer: str, forwarded_for: str, real_ip: str, forwarded: str
    ) -> tuple[str, str] | None:
        """(the address as the log keeps it, the digest of the whole address), or None when
        its clicks are not recorded."""
        address = self.resolver.resolve(peer, forwarded_for, real_ip, forwarded)
        if address is None:
            return "", ""
        if is_ignored(address, self.ignore_ips):
            return None
        digest = hashlib.blake2b(address.packed, key=self._key, digest_size=16).hexdigest()
        return stored_ip(address, self.kept_as) or "", digest
