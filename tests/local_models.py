"""Tiny random models of every seed open-model architecture, built offline in seconds.

Each model has 2 layers, hidden size 64 and 4 heads, and shares one byte-level BPE
tokenizer (~512 tokens) trained on ``tests/data/tiny_corpus.txt``. The Llama model's
tokenizer carries a small Jinja chat template; the others have none, so both prompt
paths of the transformers backend are exercised. Weights are seeded, so the models (and
their greedy outputs) are the same on every run. Nothing is downloaded and nothing is
cached outside the session's temporary directory.

Use the session fixture from a test module::

    from .local_models import tiny_models  # noqa: F401
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "ARCHITECTURES",
    "CHAT_TEMPLATE",
    "TinyModels",
    "build_gguf",
    "build_model",
    "build_tokenizer",
    "tiny_models",
]

CORPUS = Path(__file__).parent / "data" / "tiny_corpus.txt"
VOCAB_SIZE = 512
EOS = "<|endoftext|>"
PAD = "<|pad|>"

#: A minimal chat template (Llama only), in the style of Zephyr/Phi.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n"
    "{{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

#: Architecture name -> class name in ``transformers``.
ARCHITECTURES = {
    "llama": "LlamaForCausalLM",
    "bloom": "BloomForCausalLM",
    "gptj": "GPTJForCausalLM",
    "gpt_neox": "GPTNeoXForCausalLM",
    "falcon": "FalconForCausalLM",
}


def build_tokenizer(vocab_size: int = VOCAB_SIZE, *, max_length: int = 512) -> Any:
    """A byte-level BPE ``PreTrainedTokenizerFast`` trained on the shipped corpus."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    raw.train_from_iterator(CORPUS.read_text(encoding="utf-8").splitlines(), trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=raw,
        eos_token=EOS,
        pad_token=PAD,
        model_max_length=max_length,
    )


