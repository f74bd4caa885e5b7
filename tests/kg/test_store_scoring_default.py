"""An on-disk store defaults to the legacy diagnosis scoring (the IC tables hold the is-a
closure in memory); in-memory graphs default to IC."""

from __future__ import annotations

from types import SimpleNamespace

from graphbrain.kg import KnowledgeGraph
from graphbrain.kg.diagnose import DEFAULT_SCORING, default_scoring


def test_default_scoring_follows_the_backend():
    assert default_scoring(KnowledgeGraph.default()) == DEFAULT_SCORING == "ic"
    assert default_scoring(SimpleNamespace(backend=SimpleNamespace(name="store"))) == "legacy"
    assert default_scoring(SimpleNamespace(backend=SimpleNamespace(name="oxigraph"))) == "ic"
