"""Batched filtered link-prediction evaluation against a naive reference (exact ranks)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
kge = pytest.importorskip("torch_geometric.nn.kge")

from graphbrain.kg.embeddings import (  # noqa: E402
    KnownTriples,
    _make_model,
    filtered_ranks,
    score_all,
)

N_ENT, N_REL, DIM = 37, 3, 6


def _triples(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.stack([rng.integers(N_ENT, size=400), rng.integers(N_REL, size=400), rng.integers(N_ENT, size=400)], 1)
    return np.unique(t, axis=0)


def _integer_model(name: str, seed: int = 0):
    """Small-integer embeddings: DistMult / ComplEx scores are then exact in float32, so ranks
    (ties included, and there are many) must agree exactly with any correct implementation."""
    torch.manual_seed(seed)
    m = _make_model(name, N_ENT, N_REL, DIM)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randint(-2, 3, p.shape, generator=g).float())
    return m


def naive_ranks(model, test, all_triples, side):
    """Reference: score every candidate triple one by one with ``model.forward``; skip the
    other known true triples; realistic rank = 1 + #better + #tied / 2."""
    known = {tuple(x) for x in all_triples.tolist()}
    out = []
    with torch.no_grad():
        for h, r, t in test.tolist():
            def s(a, b, c):
                return float(model(torch.tensor([a]), torch.tensor([b]), torch.tensor([c]))[0])

            true = s(h, r, t)
            better = tied = 0
            for e in range(N_ENT):
                cand = (h, r, e) if side == "tail" else (e, r, t)
                if cand == (h, r, t) or cand in known:
                    continue
                v = s(*cand)
                better += v > true
                tied += v == true
            out.append(1 + better + tied / 2)
    return np.array(out)


@pytest.mark.parametrize("name", ["distmult", "complex"])
@pytest.mark.parametrize("memory_mb", [1e-4, 256.0])  # one query per batch + tiny chunks / one batch
def test_batched_filtered_ranks_equal_naive_reference(name, memory_mb):
    allt = _triples()
    test = allt[::12]
    model = _integer_model(name)
    known = KnownTriples(allt, N_ENT, N_REL)
    for side in ("tail", "head"):
        got = filtered_ranks(model, test, known, side, memory_mb=memory_mb)
        ref = naive_ranks(model, test, allt, side)
        np.testing.assert_array_equal(got["realistic"], ref)
        assert (got["optimistic"] <= got["realistic"]).all() and (got["realistic"] <= got["pessimistic"]).all()
        assert (got["pessimistic"] > got["optimistic"]).any()  # the integer model has ties


@pytest.mark.parametrize("name", ["transe", "rotate", "complex", "distmult"])
def test_score_all_equals_forward(name):
    torch.manual_seed(1)
    model = _make_model(name, N_ENT, N_REL, DIM)
    h, r, t = torch.tensor([0, 5, 9]), torch.tensor([0, 2, 1]), torch.tensor([3, 3, 30])
    ents = torch.arange(N_ENT)
    with torch.no_grad():
        for side in ("tail", "head"):
            got = score_all(model, h, r, t, side, chunk=5)
            for i in range(3):
                hh = h[i].repeat(N_ENT) if side == "tail" else ents
                tt = ents if side == "tail" else t[i].repeat(N_ENT)
                ref = model(hh, r[i].repeat(N_ENT), tt)
                torch.testing.assert_close(got[i], ref, rtol=1e-5, atol=1e-5)


def test_filtering_uses_every_known_triple():
    """A query whose every other candidate is a known true triple ranks first, even when the
    model scores the target lowest."""
    allt = np.array([[0, 0, e] for e in range(N_ENT)])
    model = _integer_model("distmult")
    known = KnownTriples(allt, N_ENT, N_REL)
    got = filtered_ranks(model, allt[:5], known, "tail")
    np.testing.assert_array_equal(got["realistic"], np.ones(5))
    # with only the test triples known, the ranks are the unfiltered ones
    got2 = filtered_ranks(model, allt[:5], KnownTriples(allt[:5], N_ENT, N_REL), "tail")
    assert (got2["realistic"] > 1).any()
