"""Keyed pseudonyms: HMAC-SHA256 per identifier domain, encoded short and fixed-length.

A pseudonym is ``<domain letter>`` + base32 (RFC 4648, upper case, no padding)
of the first 80 bits of ``HMAC-SHA256(domain key, normalised value)``, e.g.
``P7K3QX2M4ZJ5TA6BW`` (17 characters). The domain letter says what the
pseudonym stands for (``P`` person, ``S`` family name, ``O`` owner), and makes
a pseudonym impossible to mistake for a BSN: it is never 9 digits.

Length: among ``n`` distinct values, the chance that two share a pseudonym is
about ``n**2 / 2**(bits + 1)``. With 80 bits and 20 million values (every
resident the Netherlands ever registered, with room to spare) that is
``(2e7)**2 / 2**81`` = 1.7e-10; 64 bits would give 1.1e-5, too close for
comfort across many municipalities and years, while 120 bits would only make
every dossier line longer.

Domain keys: each domain has its own 256-bit key, derived from the key file's
one 256-bit secret as ``HMAC-SHA256(secret, "stratum-ml/pseudonym/v1/" + domain)``
(an HKDF-Expand step with a domain separator). The same BSN therefore gets
unlinkable pseudonyms as a resident (``person``) and as an owner (``owner``),
and the key file holds a single secret. The pseudonym depends on the secret,
the domain and the normalised value only: the same value gives the same
pseudonym in every table and every extract made with the same key.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Sequence
from typing import Literal

Domain = Literal["person", "family_name", "owner"]

#: the identifier domains and the first letter of their pseudonyms
DOMAINS: dict[str, str] = {"person": "P", "family_name": "S", "owner": "O"}
PSEUDONYM_BITS = 80
PSEUDONYM_LENGTH = 1 + PSEUDONYM_BITS // 5  #: characters, domain letter included
_SEPARATOR = b"stratum-ml/pseudonym/v1/"
_KEY_ID_LABEL = b"stratum-ml/pseudonym/v1/key-id"


def derive_domain_key(secret: bytes, domain: str) -> bytes:
    """The 256-bit key of one identifier domain, derived from the key file's secret."""
    if domain not in DOMAINS:
        raise ValueError(f"unknown identifier domain {domain!r}; use one of {sorted(DOMAINS)}")
    return hmac.digest(secret, _SEPARATOR + domain.encode("ascii"), "sha256")


def key_id(secret: bytes) -> str:
    """A short public fingerprint of a secret (16 hex digits); it does not reveal the secret."""
    return hmac.digest(secret, _KEY_ID_LABEL, "sha256")[:8].hex()


def domain_of(pseudonym: str) -> str:
    """The domain a pseudonym belongs to, from its letter and length.

    Raises
    ------
    ValueError
        When ``pseudonym`` is not a pseudonym of this scheme.
    """
    for domain, letter in DOMAINS.items():
        if (
            len(pseudonym) == PSEUDONYM_LENGTH
            and pseudonym.startswith(letter)
            and _is_base32(pseudonym[1:])
        ):
            return domain
    raise ValueError(
        f"not a pseudonym: expected {PSEUDONYM_LENGTH} characters, a domain letter "
        f"({', '.join(f'{v} {k}' for k, v in DOMAINS.items())}) and base32"
    )


def _is_base32(text: str) -> bool:
    return all(c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567" for c in text)


class Pseudonymiser:
    """Turns normalised values of one domain into pseudonyms.

    Parameters
    ----------
    secret
        The key file's secret (at least 32 bytes).
    domain
        One of :data:`DOMAINS`.

    Examples
    --------
    >>> p = Pseudonymiser(bytes(32), "person")
    >>> value = p(["111222333"])[0]
    >>> len(value), value[0]
    (17, 'P')
    >>> p(["111222333"]) == p(["111222333"])
    True
    """

    __slots__ = ("_key", "_letter", "domain")

    def __init__(self, secret: bytes, domain: str) -> None:
        if len(secret) < 32:
            raise ValueError("a pseudonym key must be at least 256 bits")
        self.domain = domain
        self._key = derive_domain_key(secret, domain)
        self._letter = DOMAINS[domain]

    def __repr__(self) -> str:  # never show the key
        return f"Pseudonymiser(domain={self.domain!r})"

    def __call__(self, normalised: Sequence[str]) -> list[str]:
        """The pseudonym of each normalised value."""
        key, letter, n = self._key, self._letter, PSEUDONYM_BITS // 8
        digest, encode = hmac.digest, base64.b32encode
        return [
            letter + encode(digest(key, v.encode("utf-8"), "sha256")[:n]).decode("ascii")
            for v in normalised
        ]
