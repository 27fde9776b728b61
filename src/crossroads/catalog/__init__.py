"""The model catalog: facts about closed (API) and open-weight LLMs, each with a source and date.

The data lives in ``models.yaml`` next to this module (read with :mod:`importlib.resources`,
so it works from a wheel or a zip). Every row is validated by :class:`CatalogEntry`; a bad
row raises :class:`CatalogError` naming the file, the entry id and the field.

    >>> from crossroads.catalog import find_model
    >>> find_model("gpt-4o").prices.input            # doctest: +SKIP
    2.5

Lookups (:func:`find_model`) accept, case-insensitively: the id (``openai/gpt-4o``), the part
after the slash (``gpt-4o``), an alias (``gpt-4o-2024-08-06``, the Ollama tag ``llama3.1:8b``),
the vendor's model id or Hugging Face repo
(``claude-sonnet-4-5-20250929``, ``meta-llama/Llama-3.1-8B-Instruct``),
``provider/<any of those>`` (``anthropic/claude-sonnet-4-5-20250929``), and dotted spellings
of dashed names (``claude-sonnet-4.5``).

Importing this module loads only ``pydantic`` (``yaml`` and the data file are read on first
use, then cached), so ``crossroads --help`` stays fast; the table renderer (which needs
``rich``) lives in :mod:`crossroads.catalog.render`.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ..errors import ConfigError

__all__ = [
    "PROVIDERS",
    "Architecture",
    "Benchmark",
    "Capabilities",
    "CatalogEntry",
    "CatalogError",
    "Licence",
    "MemoryEstimate",
    "PriceInfo",
    "SelfHost",
    "Source",
    "TunedPrices",
    "Tuning",
    "find_model",
    "forget_overrides",
    "load_catalog",
    "load_catalog_file",
    "parse_catalog",
    "suggest",
]

#: Providers allowed as the first part of an id.
PROVIDERS: frozenset[str] = frozenset(
    {
        "openai",
        "anthropic",
        "google",
        "meta",
        "bigscience",
        "eleutherai",
        "tii",
        "huggingface",
        "local",
        "qwen",
        "deepseek",
        "mistral",
        "microsoft",
    }
)
_API_BACKENDS = frozenset({"openai", "anthropic", "google"})
_LOCAL_BACKENDS = frozenset({"llamacpp", "transformers"})
_ID_RE = re.compile(r"^[a-z0-9]+/[a-z0-9][a-z0-9._-]*$")
_DATA_FILE = "models.yaml"
_CUTOFF = 0.6  # difflib similarity below which a name is not suggested
_STATUS_RANK = {"active": 0, "legacy": 1, "retired": 2}  # tie-break: models that still run first

Url = Annotated[str, StringConstraints(pattern=r"^https?://\S+$")]
NonEmpty = Annotated[str, StringConstraints(min_length=1)]
Status = Literal["active", "legacy", "retired"]
Kind = Literal["open", "closed"]
BackendName = Literal["openai", "anthropic", "google", "llamacpp", "transformers"]
LicenceCategory = Literal["proprietary", "osi", "rail", "community", "research"]


class CatalogError(ConfigError):
    """The catalog data is invalid. ``entry_id`` and ``field`` say where, when known."""

    def __init__(
        self, message: str, *, source: str, entry_id: str | None = None, field: str | None = None
    ) -> None:
        self.source = source
        self.entry_id = entry_id
        self.field = field
        super().__init__(message)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    """Where a fact comes from: the page and the date it was checked (or its as-of date)."""

    url: Url
    date: dt.date
    about: NonEmpty


class Licence(_Strict):
    name: NonEmpty
    category: LicenceCategory
    allows: NonEmpty


class Capabilities(_Strict):
    tools: bool
    vision: bool
    json_schema: bool


class PriceInfo(_Strict):
    """Vendor list prices in USD per 1M tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(ge=0)
    as_of: dt.date
    source: Url

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> float:
        """USD for one call; ``cached_tokens`` is the part of ``prompt_tokens`` read from cache."""
        cached = min(max(cached_tokens, 0), prompt_tokens)
        cached_rate = self.cached_input if self.cached_input is not None else self.input
        return (
            (prompt_tokens - cached) * self.input
            + cached * cached_rate
            + completion_tokens * self.output
        ) / 1_000_000


class MemoryEstimate(_Strict):
    """Approximate memory for the weights, in GB, per precision."""

    fp16: float = Field(gt=0)
    int8: float = Field(gt=0)
    int4: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> MemoryEstimate:
        if not self.fp16 > self.int8 > self.int4:
            raise ValueError(
                f"expected fp16 > int8 > int4, got {self.fp16} / {self.int8} / {self.int4}"
            )
        return self


