"""What a limit store decides for one request: an :class:`Admission`, or the error that
refuses it; shared by the in-process and the Redis limiter."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from typing import Protocol

from ...errors import RateLimitError, UpstreamUnavailableError
from ..keys import KeyRecord

__all__ = [
    "WINDOW_S",
    "Admission",
    "BudgetExceededError",
    "LimitStoreUnavailableError",
    "Limiter",
    "RateLimitedError",
    "Verdict",
    "conclude",
    "unlimited",
    "usd",
]

#: Length of the sliding rate-limit windows, in seconds.
WINDOW_S = 60.0


class RateLimitedError(RateLimitError):
    """Over the key's requests or tokens per minute."""

    def __init__(
        self,
        message: str,
        *,
        retry_after_s: float,
        headers: dict[str, str],
        code: str = "rate_limit_exceeded",
    ) -> None:
        super().__init__(message, retry_after=retry_after_s, code=code)
        self.retry_after_s = retry_after_s
        self.headers = headers


class BudgetExceededError(RateLimitError):
    """The key's budget cannot cover this request's worst-case cost."""

    error_type = "insufficient_quota"

    def __init__(self, message: str) -> None:
        super().__init__(message, code="insufficient_quota")
        self.retry_after_s: float | None = None
        self.headers = {"x-should-retry": "false"}


class LimitStoreUnavailableError(UpstreamUnavailableError):
    """Redis did not answer in time, and the key has a budget: refuse rather than overspend."""


@dataclass
class Admission:
    """A request let through: what it reserved, and the headers to send back."""

    key_id: str
    reserved_usd: float
    reserved_tokens: int
    request_slot: str
    #: ``x-ratelimit-*`` response headers (OpenAI's names) when the key has RPM/TPM.
    headers: dict[str, str] = field(default_factory=dict)
    #: False when nothing was counted (a key without limits, or Redis failed open).
    enforced: bool = True
    #: Whether the key has a budget (settle adds the cost) / a TPM limit (settle fixes tokens).
    budgeted: bool = False
    counts_tokens: bool = False
    settled: bool = False


class Limiter(Protocol):
    """Admission control for virtual keys."""

    async def precheck(self, key: KeyRecord) -> None:
        """Before the body is read: raise what :meth:`admit` would raise for *any*
        request of this key (RPM window full, budget spent), from what this process
        knows; no I/O (see :mod:`.exhausted`)."""
        ...

    async def admit(self, key: KeyRecord, *, tokens: int, max_cost_usd: float) -> Admission: ...

    async def settle(self, admission: Admission, *, tokens: int, cost_usd: float) -> None: ...

    async def spent(self, key_id: str) -> float: ...

    async def aclose(self) -> None: ...


def usd(amount: float) -> str:
    """``amount`` in dollars with four significant digits and at least cents:
    ``$0.60``, ``$0.804``, ``$0.00001234``, ``$1,234.57`` (a tiny budget's amounts are
    never all zeros)."""
    if amount == 0 or not math.isfinite(amount):
        return f"${amount:.2f}"
    decimals = min(max(2, 3 - math.floor(math.log10(abs(amount)))), 12)
    text = f"{amount:,.{decimals}f}"
    whole, _, fraction = text.partition(".")
    fraction = fraction.rstrip("0").ljust(2, "0")
    return f"${whole}.{fraction}"


def _duration(seconds: float) -> str:
    """OpenAI's reset format: ``20ms``, ``1s``, ``6m0s``."""
    seconds = max(seconds, 0.0)
    if seconds < 1:
        return f"{math.ceil(seconds * 1000)}ms"
    whole = math.ceil(seconds)
    minutes, secs = divmod(whole, 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


@dataclass
class Verdict:
    """What a limit store saw: 0 = admitted, 1 = RPM, 2 = TPM, 3 = too large, 4 = budget."""

    status: int
    retry_after_s: float
    rpm_used: int
    rpm_reset_s: float
    tpm_used: int
    tpm_reset_s: float
    spent_usd: float
    reserved_usd: float


def _rate_headers(key: KeyRecord, v: Verdict) -> dict[str, str]:
    headers: dict[str, str] = {}
    if key.rpm is not None:
        headers["x-ratelimit-limit-requests"] = str(key.rpm)
        headers["x-ratelimit-remaining-requests"] = str(max(key.rpm - v.rpm_used, 0))
        headers["x-ratelimit-reset-requests"] = _duration(v.rpm_reset_s)
    if key.tpm is not None:
        headers["x-ratelimit-limit-tokens"] = str(key.tpm)
        headers["x-ratelimit-remaining-tokens"] = str(max(key.tpm - v.tpm_used, 0))
        headers["x-ratelimit-reset-tokens"] = _duration(v.tpm_reset_s)
    return headers


def conclude(
    key: KeyRecord, v: Verdict, *, tokens: int, max_cost_usd: float, slot: str
) -> Admission:
    """Turn a store's verdict into an Admission or the matching error."""
    headers = _rate_headers(key, v)
    if v.status == 0:
        budgeted = key.budget_usd is not None
        return Admission(
            key.id,
            max_cost_usd if budgeted else 0.0,
            tokens,
            slot,
            headers,
            budgeted=budgeted,
            counts_tokens=key.tpm is not None,
        )
    if v.status == 4:
        assert key.budget_usd is not None
        raise BudgetExceededError(
            f"Key {key.name!r} has used {usd(v.spent_usd)} of its {usd(key.budget_usd)} "
            f"budget ({usd(v.reserved_usd)} more is reserved by requests in flight) and this "
            f"request could cost up to {usd(max_cost_usd)}. Ask an admin for a key with a "
            "larger budget: crossroads keys create --name NAME --budget-usd AMOUNT "
            "(lowering max_tokens also lowers the worst case)."
        )
    retry = max(v.retry_after_s, 0.001)
    headers["retry-after"] = str(math.ceil(retry))
    headers["retry-after-ms"] = str(math.ceil(retry * 1000))
    if v.status == 1:
        message = (
            f"Key {key.name!r} is limited to {key.rpm} requests per minute; retry in {retry:.1f}s."
        )
        raise RateLimitedError(message, retry_after_s=retry, headers=headers)
    if v.status == 3:
        headers["x-should-retry"] = "false"
        message = (
            f"This request needs up to {tokens} tokens (prompt + max_tokens; the prompt "
            "counts one token per byte it sends, tools and schemas included) but key "
            f"{key.name!r} is limited to {key.tpm} tokens per minute; send a shorter "
            "prompt or lower max_tokens."
        )
        raise RateLimitedError(
            message, retry_after_s=retry, headers=headers, code="request_too_large"
        )
    message = (
        f"Key {key.name!r} is limited to {key.tpm} tokens per minute (prompt + max_tokens "
        f"counted on admission); retry in {retry:.1f}s or lower max_tokens."
    )
    raise RateLimitedError(message, retry_after_s=retry, headers=headers)


def unlimited(key: KeyRecord, tokens: int) -> Admission:
    return Admission(key.id, 0.0, tokens, uuid.uuid4().hex, {}, enforced=False)
