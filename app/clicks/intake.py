"""What the redirect keeps of a client's address in the click log: the address resolved (the
TCP peer, or a trusted proxy's forwarding headers), cut as TAUTAN_STORE_IP says (`full`
keeps it; `anonymized` and `none` keep its /24 or /48, which geography still needs), and a
keyed digest of the whole address, from which the writer makes the visitor id. So the log,
a file on disk until a writer reads it, never holds more of an address than the store
may; and clicks from TAUTAN_IGNORE_IPS are not logged at all."""

import asyncio
import hashlib
import logging
import secrets
from functools import lru_cache

from app.config import Settings
from app.core.client_ip import ClientResolver, Networks, stored_ip
from app.secret_key import SecretKey

log = logging.getLogger(__name__)
RETRY_S = 5
ADDRESSES_KEPT = 16_384  # (peer, forwarding headers) whose answer is memoised: ~8 MB


class ClientIntake:
    def __init__(self, settings: Settings) -> None:
        self.resolver = ClientResolver(settings.trusted_proxies)
        self.ignore_ips = Networks(settings.ignore_ips)
        self.kept_as = "full" if settings.store_ip == "full" else "anonymized"
        # Until the instance secret is read: a key of this process's own (its visitors may
        # count again in another process's clicks, nothing worse).
        self._key = secrets.token_bytes(32)
        self.client = lru_cache(maxsize=ADDRESSES_KEPT)(self._client)

    def use_secret(self, secret: str) -> None:
        """Key the digests with the instance secret: the same address gives the same
        digest in every process, and nobody without the secret can tell an address from
        its digest."""
        self._key = hashlib.sha256(f"client address\n{secret}".encode()).digest()
        self.client.cache_clear()

    async def key_with(self, secret_key: SecretKey) -> None:
        """use_secret() as soon as the secret can be read (it may be in a database that is
        down at the start)."""
        while True:
            try:
                self.use_secret(await secret_key.get())
                return
            except Exception:  # a database that does not answer yet: try again
                log.warning("the instance secret cannot be read yet; trying again in %ss", RETRY_S)
                await asyncio.sleep(RETRY_S)

    def _client(
        self, peer: str, forwarded_for: str, real_ip: str, forwarded: str
    ) -> tuple[str, str] | None:
        """(the address as the log keeps it, the digest of the whole address), or None when
        its clicks are not recorded."""
        address = self.resolver.resolve(peer, forwarded_for, real_ip, forwarded)
        if address is None:
            return "", ""
        if address in self.ignore_ips:
            return None
        digest = hashlib.blake2b(address.packed, key=self._key, digest_size=16).hexdigest()
        return stored_ip(address, self.kept_as) or "", digest
