"""PII detection: positives and hard negatives for every type, in several languages."""

from __future__ import annotations

import pytest

from crossroads.config.guardrails import DEFAULT_PHONE_REGIONS, PII_TYPES
from crossroads.guard.pii import PIIDetector, iban_valid, luhn_valid

DETECTOR = PIIDetector("redact", "test", types=PII_TYPES, phone_regions=DEFAULT_PHONE_REGIONS)


def found(text: str) -> list[tuple[str, str]]:
    return [(f.category, text[f.start : f.end]) for f in DETECTOR.scan(text)]


POSITIVES = [
    ("email", "Mail me at ann@example.com today.", "ann@example.com"),
    ("email", "Contact: J.Doe+billing@mail.example.co.uk", "J.Doe+billing@mail.example.co.uk"),
    ("email", "Meine Adresse: jürgen.müller@beispiel.de", "jürgen.müller@beispiel.de"),
    ("email", "login ok user=sam@corp.io src=10.0.0.8", "sam@corp.io"),
    ("phone", "Call me on +44 20 7946 0958 after five.", "+44 20 7946 0958"),
    ("phone", "My number is (201) 555-0123.", "(201) 555-0123"),
    ("phone", "Appelez-moi au 06 12 34 56 78.", "06 12 34 56 78"),
    ("phone", "Rufen Sie mich unter 030 123456 an.", "030 123456"),
    ("phone", "Llámame al +34 612 34 56 78.", "+34 612 34 56 78"),
    ("phone", "Meu celular é (11) 96123-4567.", "(11) 96123-4567"),
    ("card", "My card is 4111 1111 1111 1111, expiry 09/27.", "4111 1111 1111 1111"),
    ("card", "Amex 3782-822463-10005 please", "3782-822463-10005"),
    ("card", "Charge 5555555555554444 now", "5555555555554444"),
    ("iban", "IBAN: DE89 3704 0044 0532 0130 00.", "DE89 3704 0044 0532 0130 00"),
    ("iban", "Mon IBAN est FR1420041010050500013M02606.", "FR1420041010050500013M02606"),
    ("iban", "Pay GB29 NWBK 6016 1331 9268 19 please", "GB29 NWBK 6016 1331 9268 19"),
    ("ssn", "My SSN is 123-45-6789.", "123-45-6789"),
    ("ssn", "social security number 123 45 6789", "123 45 6789"),
    ("ip", "The login came from 203.0.113.7 at night.", "203.0.113.7"),
    ("ip", "Block 2001:db8::8a2e:370:7334 now", "2001:db8::8a2e:370:7334"),
    (
        "address",
        "I live at 221B Baker Street, London NW1 6XE.",
        "221B Baker Street, London NW1 6XE",
    ),
    ("address", "Wir wohnen in der Hauptstraße 5, 10115 Berlin.", "Hauptstraße 5, 10115 Berlin"),
    ("address", "J'habite au 12 rue de la Paix, 75002 Paris.", "12 rue de la Paix, 75002 Paris"),
    ("address", "Vivo en Calle de Alcalá 42, 28014 Madrid.", "Calle de Alcalá 42, 28014 Madrid"),
    (
        "address",
        "Abito in Via Giuseppe Garibaldi 7, 20121 Milano.",
        "Via Giuseppe Garibaldi 7, 20121 Milano",
    ),
    (
        "address",
        "Ik woon op Keizersgracht 123, 1015 CJ Amsterdam.",
        "Keizersgracht 123, 1015 CJ Amsterdam",
    ),
    ("address", "Moro na Rua Augusta 274, 1100-053 Lisboa.", "Rua Augusta 274, 1100-053 Lisboa"),
    ("name", "Hello, my name is John Smith.", "John Smith"),
    ("name", "Je m'appelle Marie Dupont.", "Marie Dupont"),
    ("name", "Dear Anna Müller, thanks.", "Anna Müller"),
    ("name", "Best regards,\nGrace O'Brien\n", "Grace O'Brien"),
    ("name", "Mijn naam is Sanne de Vries.", "Sanne de Vries"),
    ("name", '{"contact": "Name: Ana Santos"}', "Ana Santos"),
    # "Av." is Spanish and Portuguese: the longer (Portuguese) reading keeps postcode and
    # city inside the address, instead of leaving them unmasked.
    ("address", "Morada: Av. Garrett, 105, 4000-322 Porto", "Av. Garrett, 105, 4000-322 Porto"),
    (
        "address",
        "Endereço: Av. Augusta, 211, 01310-200 São Paulo",
        "Av. Augusta, 211, 01310-200 São Paulo",
    ),
]


@pytest.mark.parametrize(("kind", "text", "value"), POSITIVES, ids=[p[2] for p in POSITIVES])
def test_finds_each_type(kind: str, text: str, value: str) -> None:
    assert (kind, value) in found(text)


