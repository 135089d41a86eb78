"""The emulator's tokenizer: a documented regex, not any model's real vocabulary.

A token is either a run of Unicode word characters (`\\w+`: letters, digits, underscore) or a
single character that is neither a word character nor whitespace (punctuation, symbols, emoji).
"Hello, world!" is 4 tokens. Real BPE tokenizers give roughly 1.3x more tokens for English
prose; the counts are meant to be stable and proportional, not billing-exact.
"""

from __future__ import annotations

import re

TOKEN_PATTERN = re.compile(r"\w+|[^\w\s]")


def count_tokens(text: str) -> int:
    return sum(1 for _ in TOKEN_PATTERN.finditer(text))


def truncate_to_tokens(text: str, max_tokens: int) -> tuple[str, bool]:
    """Cut `text` right after its `max_tokens`-th token; returns (text, was_truncated)."""
    if max_tokens <= 0:
        return "", bool(TOKEN_PATTERN.search(text))
    for index, match in enumerate(TOKEN_PATTERN.finditer(text), start=1):
        if index == max_tokens:
            end = match.end()
            return text[:end], bool(TOKEN_PATTERN.search(text, end))
    return text, False