class Architecture(_Strict):
    """Transformer shape from the model's ``config.json`` (used for KV-cache estimates)."""

    type: NonEmpty
    layers: int = Field(gt=0)
    hidden_size: int = Field(gt=0)
    attention_heads: int = Field(gt=0)
    kv_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)

    @model_validator(mode="after")
    def _heads(self) -> Architecture:
        if self.kv_heads > self.attention_heads or self.attention_heads % self.kv_heads:
            raise ValueError(
                f"kv_heads ({self.kv_heads}) must divide attention_heads ({self.attention_heads})"
            )
        return self

    def kv_cache_bytes_per_token(self, bytes_per_value: float = 2.0) -> float:
        """Bytes of KV cache one token occupies: 2 (K and V) x layers x kv_heads x head_dim."""
        return 2 * self.layers * self.kv_heads * self.head_dim * bytes_per_value


class SelfHost(_Strict):
    memory_gb: MemoryEstimate
    architecture: Architecture
    obtain: Url


class Benchmark(_Strict):
    """A vendor- or paper-published score (not measured by Crossroads)."""

    name: NonEmpty
    score: float
    source: Url
    as_of: dt.date


class TunedPrices(_Strict):
    """What a tuned model costs to call, in USD per 1M tokens (vendors often charge more
    than for the base model)."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)


class Tuning(_Strict):
    """What a closed model's vendor lets you customise through its API, at what price, and
    what it keeps of your training data."""

    #: Where: "OpenAI fine-tuning API", "Vertex AI supervised tuning", "Amazon Bedrock".
    api: NonEmpty
    #: Supervised, DPO, reinforcement (RFT), ...
    methods: list[NonEmpty] = Field(min_length=1)
    #: USD per 1M training tokens (tokens in the data x epochs); None when billed by the
    #: hour or not listed here (then ``crossroads cost`` cannot price the training).
    training_per_1m_tokens: float | None = Field(ge=0)
    #: USD per hour of training, for vendors that bill time instead of tokens.
    training_per_hour: float | None = Field(default=None, ge=0)
    #: Inference prices of the tuned model (None: the base model's prices).
    tuned_prices: TunedPrices | None = None
    #: Fixed costs of keeping a tuned model (hosting, storage), in words.
    hosting: str | None = None
    #: What the vendor keeps of training data and tuned weights, and for how long.
    data_retention: NonEmpty
    as_of: dt.date
    source: Url
    retention_source: Url


class CatalogEntry(_Strict):
    """One model: identity, lifecycle, limits, licence, prices or self-hosting facts, sources."""

    id: str
    name: NonEmpty
    family: NonEmpty
    vendor: NonEmpty
    kind: Kind
    status: Status
    successor: str | None
    backend: BackendName
    vendor_model: NonEmpty
    aliases: list[NonEmpty] = Field(default_factory=list)
    released: dt.date
    parameters_b: float | None = Field(gt=0)
    #: Mixture-of-experts models: parameters used per token (``parameters_b`` is the total).
    active_parameters_b: float | None = Field(default=None, gt=0)
    context_window: int = Field(gt=0)
    max_output_tokens: int | None = Field(gt=0)
    languages: NonEmpty
    training_data: NonEmpty
    licence: Licence
    capabilities: Capabilities
    prices: PriceInfo | None
    self_host: SelfHost | None
    fine_tuning: NonEmpty
    #: Closed models: the vendor's fine-tuning offer (None: none through an API).
    tuning: Tuning | None = None
    support: list[NonEmpty] = Field(min_length=1)
    benchmarks: list[Benchmark] = Field(default_factory=list)
    sources: list[Source] = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _id_form(cls, value: str) -> str:
        if not _ID_RE.match(value):
            raise ValueError(f"{value!r} is not 'provider/model' in lower case")
        provider = value.split("/", 1)[0]
        if provider not in PROVIDERS:
            raise ValueError(f"provider {provider!r} is not one of {sorted(PROVIDERS)}")
        return value

    @field_validator("successor")
    @classmethod
    def _successor_form(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            if not _ID_RE.match(value):
                raise ValueError(f"{value!r} is not a catalog id ('provider/model')")
            if value == info.data.get("id"):
                raise ValueError("a model cannot be its own successor")
        return value

    @field_validator("backend")
    @classmethod
    def _backend_fits_kind(cls, value: str, info: ValidationInfo) -> str:
        kind = info.data.get("kind")
        allowed = _API_BACKENDS if kind == "closed" else _LOCAL_BACKENDS
        if kind is not None and value not in allowed:
            raise ValueError(f"{kind} models use one of {sorted(allowed)}, not {value!r}")
        return value

    @field_validator("prices")
    @classmethod
    def _closed_active_has_prices(
        cls, value: PriceInfo | None, info: ValidationInfo
    ) -> PriceInfo | None:
        if (
            value is None
            and info.data.get("kind") == "closed"
            and (info.data.get("status") == "active")
        ):
            raise ValueError("an active closed model needs prices (input, output, as_of, source)")
        return value

    @field_validator("self_host")
    @classmethod
    def _self_host_fits_kind(cls, value: SelfHost | None, info: ValidationInfo) -> SelfHost | None:
        kind = info.data.get("kind")
        if kind == "open" and value is None:
            raise ValueError("open-weight models need self_host (memory_gb, architecture, obtain)")
        if kind == "closed" and value is not None:
            raise ValueError("closed models have no self_host section (weights are not available)")
        return value

    @field_validator("tuning")
    @classmethod
    def _tuning_is_for_closed(cls, value: Tuning | None, info: ValidationInfo) -> Tuning | None:
        if value is not None and info.data.get("kind") == "open":
            raise ValueError("open models are tuned on their weights (crossroads tune), not an API")
        return value

    @property
    def provider(self) -> str:
        """The part of the id before the slash (``openai``, ``meta``, ...)."""
        return self.id.split("/", 1)[0]

    @property
    def short_name(self) -> str:
        """The part of the id after the slash (``gpt-4o``)."""
        return self.id.split("/", 1)[1]

    def lookup_keys(self) -> list[str]:
        """Lower-case names that :func:`find_model` resolves to this entry."""
        keys = [self.id, self.short_name, *self.aliases, self.vendor_model]
        return list(dict.fromkeys(k.strip().lower() for k in keys))


def _error_location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(entry)"


def parse_catalog(data: Any, *, source: str = _DATA_FILE) -> list[CatalogEntry]:
    """Validate already-parsed YAML (a list of mappings) into entries.

    Checks each entry's fields, then the catalog as a whole: unique ids, successors that
    exist, and lookup names (ids, aliases, vendor model ids) that point to one entry only.
    Raises :class:`CatalogError` naming the source, the entry id and the field.
    """
    if not isinstance(data, list):
        raise CatalogError(
            f"{source}: expected a YAML list of model entries, got {type(data).__name__}",
            source=source,
        )
    entries: list[CatalogEntry] = []
    for index, raw in enumerate(data):
        entry_id = raw.get("id") if isinstance(raw, Mapping) else None
        label = f"entry {entry_id!r}" if entry_id else f"entry #{index + 1} (no id)"
        if not isinstance(raw, Mapping):
            raise CatalogError(
                f"{source}: {label}: expected a mapping, got {type(raw).__name__}",
                source=source,
            )
        try:
            entries.append(CatalogEntry.model_validate(dict(raw)))
        except ValidationError as exc:
            problems = [
                f"field '{_error_location(err['loc'])}': {err['msg']}" for err in exc.errors()
            ]
            first = exc.errors()[0]
            raise CatalogError(
                f"{source}: {label}: " + "; ".join(problems),
                source=source,
                entry_id=str(entry_id) if entry_id else None,
                field=_error_location(first["loc"]),
            ) from None
    _check_catalog(entries, source)
    return entries


def _check_catalog(entries: list[CatalogEntry], source: str) -> None:
    ids: set[str] = set()
    for entry in entries:
        if entry.id in ids:
            raise CatalogError(
                f"{source}: entry {entry.id!r}: field 'id': duplicate id",
                source=source,
                entry_id=entry.id,
                field="id",
            )
        ids.add(entry.id)
    owner: dict[str, str] = {}
    for entry in entries:
        if entry.successor is not None and entry.successor not in ids:
            raise CatalogError(
                f"{source}: entry {entry.id!r}: field 'successor': {entry.successor!r} is not "
                "an id in the catalog",
                source=source,
                entry_id=entry.id,
                field="successor",
            )
        for key in entry.lookup_keys():
            other = owner.setdefault(key, entry.id)
            if other != entry.id:
                raise CatalogError(
                    f"{source}: entry {entry.id!r}: field 'aliases': the name {key!r} already "
                    f"refers to {other!r}",
                    source=source,
                    entry_id=entry.id,
                    field="aliases",
                )


def _load_yaml(text: str, source: str) -> Any:
    import yaml  # deferred: only needed when the catalog is read

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available
    try:
        return yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        raise CatalogError(f"{source}: not valid YAML: {exc}", source=source) from None


def load_catalog_file(path: str | Path) -> list[CatalogEntry]:
    """Load and validate a catalog YAML file (same checks as the built-in catalog)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read: {exc.strerror}", source=str(path)) from None
    return parse_catalog(_load_yaml(text, str(path)), source=str(path))


