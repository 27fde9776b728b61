"""Which model names the gateway serves to clients, and which may become a metric label.

The gateway serves the names its configuration defines — routes (``routes:``), models
and their aliases (``models:``) — and nothing else unless ``gateway.serve_unconfigured``
opts in: ``true`` for any name the router resolves on its own (embedded models such as
``local/smollm2``, ``provider/model``, catalog ids), or a list of such names. Otherwise
a budgeted key could run the embedded models on the gateway's own CPU at $0, or reach a
vendor model through an API key that merely happens to be in the server's environment.

Metric labels take only configured (and listed) names; any other model name a client
sends is counted under :data:`OTHER`, so no request can add series to ``/metrics`` or
put its own bytes into the scrape.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

from ..config import Config
from ..errors import UnknownModelError

__all__ = ["OTHER", "Exposure", "key_label"]

#: The label of every model name (or odd key name) that is not configured.
OTHER = "other"
#: Labels the gateway itself uses for "no model yet" and "no key".
_OWN_LABELS = frozenset({"-", "master"})
_MAX_KEY_LABEL = 128


def key_label(name: str) -> str:
    """A key's name as a metric label: names are set by the admin, but a label is
    printable and short, or it is :data:`OTHER`."""
    if len(name) <= _MAX_KEY_LABEL and name.isprintable():
        return name
    return OTHER


@dataclass(frozen=True, slots=True)
class Exposure:
    """The model names served (and labelled) by one gateway."""

    #: Routes, models and aliases of the config, plus the names listed in
    #: ``serve_unconfigured``: served, and their own metric label.
    named: frozenset[str]
    #: The names listed in ``serve_unconfigured``.
    listed: tuple[str, ...] = ()
    #: ``serve_unconfigured: true``: any other name the router resolves is served too.
    everything: bool = False

    @classmethod
    def from_config(cls, config: Config) -> Exposure:
        opt_in = config.gateway.serve_unconfigured
        listed = tuple(opt_in) if isinstance(opt_in, list) else ()
        return cls(
            named=frozenset((*config.names(), *listed)), listed=listed, everything=opt_in is True
        )

    def serves(self, model: str) -> bool:
        return self.everything or model in self.named

    def check(self, model: str, allowed: Callable[[str], bool] | None = None) -> None:
        """Raise :class:`UnknownModelError` (404) for a name this gateway does not serve;
        close matches only among the names the caller's key may use."""
        if self.everything or model in self.named:
            return
        candidates = [n for n in self.named if allowed is None or allowed(n)]
        raise UnknownModelError(
            model, difflib.get_close_matches(model, sorted(candidates), n=3, cutoff=0.6)
        )

    def extra_listed(self) -> list[tuple[str, str]]:
        """Unconfigured names ``GET /v1/models`` lists, with their owner: those opted in
        by name, and with ``serve_unconfigured: true`` the embedded models."""
        names = [(n, "crossroads") for n in self.listed]
        if self.everything:
            from ..backends.embedded import EMBEDDED_MODELS

            names += [(n, "crossroads-embedded") for n in EMBEDDED_MODELS]
        return names

    def model_label(self, model: str) -> str:
        """``model`` as a metric label: configured names as they are, others :data:`OTHER`."""
        if model in self.named or model in _OWN_LABELS:
            return model
        return OTHER
