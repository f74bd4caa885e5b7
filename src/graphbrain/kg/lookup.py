"""Concept look-up helpers shared by every backend: text normalisation and fuzzy matching.

Fuzzy matching ranks labels by :class:`difflib.SequenceMatcher` ratio on normalised text,
after a character-trigram pre-filter so that a query touches only labels sharing at least
one trigram with it. All backends build the same :class:`FuzzyIndex` from their labels,
so fuzzy answers agree between backends.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from dataclasses import dataclass


def normalise_text(text: str) -> str:
    """Case-folded text with runs of white space collapsed."""
    return " ".join(text.casefold().split())


@dataclass(frozen=True, slots=True)
class Match:
    """One look-up answer: which concept, through which label, how, and how well (0..1)."""

    concept_id: str
    label: str
    kind: str  # "id" | "code" | "name" | "synonym"
    score: float

    def to_dict(self) -> dict:
        return {"id": self.concept_id, "label": self.label, "kind": self.kind, "score": self.score}


def _trigrams(s: str) -> set[str]:
    p = f"  {s} "
    return {p[i : i + 3] for i in range(len(p) - 2)}


class FuzzyIndex:
    """Trigram-prefiltered fuzzy matcher over ``(label, concept_id, kind)`` triples."""

    def __init__(self, labels: list[tuple[str, str, str]]) -> None:
        self._labels = sorted(set(labels))
        self._norm = [normalise_text(lab) for lab, _, _ in self._labels]
        self._grams: dict[str, list[int]] = defaultdict(list)
        for i, n in enumerate(self._norm):
            for g in _trigrams(n):
                self._grams[g].append(i)

    def search(self, query: str, *, limit: int = 10, cutoff: float = 0.6) -> list[Match]:
        q = normalise_text(query)
        if not q:
            return []
        qg = _trigrams(q)
        counts: dict[int, int] = defaultdict(int)
        for g in qg:
            for i in self._grams.get(g, ()):
                counts[i] += 1
        # keep the labels sharing the most trigrams, then score them exactly
        need = max(1, len(qg) // 3)
        cand = [i for i, c in counts.items() if c >= need]
        best: dict[str, Match] = {}
        sm = difflib.SequenceMatcher(autojunk=False)
        sm.set_seq2(q)
        for i in cand:
            sm.set_seq1(self._norm[i])
            if sm.real_quick_ratio() < cutoff or sm.quick_ratio() < cutoff:
                continue
            r = sm.ratio()
            if r < cutoff:
                continue
            lab, cid, kind = self._labels[i]
            m = Match(cid, lab, kind, round(r, 6))
            old = best.get(cid)
            if old is None or (m.score, m.kind == "name") > (old.score, old.kind == "name"):
                best[cid] = m
        out = sorted(best.values(), key=lambda m: (-m.score, m.kind != "name", m.concept_id))
        return out[:limit]