HARD_NEGATIVES = [
    "Order #93875915 shipped on 2024-03-15 and arrives by 03/22/2024.",
    "Test card 4111 1111 1111 1112 fails the Luhn check.",
    "The IBAN DE00 1234 5678 9012 3456 78 on the form is a sample.",
    "Upgrade from version 1.2.3.4 to 2.0.0 before Friday.",
    "Ping 999.12.1.300 fails: not an address.",
    "Use 000-12-3456 or 666-12-3456 as dummies; neither is a valid SSN.",
    "Install lodash@4.17.21 and follow @crossroads for updates.",
    "user@localhost only works on this machine.",
    "Dear Sir or Madam, please find the report attached.",
    "I am Very Happy with the release. Ich bin Sehr Zufrieden.",
    "We met at 12:30:45; the MAC address is 00:1A:2B:3C:4D:5E.",
    "Revenue grew from 1,234,567.89 to 2,345,678.90 EUR (12.5%).",
    "ISBN 978-3-16-148410-0 and EAN 4006381333931 are product codes.",
    "Sono passato via Milano 2 volte questa settimana.",
    "Die Bahnhofstraße ist wegen Bauarbeiten gesperrt.",
    "CEP 01310-200 is a Brazilian postcode.",
    "Loopback 127.0.0.1 and ::1 are not personal data.",
]


@pytest.mark.parametrize("text", HARD_NEGATIVES)
def test_hard_negatives_are_left_alone(text: str) -> None:
    assert found(text) == []


def test_checksums() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert iban_valid("DE89 3704 0044 0532 0130 00")
    assert not iban_valid("DE88 3704 0044 0532 0130 00")
    assert not iban_valid("DE89 3704 0044 0532 0130")  # wrong length for DE


def test_types_can_be_limited() -> None:
    only_email = PIIDetector("redact", "t", types=["email"])
    text = "ann@example.com, 4111 1111 1111 1111"
    assert [f.category for f in only_email.scan(text)] == ["email"]


def test_phone_needs_a_phone_shape_or_a_cue() -> None:
    assert found("Tracking 1Z999AA10123456784 and order 123456789") == []
    assert ("phone", "612 34 56 78") in found("Mi teléfono es 612 34 56 78.")


def test_one_bad_region_does_not_disable_the_others() -> None:
    from crossroads.guard.pii import _phone_valid

    assert _phone_valid("020 7946 0958", ("GB",))
    assert _phone_valid("020 7946 0958", ("UK", "GB")), "'UK' is skipped, GB still checked"
    assert _phone_valid("+44 20 7946 0958", ("UK",))


def test_phone_regions_must_be_region_codes() -> None:
    from crossroads.config import parse_config
    from crossroads.errors import ConfigError
    from crossroads.guard import Guardrails

    config = parse_config(
        "guardrails:\n  audit: false\n  policies:\n    - name: p\n"
        "      input: [{check: pii, phone_regions: [gb, De]}]\n"
    )
    Guardrails.from_config(config.guardrails).for_request(model="m")
    with pytest.raises(ConfigError, match=r"phone_regions: 'UK' is not a region code \(use GB\)"):
        parse_config(  # refused when the config is read, before any request
            "guardrails:\n  audit: false\n  policies:\n    - name: p\n"
            "      input: [{check: pii, phone_regions: [UK, GB]}]\n"
        )
    with pytest.raises(ConfigError, match=r"phone_regions: 'UK' is not a region code \(use GB\)"):
        PIIDetector("redact", "p", types=["phone"], phone_regions=["UK", "GB"])
    with pytest.raises(ConfigError, match="'XX' is not a region code"):
        PIIDetector("redact", "t", types=["phone"], phone_regions=["xx"])
    assert PIIDetector("redact", "t", types=["phone"], phone_regions=["gb", "De"]).regions == (
        "GB",
        "DE",
    )


def test_phone_regions_are_checked_at_config_load() -> None:
    from crossroads.config import parse_config
    from crossroads.errors import ConfigError

    head = "guardrails:\n  audit: false\n  policies:\n    - name: p\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(head + "      input: [{check: pii, phone_regions: [UK]}]\n")
    message = str(caught.value)
    assert "guardrails.policies.0.input.0.pii.phone_regions" in message
    assert "phone_regions: 'UK' is not a region code (use GB)" in message
    with pytest.raises(ConfigError, match=r"'ZZ' is not a region code \(use a two-letter ISO"):
        parse_config(head + "      output: [{check: pii, phone_regions: [zz]}]\n")
    # Unused when phone numbers are not checked: not refused (as before).
    parse_config(head + "      input: [{check: pii, types: [email], phone_regions: [UK]}]\n")
