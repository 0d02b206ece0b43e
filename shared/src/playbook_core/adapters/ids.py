"""Random ids from the OS CSPRNG: `pb_` + 20 base62 characters (domain.md §2.1)."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


class RandomIds:
    def random(self, prefix: str) -> str:
        return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(20))
