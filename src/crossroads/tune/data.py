"""Training data: JSONL files of chats or prompt/completion pairs, validated and tokenised.

Two line formats (one JSON object per line; blank lines are skipped)::

    {"messages": [{"role": "system", "content": "..."},
                  {"role": "user", "content": "..."},
                  {"role": "assistant", "content": "..."}]}
    {"prompt": "...", "completion": "..."}

A prompt/completion pair is trained as a two-message chat (user, then assistant), so the
tuned model answers through ``crossroads chat`` exactly as it was trained. Every problem
(invalid JSON, a missing or mistyped field, an empty file, an example longer than the
context) is a :class:`TrainingDataError` naming ``file:line``.

Tokenisation renders each conversation the way the transformers backend renders a
request: the tokenizer's chat template when it has one, else the plain ``User:`` /
``Assistant:`` template of :func:`crossroads.backends._local.plain_text` followed by EOS.
Only assistant turns are learned: every other token is labelled ``-100`` (ignored by the
loss). Prompt parts are tokenised as the backend tokenises a prompt, so the model trains
on the very token sequences it will see when it is served.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError

__all__ = [
    "IGNORE_INDEX",
    "DataSummary",
    "Example",
    "TokenizedExample",
    "TrainingDataError",
    "file_sha256",
    "load_examples",
    "split_examples",
    "tokenize_examples",
]

IGNORE_INDEX = -100
_ROLES = ("system", "user", "assistant")


class TrainingDataError(ConfigError):
    """A training file is unusable; ``path`` and ``line`` (1-based, when known) say where."""

    def __init__(self, path: Path, line: int | None, problem: str) -> None:
        self.path = path
        self.line = line
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True, slots=True)
class Example:
    """One training conversation and where it comes from."""

    messages: tuple[tuple[str, str], ...]  # (role, content), ending with an assistant turn
    path: Path
    line: int

    def as_dicts(self) -> list[dict[str, str]]:
        return [{"role": role, "content": content} for role, content in self.messages]


@dataclass(frozen=True, slots=True)
class TokenizedExample:
    input_ids: tuple[int, ...]
    labels: tuple[int, ...]  # IGNORE_INDEX where the token is not learned
    line: int

    @property
    def trained_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE_INDEX)


@dataclass(frozen=True, slots=True)
class DataSummary:
    """What the model card records about the data."""

    path: str
    sha256: str
    size_bytes: int
    examples: int
    train_examples: int
    val_examples: int
    tokens: int
    trained_tokens: int
    format: str


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _messages(raw: Any, path: Path, line: int) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, list) or not raw:
        raise TrainingDataError(path, line, "`messages` must be a non-empty list")
    out: list[tuple[str, str]] = []
    for index, message in enumerate(raw):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise TrainingDataError(path, line, f"{where} must be an object with role and content")
        role, content = message.get("role"), message.get("content")
        if role not in _ROLES:
            raise TrainingDataError(
                path, line, f"{where}.role must be one of {', '.join(_ROLES)} (got {role!r})"
            )
        if not isinstance(content, str):
            raise TrainingDataError(path, line, f"{where}.content is missing or not a string")
        out.append((role, content))
    if out[-1][0] != "assistant":
        raise TrainingDataError(
            path, line, "the last message must be the assistant's reply (the text to learn)"
        )
    if not any(role == "user" for role, _ in out):
        raise TrainingDataError(path, line, "the conversation has no user message")
    return tuple(out)


def _example(raw: Any, path: Path, line: int) -> tuple[Example, str]:
    if not isinstance(raw, dict):
        raise TrainingDataError(path, line, f"expected a JSON object, got {type(raw).__name__}")
    if "messages" in raw:
        return Example(_messages(raw["messages"], path, line), path, line), "chat"
    if "prompt" in raw or "completion" in raw:
        for key in ("prompt", "completion"):
            if not isinstance(raw.get(key), str):
                raise TrainingDataError(path, line, f"`{key}` is missing or not a string")
        if not raw["completion"].strip():
            raise TrainingDataError(path, line, "`completion` is empty")
        pair = (("user", raw["prompt"]), ("assistant", raw["completion"]))
        return Example(pair, path, line), "prompt_completion"
    raise TrainingDataError(
        path,
        line,
        "missing fields: each line needs `messages` (a chat) or `prompt` and `completion`",
    )


def load_examples(path: Path) -> tuple[list[Example], str]:
    """Every example in a JSONL file, and its format (``chat``, ``prompt_completion`` or
    ``mixed``); the first problem raises :class:`TrainingDataError`."""
    path = Path(path)
    if not path.is_file():
        raise TrainingDataError(path, None, "the training file does not exist")
    examples: list[Example] = []
    formats: set[str] = set()
    try:
        with path.open(encoding="utf-8") as handle:
            for number, text in enumerate(handle, 1):
                if not text.strip():
                    continue
                try:
                    raw = json.loads(text)
                except ValueError as exc:
                    raise TrainingDataError(path, number, f"invalid JSON: {exc}") from exc
                example, kind = _example(raw, path, number)
                examples.append(example)
                formats.add(kind)
    except UnicodeDecodeError as exc:
        raise _not_utf8(path) from exc
    if not examples:
        raise TrainingDataError(path, None, "the file has no examples (it is empty)")
    return examples, formats.pop() if len(formats) == 1 else "mixed"


def _not_utf8(path: Path) -> TrainingDataError:
    """The error for a file that does not decode as UTF-8, at its first invalid byte."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = exc.start
        line = data.count(b"\n", 0, start) + 1
        column = start - (data.rfind(b"\n", 0, start) + 1) + 1
        where = f" (byte 0x{data[start]:02x} at byte {start} of the file, column {column})"
        return TrainingDataError(path, line, f"not UTF-8 text; save the file as UTF-8{where}")
    return TrainingDataError(path, None, "not UTF-8 text; save the file as UTF-8")