@functools.cache
def _builtin() -> tuple[CatalogEntry, ...]:
    from importlib import resources  # deferred with the read itself

    text = resources.files(__name__).joinpath(_DATA_FILE).read_text(encoding="utf-8")
    return tuple(parse_catalog(_load_yaml(text, _DATA_FILE), source=_DATA_FILE))


@functools.lru_cache(maxsize=16)
def _overrides_file(home_env: str | None, user_home: str | None) -> str:
    from .prices import overrides_path

    return str(overrides_path())  # computed once per CROSSROADS_HOME / HOME (Path.home is slow)


_CHECK_EVERY_S = 1.0
_checked: dict[str, tuple[float, tuple[str, int] | None]] = {}  # path -> (when, key)


def _overrides_key() -> tuple[str, int] | None:
    """The recorded price overrides (``crossroads catalog update --apply``): path and
    modification time, so a new file is picked up and an unchanged one read once. The file
    is looked at most once a second per path (a ``stat`` costs more than the lookup it
    guards); :func:`forget_overrides` makes the next lookup look again."""
    path = _overrides_file(os.environ.get("CROSSROADS_HOME"), os.environ.get("HOME"))
    now = time.monotonic()
    seen = _checked.get(path)
    if seen is not None and now - seen[0] < _CHECK_EVERY_S:
        return seen[1]
    try:
        key: tuple[str, int] | None = (path, os.stat(path).st_mtime_ns)
    except OSError:
        key = None
    _checked[path] = (now, key)
    return key


