"""Input checks read text as the model would decode it, across adjacent strings, and —
for an untrusted caller — every string of the request; redactions land on the text as
written."""

from __future__ import annotations

import base64

import pytest

from crossroads.config import parse_config
from crossroads.errors import GuardBlockedError
from crossroads.guard import Guardrails
from crossroads.guard.findings import Finding
from crossroads.guard.pieces import merge_spans, render, scan_pieces
from crossroads.guard.pii import PIIDetector
from crossroads.guard.unmask import fold
from crossroads.types import ChatRequest

POLICY = """
guardrails:
  audit: false
  policies:
    - name: p
      input:
        - {check: pii, action: redact, restore: true}
        - {check: secrets, action: block}
"""
EMAIL = "ann.lee@example.com"


def guard(*, untrusted: bool) -> Guardrails:
    return Guardrails.from_config(parse_config(POLICY).guardrails, untrusted=untrusted)


def request(**fields: object) -> ChatRequest:
    return ChatRequest.model_validate({"model": "m", **fields})


# -- fold ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    ["plain words only", "Grüße aus München", "internationalization", "R&D costs", "50% off"],
)
def test_plain_text_is_not_folded(text: str) -> None:
    assert fold(text) is None


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("a\u200bn\u200dn@x", "ann@x"),
        ("ann\uff20x", "ann@x"),
        ("ann%40x", "ann@x"),
        ("ann&#64;x &commat; &#x40;", "ann@x @ @"),
        ("\uff05\uff14\uff10", "@"),  # full-width "%40": folded, then decoded
        ("%EF%BC%A0", "@"),  # percent-encoded full-width "@": decoded, then folded
        ("\u202eann@x\u202c", "ann@x"),
    ],
)
def test_fold_and_map_back(text: str, folded: str) -> None:
    result = fold(text)
    assert result is not None and result.text == folded
    assert result.span(0, len(result.text)) == (
        min(i for i, c in enumerate(text) if c not in "\u200b\u200d\u202e"),
        len(text) - (1 if text.endswith("\u202c") else 0),
    )


def test_base64_runs_are_decoded_when_they_are_text() -> None:
    blob = base64.b64encode(f"mail {EMAIL}".encode()).decode()
    url = base64.urlsafe_b64encode(b"\xfa\xfb>>?? " + EMAIL.encode()).decode()
    result = fold(f"see {blob} and {base64.b64encode(bytes(range(30))).decode()}")
    assert result is not None
    assert [(s, e, t) for s, e, t in result.blobs] == [(4, 4 + len(blob), f"mail {EMAIL}")]
    assert fold(f"x {url}") is None  # not UTF-8 text


# -- pieces ------------------------------------------------------------------------------------
def test_an_entity_split_across_pieces_is_found_and_redacted_in_each() -> None:
    rule = PIIDetector("redact", "p", types=["email", "card"])
    texts = ["write to ann.l", "ee@exam", "ple.com please", "card 4111 1111", " 1111 1111"]
    hits = scan_pieces(texts, [[rule]] * len(texts))
    spans = merge_spans(hits)
    assert [(f.category) for f, _ in spans] == ["email", "card"]
    out = render(texts, spans, lambda hit, value: f"<{value}>")
    assert out == [
        "write to <ann.lee@example.com>",
        "",
        " please",
        "card <4111 1111 1111 1111>",
        "",
    ]


def test_pieces_keep_their_own_findings() -> None:
    """A number at the end of one piece is not glued to the next one's start."""
    rule = PIIDetector("redact", "p", types=["phone", "email"])
    texts = ["Call +1 415 555 0100", "2 more items", f"{EMAIL}", "Thanks"]
    spans = merge_spans(scan_pieces(texts, [[rule]] * 4))
    assert render(texts, spans, lambda hit, v: "[X]") == [
        "Call [X]",
        "2 more items",
        "[X]",
        "Thanks",
    ]


def test_overlapping_spans_are_joined_not_dropped() -> None:
    rule = PIIDetector("redact", "p", types=["email"])
    merged = merge_spans([(Finding(0, 10, "email"), rule), (Finding(5, 20, "secret"), rule)])
    assert [(f.start, f.end, f.category) for f, _ in merged] == [(0, 20, "email")]


# -- the request ----------------------------------------------------------------------------
async def test_client_keeps_the_system_prompt_trusted_the_gateway_does_not() -> None:
    body = request(
        messages=[
            {"role": "system", "content": f"Mailbox {EMAIL}"},
            {"role": "user", "content": "hi"},
        ],
        stop=[EMAIL],
    )
    trusted = await guard(untrusted=False).for_request(model="m").check_input(body)
    assert trusted.messages[0].content == f"Mailbox {EMAIL}" and trusted.stop == [EMAIL]
    checked = await guard(untrusted=True).for_request(model="m").check_input(body)
    assert checked.messages[0].content == "Mailbox [EMAIL_1]" and checked.stop == ["[EMAIL_1]"]


async def test_obfuscated_values_are_redacted_where_written_and_restored() -> None:
    blob = base64.b64encode(EMAIL.encode()).decode()
    text = f"A ann.lee\u200b@example.com B ann.lee%40example.com C {blob} D 4111.1111.1111.1111"
    rg = guard(untrusted=False).for_request(model="m")
    sent = await rg.check_input(request(messages=[{"role": "user", "content": text}]))
    assert sent.messages[0].content == "A [EMAIL_1] B [EMAIL_2] C [EMAIL_3] D [CARD_1]"
    assert rg.vault.restore("[EMAIL_2] [EMAIL_3]") == f"ann.lee%40example.com {blob}"


async def test_untrusted_fields_every_depth_and_extras() -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "send",
            "description": f"as {EMAIL}",
            "parameters": {"properties": {EMAIL: {"enum": [EMAIL]}}},
        },
    }
    body = request(
        messages=[{"role": "user", "content": "hi", "name": EMAIL}],
        tools=[tool],
        user=EMAIL,
        metadata={"deep": [{"x": EMAIL}]},
    )
    sent = await guard(untrusted=True).for_request(model="m").check_input(body)
    dumped = sent.model_dump_json()
    assert EMAIL not in dumped and dumped.count("[EMAIL_1]") == 6
    assert sent.tools is not None and sent.tools[0].function.name == "send"


async def test_an_identifier_that_would_need_a_placeholder_is_refused() -> None:
    tool = {"type": "function", "function": {"name": "pay_4111111111111111"}}
    body = request(messages=[{"role": "user", "content": "hi"}], tools=[tool])
    with pytest.raises(GuardBlockedError, match="Rename it") as caught:
        await guard(untrusted=True).for_request(model="m").check_input(body)
    assert caught.value.categories == ["card"] and caught.value.check == "pii"


async def test_a_secret_split_across_parts_blocks() -> None:
    key = "ghp_" + "Zx9Kq2Lm4Np6Rs8Tv0Wy1Ab3Cd5Ef7Gh9Ij1"
    parts = [{"type": "text", "text": f"token {key[:20]}"}, {"type": "text", "text": key[20:]}]
    with pytest.raises(GuardBlockedError, match="secret"):
        await (
            guard(untrusted=False)
            .for_request(model="m")
            .check_input(request(messages=[{"role": "user", "content": parts}]))
        )
