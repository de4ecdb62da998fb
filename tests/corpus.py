"""The shared mail corpus (../shared/corpus), read in place: some sources are GPL/AGPL and never copied here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"

needs_corpus = pytest.mark.skipif(not (CORPUS / "INDEX.tsv").is_file(), reason=f"mail corpus not found at {CORPUS}")


@dataclass(frozen=True)
class CorpusMessage:
    path: str  # relative to the corpus, e.g. "rt/nested-rfc-822.eml"
    size: int
    tags: frozenset[str]

    def read(self) -> bytes:
        return (CORPUS / self.path).read_bytes()


def corpus_messages() -> list[CorpusMessage]:
    """Every message INDEX.tsv lists (the corpus's .eml files; not its licences or expected outputs)."""
    index = CORPUS / "INDEX.tsv"
    if not index.is_file():
        return []
    messages = []
    for line in index.read_text(encoding="utf-8").splitlines()[1:]:
        if not line.strip():
            continue
        path, size, tags = (line.split("\t") + ["", ""])[:3]
        messages.append(CorpusMessage(path=path, size=int(size or 0), tags=frozenset(tags.split())))
    return messages


def corpus_bytes(path: str) -> bytes:
    return (CORPUS / path).read_bytes()


def corpus_files(folder: str, pattern: str) -> list[Path]:
    return sorted((CORPUS / folder).glob(pattern))