def split_examples(
    examples: Sequence[Example], val_fraction: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """A seeded train/validation split (at least one of each when there are 2+ examples
    and ``val_fraction`` > 0)."""
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_val = round(len(examples) * val_fraction)
    if val_fraction > 0 and len(examples) >= 2:
        n_val = min(max(n_val, 1), len(examples) - 1)
    val = sorted(order[:n_val])
    train = sorted(order[n_val:])
    return [examples[i] for i in train], [examples[i] for i in val]


def _renderer(tokenizer: Any) -> tuple[Callable[[list[dict[str, str]], bool], str], bool]:
    """A function ``(messages, add_generation_prompt) -> text``, and whether it is the
    tokenizer's own chat template (else the plain fallback, which adds EOS by token)."""
    if getattr(tokenizer, "chat_template", None):

        def chat(messages: list[dict[str, str]], generation: bool) -> str:
            text = tokenizer.apply_chat_template(
                messages, add_generation_prompt=generation, tokenize=False
            )
            return str(text)

        return chat, True

    from ..backends._local import plain_text

    return plain_text, False


def _tokenize_one(
    example: Example,
    tokenizer: Any,
    render: Callable[[list[dict[str, str]], bool], str],
    templated: bool,
) -> tuple[list[int], list[int]]:
    messages = example.as_dicts()
    ids: list[int] = []
    labels: list[int] = []
    done = ""

    def add(text: str, learn: bool, first: bool) -> None:
        # The backend tokenises a templated prompt without special tokens and a plain one
        # with them (a BOS where the tokenizer adds one): do the same for the first part.
        special = first and not templated
        piece = list(tokenizer(text, add_special_tokens=special)["input_ids"]) if text else []
        ids.extend(piece)
        labels.extend(piece if learn else [IGNORE_INDEX] * len(piece))

    for index, (role, _) in enumerate(example.messages):
        if role != "assistant":
            continue
        prompt = render(messages[:index], True)
        if not prompt.startswith(done):
            raise TrainingDataError(
                example.path,
                example.line,
                "the chat template renders this conversation inconsistently (a prefix of "
                "the conversation is not a prefix of its text), so prompt tokens cannot be "
                "masked; use single-turn examples",
            )
        add(prompt[len(done) :], False, not done)
        if templated:
            full = render(messages[: index + 1], False)
            if not full.startswith(prompt):
                raise TrainingDataError(
                    example.path,
                    example.line,
                    "the chat template does not render the reply after the generation "
                    "prompt; this tokenizer's template cannot be used for training",
                )
            add(full[len(prompt) :], True, False)
            done = full
        else:
            reply = " " + example.messages[index][1]
            add(reply, True, False)
            done = prompt + reply
    if not templated and tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
        labels.append(int(tokenizer.eos_token_id))
    return ids, labels


def tokenize_examples(
    examples: Sequence[Example], tokenizer: Any, max_length: int
) -> list[TokenizedExample]:
    """Token ids and loss labels for each example; an example longer than ``max_length``
    tokens is a :class:`TrainingDataError` naming its line (never silently truncated)."""
    render, templated = _renderer(tokenizer)
    out: list[TokenizedExample] = []
    for example in examples:
        ids, labels = _tokenize_one(example, tokenizer, render, templated)
        if len(ids) > max_length:
            raise TrainingDataError(
                example.path,
                example.line,
                f"the example is {len(ids):,} tokens, longer than the context used for "
                f"training ({max_length:,} tokens; raise --max-length up to the model's "
                "context window, or shorten the example)",
            )
        if not any(label != IGNORE_INDEX for label in labels):
            raise TrainingDataError(example.path, example.line, "the reply has no tokens")
        out.append(TokenizedExample(tuple(ids), tuple(labels), example.line))
    return out