def forget_overrides() -> None:
    """Look at the price-overrides file again on the next lookup (after writing it)."""
    _checked.clear()


@functools.cache
def _entries(key: tuple[str, int] | None) -> tuple[CatalogEntry, ...]:
    if key is None:
        return _builtin()
    from .prices import apply_overrides

    return apply_overrides(_builtin(), Path(key[0]))


@functools.cache
def _index_for(key: tuple[str, int] | None) -> dict[str, CatalogEntry]:
    return {k: entry for entry in _entries(key) for k in entry.lookup_keys()}


def _index() -> dict[str, CatalogEntry]:
    return _index_for(_overrides_key())


def load_catalog() -> list[CatalogEntry]:
    """All entries of the built-in catalog, in file order (validated once, then cached), with
    any price recorded by ``crossroads catalog update --prices FILE --apply``."""
    return list(_entries(_overrides_key()))


def find_model(name: str) -> CatalogEntry | None:
    """The entry a name refers to, or None (see the module docstring for accepted names).

    Exact names win; failing that, dots are read as dashes (``claude-sonnet-4.5`` finds
    ``claude-sonnet-4-5``), and ``provider/name`` is tried as ``name`` within that provider.
    Nothing fuzzier: a typo returns None (use :func:`suggest` for close matches). A
    ``local/NAME`` made by ``crossroads tune`` is found too, as its base model's row
    renamed (through :mod:`crossroads.catalog.hooks`).
    """
    key = name.strip().lower()
    if not key:
        return None
    for candidate in dict.fromkeys((key, key.replace(".", "-"))):
        entry = _lookup(candidate)
        if entry is not None:
            return entry
    if key.startswith("local/"):  # e.g. a model made by `crossroads tune`: its base's facts
        from .hooks import local_catalog_entry

        return local_catalog_entry(name.strip())
    return None


def _lookup(key: str) -> CatalogEntry | None:
    index = _index()
    entry = index.get(key)
    if entry is None and "/" in key:
        provider, _, rest = key.partition("/")
        candidate = index.get(rest)
        if candidate is not None and provider in (candidate.provider, candidate.backend):
            entry = candidate
    return entry


def suggest(name: str, n: int = 3) -> list[str]:
    """Up to ``n`` catalog ids whose id, short name or alias is close to ``name``.

    Best match first; on equal similarity, active models come before legacy and retired ones.
    """
    query = name.strip().lower()
    if n <= 0 or not query:
        return []
    queries = [query]
    if "/" in query:  # "antropic/claude-sonet" should also match on its model part
        queries.append(query.rsplit("/", 1)[1])
    best: dict[str, float] = {}
    matcher = difflib.SequenceMatcher()
    for entry in _builtin():
        keys = {entry.id, entry.short_name, *entry.aliases}
        for key in {k.lower() for k in keys}:
            matcher.set_seq2(key)
            for q in queries:
                matcher.set_seq1(q)
                if matcher.real_quick_ratio() < _CUTOFF or matcher.quick_ratio() < _CUTOFF:
                    continue
                score = matcher.ratio()
                if score >= _CUTOFF and score > best.get(entry.id, 0.0):
                    best[entry.id] = score
    status = {e.id: _STATUS_RANK[e.status] for e in _builtin()}
    ranked = sorted(best.items(), key=lambda item: (-item[1], status[item[0]], item[0]))
    return [entry_id for entry_id, _ in ranked[:n]]