def _config(
    arch: str, tokenizer: Any, *, context: int, layers: int, hidden: int, heads: int
) -> Any:
    import transformers as tf

    ids = {
        "vocab_size": len(tokenizer),
        "eos_token_id": tokenizer.eos_token_id,
        "bos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        # Wider than the default 0.02 so that greedy choices are clear-cut, not near-ties.
        "initializer_range": 0.2,
    }
    if arch == "llama":
        return tf.LlamaConfig(
            hidden_size=hidden,
            intermediate_size=2 * hidden,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=max(heads // 2, 1),
            max_position_embeddings=context,
            **ids,
        )
    if arch == "bloom":
        return tf.BloomConfig(hidden_size=hidden, n_layer=layers, n_head=heads, **ids)
    if arch == "gptj":
        return tf.GPTJConfig(
            n_embd=hidden,
            n_layer=layers,
            n_head=heads,
            n_positions=context,
            rotary_dim=hidden // heads // 2,
            **ids,
        )
    if arch == "gpt_neox":
        return tf.GPTNeoXConfig(
            hidden_size=hidden,
            intermediate_size=2 * hidden,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            max_position_embeddings=context,
            rotary_pct=0.5,
            **ids,
        )
    if arch == "falcon":
        return tf.FalconConfig(
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            max_position_embeddings=context,
            **ids,
        )
    raise ValueError(f"unknown architecture {arch!r}")


def build_model(
    arch: str,
    folder: Path,
    tokenizer: Any,
    *,
    context: int = 512,
    layers: int = 2,
    hidden: int = 64,
    heads: int = 4,
    seed: int = 0,
    chat_template: str | None = None,
) -> Path:
    """Save a seeded random ``arch`` model plus ``tokenizer`` under ``folder``."""
    import torch
    import transformers as tf

    config = _config(arch, tokenizer, context=context, layers=layers, hidden=hidden, heads=heads)
    torch.manual_seed(seed)
    model = getattr(tf, ARCHITECTURES[arch])(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.chat_template = chat_template
    tokenizer.save_pretrained(folder)
    return folder


_GGUF_NAMES = {
    "model.embed_tokens": "token_embd",
    "model.norm": "output_norm",
    "lm_head": "output",
    "input_layernorm": "attn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "post_attention_layernorm": "ffn_norm",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}


def _permute(weights: Any, heads: int, kv_heads: int) -> Any:
    """llama.cpp's row order for rotary q/k weights (transformers reverses it on load)."""
    rows = weights.shape[0]
    return (
        weights.reshape(kv_heads if heads != kv_heads else heads, 2, -1, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(rows, *weights.shape[1:])
    )


def build_gguf(folder: Path, path: Path) -> Path:
    """Write the Llama model in ``folder`` as an F32 GGUF file, as llama.cpp names it."""
    import gguf
    import numpy as np
    import transformers as tf

    model = tf.AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = tf.AutoTokenizer.from_pretrained(folder)
    c = model.config
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(c.max_position_embeddings)
    writer.add_embedding_length(c.hidden_size)
    writer.add_block_count(c.num_hidden_layers)
    writer.add_feed_forward_length(c.intermediate_size)
    writer.add_rope_dimension_count(c.hidden_size // c.num_attention_heads)
    writer.add_head_count(c.num_attention_heads)
    writer.add_head_count_kv(c.num_key_value_heads)
    writer.add_layer_norm_rms_eps(c.rms_norm_eps)
    writer.add_rope_freq_base(float((c.rope_parameters or {}).get("rope_theta", 10000.0)))
    writer.add_vocab_size(c.vocab_size)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    tokens = [t for t, _ in sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])]
    special = set(tokenizer.all_special_ids)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types(
        [
            gguf.TokenType.CONTROL if i in special else gguf.TokenType.NORMAL
            for i in range(len(tokens))
        ]
    )
    merges = json.loads(tokenizer.backend_tokenizer.to_str())["model"]["merges"]
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in merges])
    writer.add_eos_token_id(tokenizer.eos_token_id)
    writer.add_bos_token_id(tokenizer.eos_token_id)
    writer.add_pad_token_id(tokenizer.pad_token_id)
    writer.add_add_bos_token(False)
    if tokenizer.chat_template:
        writer.add_chat_template(tokenizer.chat_template)
    for name, tensor in model.state_dict().items():
        base = name.rsplit(".", 1)[0]
        if base in _GGUF_NAMES:
            target = _GGUF_NAMES[base]
        else:
            _, _, layer, rest = base.split(".", 3)
            target = f"blk.{layer}.{_GGUF_NAMES[rest]}"
        array = tensor.float().numpy()
        if target.endswith(("attn_q", "attn_k")):
            kv = c.num_attention_heads if target.endswith("attn_q") else c.num_key_value_heads
            array = _permute(array, c.num_attention_heads, kv)
        writer.add_tensor(f"{target}.weight", np.ascontiguousarray(array))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@dataclass(frozen=True)
class TinyModels:
    """Folders of the session's tiny models."""

    root: Path
    folders: dict[str, Path]  # architecture -> folder
    small_context: Path  # Llama with max_position_embeddings = 128
    unknown_arch: Path  # config.json naming an architecture transformers lacks
    gguf: Path  # the Llama model as an F32 .gguf file, alone in its folder

    def __getitem__(self, arch: str) -> Path:
        return self.folders[arch]


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    root = tmp_path_factory.mktemp("tiny-models")
    tokenizer = build_tokenizer()
    folders = {
        arch: build_model(
            arch,
            root / arch,
            tokenizer,
            chat_template=CHAT_TEMPLATE if arch == "llama" else None,
        )
        for arch in ARCHITECTURES
    }
    small = build_model("llama", root / "llama-ctx128", tokenizer, context=128, seed=1)
    unknown = root / "nosuch"
    unknown.mkdir()
    (unknown / "config.json").write_text(
        json.dumps({"architectures": ["NoSuchForCausalLM"], "model_type": "nosuch"}),
        encoding="utf-8",
    )
    tokenizer.chat_template = None
    tokenizer.save_pretrained(unknown)
    gguf = build_gguf(folders["llama"], root / "gguf" / "tiny-llama.f32.gguf")
    return TinyModels(
        root=root, folders=folders, small_context=small, unknown_arch=unknown, gguf=gguf
    )
