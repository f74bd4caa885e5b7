"""Concept look-up helpers shared by every backend: text normalisation and fuzzy matching.

Fuzzy matching prefers whole terms, in three tiers (a higher tier always ranks first):

1. *same words*: the label has exactly the query's words, after folding case, punctuation,
   possessives and a plural ``s`` ("Seizures" -> "seizure"); score 0.95 (1.0 when the
   normalised texts are equal);
2. *whole words*: every query word is a whole word of a longer label ("rigidity" ->
   "muscle rigidity"); score ``0.6 + 0.3 * query words / label words``, so the shortest
   label wins ("muscle rigidity" 0.75 before "progressive muscle rigidity" 0.7);
3. *partial*: character similarity (:class:`difflib.SequenceMatcher` ratio on normalised
   text, after a character-trigram pre-filter) of at least ``cutoff``; score ``0.6 * ratio``.

Every :class:`Match` below :data:`CONFIDENT` (tiers 2 and 3) carries ``low_confidence=True``
so that callers can say "linked 'rigidity' to 'muscle rigidity' (low confidence)" instead of
silently using it. Code-shaped queries (``MSH:D012640``, ``C0036572``) are never fuzzy-matched:
a code either resolves exactly or not at all. All backends build the same
:class:`FuzzyIndex` from their labels, so fuzzy answers agree between backends.
"""

from __future__ import annotations

import difflib
import re
from collections import defaultdict
from dataclasses import dataclass

#: Scores at or above this are confident links; below it a match is flagged low-confidence.
CONFIDENT = 0.9

_CODE_RE = re.compile(r"^(?:[A-Za-z][A-Za-z0-9_.\-]*:\S+|C\d{7})$")
_PUNCT_RE = re.compile(r"[^\w\s]+")


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
    low_confidence: bool = False

    def to_dict(self) -> dict:
        return {
            "id": self.concept_id,
            "label": self.label,
            "kind": self.kind,
            "score": self.score,
            "low_confidence": self.low_confidence,
        }


def looks_like_code(text: str) -> bool:
    """``SAB:CODE`` or a bare UMLS CUI (``C0036572``): such text is never fuzzy-matched."""
    return bool(_CODE_RE.match(text.strip()))


def fold_words(text: str) -> list[str]:
    """Words of ``text`` case-folded, without punctuation, possessive ``'s`` or a plural ``s``."""
    t = text.casefold().replace("'s ", " ").replace("\u2019s ", " ")
    if t.endswith(("'s", "\u2019s")):
        t = t[:-2]
    return [_singular(w) for w in _PUNCT_RE.sub(" ", t).split()]


def _singular(w: str) -> str:
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    return w


def _trigrams(s: str) -> set[str]:
    p = f"  {s} "
    return {p[i : i + 3] for i in range(len(p) - 2)}


class FuzzyIndex:
    """Whole-term-first fuzzy matcher over ``(label, concept_id, kind)`` triples (see module doc)."""

    def __init__(self, labels: list[tuple[str, str, str]]) -> None:
        self._labels = sorted(set(labels))
        self._norm = [normalise_text(lab) for lab, _, _ in self._labels]
        self._words = [tuple(fold_words(lab)) for lab, _, _ in self._labels]
        self._grams: dict[str, list[int]] = defaultdict(list)
        self._postings: dict[str, list[int]] = defaultdict(list)
        for i, n in enumerate(self._norm):
            for g in _trigrams(n):
                self._grams[g].append(i)
            for w in set(self._words[i]):
                self._postings[w].append(i)

    def search(self, query: str, *, limit: int = 10, cutoff: float = 0.6) -> list[Match]:
        q = normalise_text(query)
        if not q or looks_like_code(q):
            return []
        scored: dict[int, tuple[int, float]] = {}  # label -> (tier, score)
        qw = fold_words(q)
        qset = set(qw)
        if qset:
            lists = sorted((self._postings.get(w, []) for w in qset), key=len)
            common = set(lists[0]).intersection(*lists[1:]) if lists[0] else set()
            for i in common:
                lset = set(self._words[i])
                if lset == qset:
                    scored[i] = (3, 1.0 if self._norm[i] == q else 0.95)
                else:
                    scored[i] = (2, 0.6 + 0.3 * len(qset) / len(lset))
        qg = _trigrams(q)
        counts: dict[int, int] = defaultdict(int)
        for g in qg:
            for i in self._grams.get(g, ()):
                counts[i] += 1
        # keep the labels sharing the most trigrams, then score them exactly
        need = max(1, len(qg) // 3)
        sm = difflib.SequenceMatcher(autojunk=False)
        sm.set_seq2(q)
        for i, c in counts.items():
            if c < need or i in scored:
                continue
            sm.set_seq1(self._norm[i])
            if sm.real_quick_ratio() < cutoff or sm.quick_ratio() < cutoff:
                continue
            r = sm.ratio()
            if r >= cutoff:
                scored[i] = (1, 0.6 * r)
        best: dict[str, tuple[tuple, Match]] = {}
        for i, (tier, score) in scored.items():
            lab, cid, kind = self._labels[i]
            # ties within a tier: the label closest in characters ("muscle rigidity" before
            # "abdominal rigidity" for "rigidity"), then names before synonyms
            sm.set_seq1(self._norm[i])
            key = (tier, round(score, 6), round(sm.ratio(), 6), kind == "name")
            old = best.get(cid)
            if old is None or key > old[0]:
                best[cid] = (key, Match(cid, lab, kind, round(score, 6), score < CONFIDENT))
        out = sorted(best.values(), key=lambda km: (*(-k for k in km[0][:3]), not km[0][3], km[1].concept_id))
        return [m for _, m in out[:limit]]
