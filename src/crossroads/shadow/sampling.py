"""Which requests a shadow rule copies: a hash of the request id and the rule's seed.

The same request id and seed always give the same answer (in any process, on any
machine), so a rule's sample can be reproduced and two rules with different seeds draw
independent samples. About one microsecond per request (BLAKE2b of a short string).
"""

from __future__ import annotations

import hashlib

__all__ = ["sampled", "share_of"]

_SCALE = float(1 << 64)


def share_of(request_id: str, seed: int) -> float:
    """A number in [0, 1), uniform over request ids, fixed by ``request_id`` and ``seed``."""
    digest = hashlib.blake2b(f"{seed}:{request_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def sampled(request_id: str, seed: int, sample: float) -> bool:
    """Whether the request is in a ``sample`` share (0..1) of the traffic for ``seed``."""
    if sample >= 1.0:
        return True
    if sample <= 0.0:
        return False
    return share_of(request_id, seed) < sample
