"""Training data for ``crossroads tune``: formats, file:line errors, masking, the split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from crossroads.errors import ConfigError
from crossroads.tune.data import (
    IGNORE_INDEX,
    TrainingDataError,
    load_examples,
    split_examples,
    tokenize_examples,
)

from .conftest import require


def write(path: Path, lines: list[Any]) -> Path:
    path.write_text(
        "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines),
        encoding="utf-8",
    )
    return path


CHAT = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hey"}]}
PAIR = {"prompt": "2+2?", "completion": "4"}


def test_reads_chat_and_prompt_completion_lines(tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", [CHAT, "", PAIR])
    examples, fmt = load_examples(path)
    assert fmt == "mixed"
    assert [e.line for e in examples] == [1, 3]
    assert examples[1].as_dicts() == [
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"},
    ]
    assert load_examples(write(tmp_path / "c.jsonl", [CHAT]))[1] == "chat"


@pytest.mark.parametrize(
    ("lines", "line", "words"),
    [
        ([CHAT, "{not json"], 2, "invalid JSON"),
        ([CHAT, CHAT, {"text": "hello"}], 3, "missing fields"),
        ([{"prompt": "only a prompt"}], 1, "`completion` is missing"),
        ([{"messages": []}], 1, "non-empty list"),
        ([{"messages": [{"role": "user", "content": "Hi"}]}], 1, "last message"),
        ([{"messages": [{"role": "bot", "content": "x"}]}], 1, "role must be one of"),
        ([{"messages": [{"role": "user"}, {"role": "assistant", "content": "x"}]}], 1, "content"),
        (["[1, 2]"], 1, "expected a JSON object"),
        ([{"prompt": "p", "completion": "  "}], 1, "`completion` is empty"),
    ],
)
def test_bad_lines_name_the_file_and_line(
    tmp_path: Path, lines: list[Any], line: int, words: str
) -> None:
    path = write(tmp_path / "bad.jsonl", lines)
    with pytest.raises(TrainingDataError) as caught:
        load_examples(path)
    assert caught.value.line == line
    assert f"{path}:{line}:" in caught.value.message
    assert words in caught.value.message
    assert isinstance(caught.value, ConfigError)


def test_empty_and_missing_files_are_named(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(TrainingDataError, match=rf"{empty}: the file has no examples"):
        load_examples(empty)
    with pytest.raises(TrainingDataError, match="does not exist"):
        load_examples(tmp_path / "nope.jsonl")


def test_a_file_that_is_not_utf8_names_the_line_and_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    good = json.dumps({"prompt": "p", "completion": "c"}) + "\n"
    bad = '{"prompt": "caf\u00e9", "completion": "c"}\n'.encode("latin-1")
    path.write_bytes(good.encode() + good.encode() + bad)
    with pytest.raises(TrainingDataError) as caught:
        load_examples(path)
    offset = 2 * len(good) + len('{"prompt": "caf')
    assert caught.value.line == 3
    assert caught.value.message == (
        f"{path}:3: not UTF-8 text; save the file as UTF-8 "
        f"(byte 0xe9 at byte {offset} of the file, column 16)"
    )
    assert isinstance(caught.value, ConfigError)

    utf16 = tmp_path / "utf16.jsonl"
    utf16.write_text(good, encoding="utf-16")
    with pytest.raises(TrainingDataError, match=rf"{utf16}:1: not UTF-8 text; save the file"):
        load_examples(utf16)


def test_split_is_seeded_and_keeps_one_of_each(tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", [{"prompt": f"q{i}", "completion": "a"} for i in range(20)])
    examples, _ = load_examples(path)
    train, val = split_examples(examples, 0.2, seed=1)
    again = split_examples(examples, 0.2, seed=1)
    assert (train, val) == again
    assert len(val) == 4 and len(train) == 16
    assert {e.line for e in train}.isdisjoint({e.line for e in val})
    assert split_examples(examples, 0.2, seed=2)[1] != val
    tiny_train, tiny_val = split_examples(examples[:2], 0.01, seed=0)
    assert len(tiny_train) == 1 and len(tiny_val) == 1
    assert split_examples(examples, 0.0, seed=0)[1] == []
    with pytest.raises(ConfigError):
        split_examples(examples, 1.0, seed=0)


# --- tokenisation (needs the tokenizers package) -------------------------------------------


@pytest.fixture(scope="module")
def tokenizers() -> dict[str, Any]:
    require("transformers", "needs transformers: pip install -e '.[dev]'")
    from .local_models import CHAT_TEMPLATE, build_tokenizer

    plain = build_tokenizer()
    chat = build_tokenizer()
    chat.chat_template = CHAT_TEMPLATE
    return {"plain": plain, "chat": chat}


def learned_text(tokenizer: Any, ids: tuple[int, ...], labels: tuple[int, ...]) -> str:
    kept = [i for i, label in zip(ids, labels, strict=True) if label != IGNORE_INDEX]
    return str(tokenizer.decode(kept))


def test_chat_template_masks_everything_but_the_replies(
    tmp_path: Path, tokenizers: dict[str, Any]
) -> None:
    tok = tokenizers["chat"]
    convo = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Name a colour."},
            {"role": "assistant", "content": "Blue."},
            {"role": "user", "content": "Another?"},
            {"role": "assistant", "content": "Green."},
        ]
    }
    examples, _ = load_examples(write(tmp_path / "d.jsonl", [convo]))
    [t] = tokenize_examples(examples, tok, 512)
    assert tok.decode(list(t.input_ids)) == tok.apply_chat_template(
        convo["messages"], tokenize=False
    )
    assert learned_text(tok, t.input_ids, t.labels) == "Blue.\nGreen.\n"
    # The prompt part is tokenised exactly as the backend tokenises a request.
    first_turn = convo["messages"][:2]
    prompt = tok.apply_chat_template(first_turn, add_generation_prompt=True, tokenize=False)
    prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    assert list(t.input_ids[: len(prompt_ids)]) == prompt_ids


def test_plain_template_learns_the_reply_and_eos(
    tmp_path: Path, tokenizers: dict[str, Any]
) -> None:
    tok = tokenizers["plain"]
    examples, _ = load_examples(write(tmp_path / "d.jsonl", [PAIR]))
    [t] = tokenize_examples(examples, tok, 512)
    assert tok.decode(list(t.input_ids)) == "User: 2+2?\n\nAssistant: 4" + tok.eos_token
    assert t.labels[-1] == tok.eos_token_id
    assert learned_text(tok, t.input_ids, t.labels) == " 4" + tok.eos_token
    assert t.trained_tokens == sum(1 for x in t.labels if x != IGNORE_INDEX)


def test_an_example_longer_than_the_context_names_its_line(
    tmp_path: Path, tokenizers: dict[str, Any]
) -> None:
    long = {"prompt": "word " * 200, "completion": "ok"}
    path = write(tmp_path / "d.jsonl", [PAIR, PAIR, long])
    examples, _ = load_examples(path)
    with pytest.raises(TrainingDataError, match=rf"{path}:3: the example is \d+ tokens, longer"):
        tokenize_examples(examples, tokenizers["plain"], 64)


def test_training_and_serving_use_the_same_plain_prompt() -> None:
    from crossroads.backends._local import chat_messages, plain_prompt, plain_text
    from crossroads.tune.data import _renderer
    from crossroads.types import ChatRequest

    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "Another?"},
    ]
    render, templated = _renderer(object())  # no chat_template: the plain fallback
    assert not templated and render is plain_text
    request = ChatRequest.model_validate({"model": "m", "messages": messages})
    assert chat_messages(request) == messages
    served = plain_prompt(request)
    assert render(messages, True) == served
    assert served == (
        "System: Be brief.\n\nUser: Name a colour.\n\nAssistant: Blue.\n\nUser: Another?"
        "\n\nAssistant:"
    )
    assert render(messages, False) == served.removesuffix("\n\nAssistant:")
