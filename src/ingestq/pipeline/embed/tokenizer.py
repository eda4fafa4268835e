"""Token counting with the embedder's own tokenizer.

The chunker must never hand the model more tokens than its window, so it counts with exactly the
tokenizer the model uses. For Hugging Face models that is the model folder's `tokenizer.json`, read
with the `tokenizers` package: it loads in milliseconds and never imports torch. Counts include the
special tokens the model adds (`[CLS]`/`[SEP]` for BERT), because they occupy the window too.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from ingestq.pipeline.embed.errors import EmbedderConfigError


class Tokenizer(Protocol):
    @property
    def special_tokens(self) -> int:
        """Tokens the model adds around every input (counted once per text)."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for `text`, special tokens included."""
        ...

    def count_tokens_batch(self, texts: Sequence[str]) -> list[int]:
        """`count_tokens` for many texts (one call, parallel where the library allows)."""
        ...

    def token_ends(self, text: str) -> list[int]:
        """Character offsets where each non-special token of `text` ends (a last-resort cut point)."""
        ...


class HuggingFaceTokenizer:
    """Exact counts from a `tokenizer.json` (the fast tokenizer sentence-transformers itself runs)."""

    def __init__(self, path: str | Path) -> None:
        from tokenizers import Tokenizer as _Tokenizer

        file = Path(path)
        if file.is_dir():
            file = file / "tokenizer.json"
        if not file.is_file():
            raise EmbedderConfigError(f"tokenizer file not found: {file}")
        self._tok = _Tokenizer.from_file(str(file))
        # tokenizer.json files often ship with truncation/padding switched on (all-MiniLM-L6-v2's says
        # 128): counting must see the whole text and nothing else.
        self._tok.no_truncation()
        self._tok.no_padding()
        self._special = len(self._tok.encode("").ids)

    @property
    def special_tokens(self) -> int:
        return self._special

    def count_tokens(self, text: str) -> int:
        return len(self._tok.encode(text).ids)

    def count_tokens_batch(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        # encode_batch_fast skips the character offsets counting does not need (tokenizers >= 0.21)
        encode = getattr(self._tok, "encode_batch_fast", self._tok.encode_batch)
        return [len(e.ids) for e in encode(list(texts))]

    def token_ends(self, text: str) -> list[int]:
        encoding = self._tok.encode(text, add_special_tokens=False)
        return [end for _, end in encoding.offsets]


_PIECE = re.compile(r"\w+|[^\w\s]", re.UNICODE)


class EstimatingTokenizer:
    """An upper-bound estimate for remote models whose tokenizer is not available here.

    Every word counts one token per `chars_per_token` UTF-8 bytes (at least one) and every punctuation
    mark one token. BPE tokenizers (OpenAI, most Ollama models) average about four bytes per token on
    English, so the default of three over-counts: chunks come out a little smaller than the window,
    never larger. Give the embedder a `tokenizer.json` for exact counts.
    """

    def __init__(self, chars_per_token: float = 3.0, special_tokens: int = 2) -> None:
        if chars_per_token <= 0:
            raise EmbedderConfigError("chars_per_token must be positive")
        self._cpt = chars_per_token
        self._special = special_tokens

    @property
    def special_tokens(self) -> int:
        return self._special

    def _pieces(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in _PIECE.finditer(text)]

    def _piece_tokens(self, piece: str) -> int:
        return max(1, math.ceil(len(piece.encode("utf-8")) / self._cpt))

    def count_tokens(self, text: str) -> int:
        return self._special + sum(self._piece_tokens(text[a:b]) for a, b in self._pieces(text))

    def count_tokens_batch(self, texts: Sequence[str]) -> list[int]:
        return [self.count_tokens(t) for t in texts]

    def token_ends(self, text: str) -> list[int]:
        ends: list[int] = []
        for a, b in self._pieces(text):
            n = self._piece_tokens(text[a:b])
            # spread a long word's estimated tokens evenly over its characters
            ends.extend(a + math.ceil((b - a) * (i + 1) / n) for i in range(n))
        return ends
