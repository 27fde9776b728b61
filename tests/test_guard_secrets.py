"""Secret detection: vendor keys, private keys, passwords; and their look-alikes."""

from __future__ import annotations

import random
import string

import pytest

from crossroads.guard.secrets import SecretDetector, shannon_entropy

DETECTOR = SecretDetector("block", "test")
_R = random.Random(7)
AN = string.ascii_letters + string.digits


def rnd(n: int, chars: str = AN) -> str:
    return "".join(_R.choice(chars) for _ in range(n))


def categories(text: str) -> list[str]:
    return [f.category for f in DETECTOR.scan(text)]


POSITIVES = [
    ("openai_api_key", f"export OPENAI_API_KEY=sk-proj-{rnd(80, AN + '_-')}"),
    ("anthropic_api_key", f'key = "sk-ant-api03-{rnd(90, AN + "_-")}"'),
    (
        "aws_access_key_id",
        f"aws_access_key_id = AKIA{rnd(16, string.ascii_uppercase + string.digits)}",
    ),
    ("aws_secret_access_key", f"aws_secret_access_key = {rnd(40)}"),
    ("github_token", f"token: ghp_{rnd(36)}"),
    ("gitlab_token", f"glpat-{rnd(20)}"),
    ("slack_token", f"xoxb-{rnd(11, string.digits)}-{rnd(12, string.digits)}-{rnd(24)}"),
    ("google_api_key", f"AIza{rnd(35)}"),
    ("stripe_secret_key", f"sk_live_{rnd(24)}"),
    ("huggingface_token", f"HF token hf_{rnd(34)}"),
    ("jwt", f"Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.{rnd(43)}"),
    (
        "private_key",
        f"-----BEGIN RSA PRIVATE KEY-----\n{rnd(64)}\n{rnd(64)}\n-----END RSA PRIVATE KEY-----",
    ),
    ("connection_string_password", "postgresql://app:S3cr3t!pass@db.internal:5432/prod"),
    ("password_assignment", "db_password: 'hunter2-Xy9!'"),
    ("password_assignment", "Passwort: Sommer2024!"),
    ("password_assignment", "mot de passe : Ete2024#Nice"),
]


@pytest.mark.parametrize(
    ("kind", "text"), POSITIVES, ids=[p[0] + str(i) for i, p in enumerate(POSITIVES)]
)
def test_finds_secrets(kind: str, text: str) -> None:
    assert kind in categories(text)


def test_connection_string_masks_only_the_password() -> None:
    text = "postgresql://app:S3cr3t!pass@db.internal:5432/prod"
    (finding,) = DETECTOR.scan(text)
    assert text[finding.start : finding.end] == "S3cr3t!pass"


NEGATIVES = [
    "export OPENAI_API_KEY=YOUR_API_KEY",
    "api_key = os.environ['OPENAI_API_KEY']",
    "token: <your-token-here>",
    "password=${DB_PASSWORD}",
    "AKIAIOSFODNN7EXAMPLE is the example key in the AWS docs.",
    "commit 3f2c9a1b7d4e6f8091a2b3c4d5e6f7081920a1b2 fixed it",
    "request 550e8400-e29b-41d4-a716-446655440000 failed",
    "password: ********",
    "The password is not set yet.",
    "Keys look like sk-... and are secret.",
    "secret_key = get_secret('stripe')",
    "-----BEGIN PUBLIC KEY----- is safe to share.",
    "sk-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "postgres://localhost:5432/app",
]


@pytest.mark.parametrize("text", NEGATIVES)
def test_look_alikes_are_not_secrets(text: str) -> None:
    assert categories(text) == []


def test_entropy() -> None:
    assert shannon_entropy("aaaa") == 0
    assert shannon_entropy(rnd(64)) > 4.5


def test_unterminated_private_key_is_held_back_in_a_stream() -> None:
    head = "here:\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA"
    assert DETECTOR.hold_from(head) == head.index("-----BEGIN")
