"""Knowledge-graph embeddings: TransE, RotatE, ComplEx, DistMult (``torch_geometric.nn.kge``).

Scores, for head ``h``, relation ``r``, tail ``t`` with embeddings ``e``:

* TransE   ``-||e_h + w_r - e_t||_1``
* RotatE   ``-||e_h ∘ exp(i θ_r) - e_t||`` (complex rotation)
* ComplEx  ``Re(<e_h, w_r, conj(e_t)>)``
* DistMult ``<e_h, w_r, e_t>``

:func:`train_kge` splits the triples (held-out test triples whose entities all occur in
training), trains with PyG's negative-sampling losses, and reports on the test triples:
*filtered* MRR and Hits@k following PyKEEN's rank-based protocol (every other true triple of
train + test removed from the candidate list, head and tail prediction pooled, *realistic*
rank = mean of the optimistic and pessimistic ranks under ties) and link-prediction AUROC
(true test triples against the same number of corrupted triples that are not in the graph).
Evaluation scores a batch of queries against all entities at once (matrix products or
``torch.cdist``, entity chunks) and filters with a sorted known-triple index, so memory
stays bounded (``memory_mb``) and the default graph evaluates in seconds. The :class:`EmbeddingResult` saves
to ``.npz`` + ``.json`` and exports per-concept feature tables.

torch is imported inside the functions: ``import graphbrain.kg`` stays torch-free.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from graphbrain.errors import DataError

if TYPE_CHECKING:
    from graphbrain.kg.graph import KnowledgeGraph

MODELS = ("transe", "rotate", "complex", "distmult")


@dataclass
class TripleSplit:
    entity_ids: list[str]
    relation_types: list[str]
    train: np.ndarray  # (n, 3) int64: head, relation, tail
    test: np.ndarray

    @property
    def all(self) -> np.ndarray:
        return np.concatenate([self.train, self.test])


def triples_from_kg(kg: KnowledgeGraph) -> tuple[list[str], list[str], np.ndarray]:
    """Integer triples ``(head, relation, tail)`` (unique) with entity and relation vocabularies."""
    mem = kg.memory()
    c = mem.columns
    t = np.stack([c.head, c.relation, c.tail], axis=1).astype(np.int64)
    t = np.unique(t, axis=0)
    return list(mem.ids), list(c.relation_types), t


def split_triples(kg: KnowledgeGraph, test_frac: float = 0.1, seed: int = 0) -> TripleSplit:
    """Random held-out test triples; a test triple is kept only if its head and tail (and
    relation) also appear in the training triples (otherwise it moves back to training)."""
    if not 0.0 < test_frac < 1.0:
        raise ValueError(f"test_frac must be in (0, 1), got {test_frac}")
    ents, rels, t = triples_from_kg(kg)
    if len(t) < 10:
        raise DataError(f"need at least 10 triples to split, the graph has {len(t)}", reason="too_small")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(t))
    n_test = int(round(test_frac * len(t)))
    test_idx, train_idx = perm[:n_test], perm[n_test:]
    train, test = t[train_idx], t[test_idx]
    ent_seen = np.zeros(len(ents), dtype=bool)
    ent_seen[train[:, 0]] = True
    ent_seen[train[:, 2]] = True
    rel_seen = np.zeros(len(rels), dtype=bool)
    rel_seen[train[:, 1]] = True
    ok = ent_seen[test[:, 0]] & ent_seen[test[:, 2]] & rel_seen[test[:, 1]]
    train = np.concatenate([train, test[~ok]])
    return TripleSplit(ents, rels, train, test[ok])


@dataclass
class EmbeddingResult:
    model: str
    entity_ids: list[str]
    relation_types: list[str]
    entity_embeddings: np.ndarray
    relation_embeddings: np.ndarray
    metrics: dict[str, float] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    def features(self, concept_ids: list[str]) -> np.ndarray:
        """Embedding rows for ``concept_ids`` (KeyError naming the first unknown id)."""
        index = {c: i for i, c in enumerate(self.entity_ids)}
        missing = [c for c in concept_ids if c not in index]
        if missing:
            raise KeyError(f"no embedding for concept {missing[0]!r} ({len(missing)} missing)")
        return self.entity_embeddings[[index[c] for c in concept_ids]]

    def save(self, path: str | Path) -> Path:
        """Write ``<path>.npz`` (arrays) and ``<path>.json`` (ids, metrics, config)."""
        path = Path(path)
        base = path.with_suffix("") if path.suffix in (".npz", ".json") else path
        base.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            base.with_suffix(".npz"), entity=self.entity_embeddings, relation=self.relation_embeddings
        )
        meta = {
            "model": self.model,
            "entity_ids": self.entity_ids,
            "relation_types": self.relation_types,
            "metrics": self.metrics,
            "config": self.config,
        }
        base.with_suffix(".json").write_text(json.dumps(meta), encoding="utf-8")
        return base.with_suffix(".npz")

    @classmethod
    def load(cls, path: str | Path) -> EmbeddingResult:
        path = Path(path)
        base = path.with_suffix("") if path.suffix in (".npz", ".json") else path
        try:
            meta = json.loads(base.with_suffix(".json").read_text(encoding="utf-8"))
            with np.load(base.with_suffix(".npz"), allow_pickle=False) as z:
                ent, rel = z["entity"], z["relation"]
        except (OSError, KeyError, json.JSONDecodeError) as exc:
            raise DataError(f"cannot read saved embeddings ({exc})", source=str(base)) from exc
        return cls(meta["model"], meta["entity_ids"], meta["relation_types"], ent, rel, meta["metrics"], meta["config"])

    def export_features(self, path: str | Path) -> Path:
        """One row per concept (``id`` + ``f0..fD``) as ``.parquet``, ``.csv`` or ``.tsv``."""
        import pandas as pd

        path = Path(path)
        emb = self.entity_embeddings
        df = pd.DataFrame(emb, columns=[f"f{i}" for i in range(emb.shape[1])])
        df.insert(0, "id", self.entity_ids)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".parquet":
            df.to_parquet(path, index=False)
        elif path.suffix in (".csv", ".tsv"):
            df.to_csv(path, index=False, sep="," if path.suffix == ".csv" else "\t")
        else:
            raise ValueError(f"export to .parquet, .csv or .tsv, got {path.suffix!r}")
        return path


def _make_model(name: str, n_ent: int, n_rel: int, dim: int) -> Any:
    from torch_geometric.nn.kge import ComplEx, DistMult, RotatE, TransE

    name = name.lower()
    if name == "transe":
        return TransE(n_ent, n_rel, dim, margin=1.0, p_norm=1.0)
    if name == "rotate":
        return RotatE(n_ent, n_rel, dim, margin=3.0)
    if name == "complex":
        return ComplEx(n_ent, n_rel, dim)
    if name == "distmult":
        return DistMult(n_ent, n_rel, dim)
    raise ValueError(f"unknown KGE model {name!r}; choose one of {MODELS}")


def _entity_table(model: Any) -> Any:
    """Entity embeddings as the scoring functions use them (TransE: normalised)."""
    import torch.nn.functional as F
    from torch_geometric.nn.kge import TransE

    e = model.node_emb.weight
    if isinstance(model, TransE):
        return F.normalize(e, p=model.p_norm, dim=-1)
    return e


def score_all(model: Any, h: Any, r: Any, t: Any, side: str, *, chunk: int = 4096) -> Any:
    """Scores of every entity as the tail (``side='tail'``: ``(h, r, ?)``) or head
    (``(?, r, t)``) of a batch of queries, shape ``(B, n_entities)``, without building the
    ``B * n_entities`` triples: matrix products (DistMult, ComplEx) and ``torch.cdist``
    (TransE, RotatE) over entity chunks of ``chunk`` rows. Equal to ``model(h, r, t)`` for
    each candidate up to float rounding (tests check it); other models fall back to
    ``model.forward`` on chunks.
    """
    import torch
    from torch_geometric.nn.kge import ComplEx, DistMult, RotatE, TransE

    if side not in ("head", "tail"):
        raise ValueError(f"side must be 'head' or 'tail', got {side!r}")
    n_ent = model.node_emb.num_embeddings
    out = []
    if isinstance(model, (TransE, RotatE, ComplEx, DistMult)):
        rel = model.rel_emb(r)
        if isinstance(model, TransE):
            ents = _entity_table(model)
            anchor = ents[h] + rel if side == "tail" else ents[t] - rel
            for i in range(0, n_ent, chunk):
                out.append(-torch.cdist(anchor, ents[i : i + chunk], p=model.p_norm))
        elif isinstance(model, DistMult):
            q = model.node_emb(h if side == "tail" else t) * rel
            out.append(q @ model.node_emb.weight.T)
        elif isinstance(model, ComplEx):
            r_re, r_im = rel, model.rel_emb_im(r)
            if side == "tail":
                a_re, a_im = model.node_emb(h), model.node_emb_im(h)
                q_re, q_im = a_re * r_re - a_im * r_im, a_im * r_re + a_re * r_im
            else:
                a_re, a_im = model.node_emb(t), model.node_emb_im(t)
                q_re, q_im = r_re * a_re + r_im * a_im, r_re * a_im - r_im * a_re
            out.append(q_re @ model.node_emb.weight.T + q_im @ model.node_emb_im.weight.T)
        else:  # RotatE: |h o r - t| = |h - t o conj(r)| since |r_k| = 1
            c, sn = torch.cos(rel), torch.sin(rel)
            if side == "tail":
                a_re, a_im = model.node_emb(h), model.node_emb_im(h)
                q = torch.cat([c * a_re - sn * a_im, c * a_im + sn * a_re], dim=1)
            else:
                a_re, a_im = model.node_emb(t), model.node_emb_im(t)
                q = torch.cat([c * a_re + sn * a_im, c * a_im - sn * a_re], dim=1)
            ents = torch.cat([model.node_emb.weight, model.node_emb_im.weight], dim=1)
            for i in range(0, n_ent, chunk):
                d = torch.cdist(q, ents[i : i + chunk], p=2.0, compute_mode="donot_use_mm_for_euclid_dist")
                out.append(model.margin - d)
        return torch.cat(out, dim=1) if len(out) > 1 else out[0]
    b = h.numel()
    for i in range(0, n_ent, chunk):
        cand = torch.arange(i, min(i + chunk, n_ent))
        c = cand.numel()
        hh = cand.repeat(b) if side == "head" else h.repeat_interleave(c)
        tt = cand.repeat(b) if side == "tail" else t.repeat_interleave(c)
        out.append(model(hh, r.repeat_interleave(c), tt).view(b, c))
    return torch.cat(out, dim=1)


class KnownTriples:
    """Every true triple, indexed for filtering: the true tails of ``(h, r)`` and the true
    heads of ``(r, t)`` as sorted integer arrays (no Python sets; memory ~ 40 bytes/triple)."""

    def __init__(self, triples: np.ndarray, n_ent: int, n_rel: int) -> None:
        t = np.unique(np.asarray(triples, dtype=np.int64), axis=0)
        self.n_ent, self.n_rel = n_ent, n_rel
        kt = t[:, 0] * n_rel + t[:, 1]
        o = np.lexsort((t[:, 2], kt))
        self.tail_keys, self.tails = kt[o], t[o, 2]
        kh = t[:, 2] * n_rel + t[:, 1]
        o = np.lexsort((t[:, 0], kh))
        self.head_keys, self.heads = kh[o], t[o, 0]
        self.keys = np.sort((t[:, 0] * n_rel + t[:, 1]) * n_ent + t[:, 2])

    def true_entities(self, anchor: np.ndarray, rel: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray]:
        """``(row, entity)`` pairs: for query ``i`` (anchor = head for tail prediction, tail
        for head prediction) every entity that completes a known triple."""
        keys, vals = (self.tail_keys, self.tails) if side == "tail" else (self.head_keys, self.heads)
        q = anchor * self.n_rel + rel
        lo, hi = np.searchsorted(keys, q, "left"), np.searchsorted(keys, q, "right")
        counts = hi - lo
        rows = np.repeat(np.arange(len(q)), counts)
        starts = np.repeat(lo - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
        cols = vals[np.arange(int(counts.sum())) + starts]
        return rows, cols

    def contains(self, triples: np.ndarray) -> np.ndarray:
        t = np.asarray(triples, dtype=np.int64)
        k = (t[:, 0] * self.n_rel + t[:, 1]) * self.n_ent + t[:, 2]
        j = np.searchsorted(self.keys, k)
        j = np.minimum(j, len(self.keys) - 1)
        return self.keys[j] == k


def filtered_ranks(
    model: Any,
    test: np.ndarray,
    known: KnownTriples,
    side: str,
    *,
    memory_mb: float = 256.0,
) -> dict[str, np.ndarray]:
    """Filtered rank of each test triple's true ``side`` entity among all entities (PyKEEN's
    rank-based protocol): the other entities forming known true triples are removed, then
    ``optimistic = 1 + #better``, ``pessimistic = 1 + #better + #tied`` and ``realistic`` =
    their mean. Queries are scored in batches so that the score matrix and its temporaries
    stay within about ``memory_mb``."""
    import torch

    n_ent = known.n_ent
    test = np.asarray(test, dtype=np.int64)
    dim = int(model.node_emb.embedding_dim) * (2 if hasattr(model, "node_emb_im") else 1)
    budget = max(memory_mb, 1.0) * 2**20
    batch = int(max(1, min(len(test), budget // (4 * n_ent * 3))))
    chunk = int(max(1, min(n_ent, budget // (4 * batch * max(dim, 1) * 2))))
    opt = np.empty(len(test), dtype=np.float64)
    pes = np.empty(len(test), dtype=np.float64)
    model.eval()
    with torch.no_grad():
        for i in range(0, len(test), batch):
            tb = test[i : i + batch]
            h, r, t = (torch.as_tensor(tb[:, j]) for j in range(3))
            s = score_all(model, h, r, t, side, chunk=chunk)
            target = tb[:, 2] if side == "tail" else tb[:, 0]
            rows_b = torch.arange(len(tb))
            true = s[rows_b, torch.as_tensor(target)].clone()
            rows, cols = known.true_entities(tb[:, 0] if side == "tail" else tb[:, 2], tb[:, 1], side)
            s[torch.as_tensor(rows), torch.as_tensor(cols)] = -float("inf")  # the target too
            better = (s > true[:, None]).sum(1).numpy()
            tied = (s == true[:, None]).sum(1).numpy()
            opt[i : i + len(tb)] = 1 + better
            pes[i : i + len(tb)] = 1 + better + tied
    return {"optimistic": opt, "pessimistic": pes, "realistic": (opt + pes) / 2.0}


def rank_metrics(ranks: np.ndarray, ks: tuple[int, ...] = (1, 3, 10)) -> dict[str, float]:
    """MRR, mean rank and Hits@k of (realistic) ranks."""
    rk = np.asarray(ranks, dtype=np.float64)
    out = {"mrr": float((1.0 / rk).mean()), "mean_rank": float(rk.mean())}
    out.update({f"hits@{k}": float((rk <= k).mean()) for k in ks})
    return out


def evaluate_link_prediction(
    model: Any, split: TripleSplit, *, k: int = 10, seed: int = 0, memory_mb: float = 256.0
) -> dict[str, float]:
    """Filtered MRR / Hits@k (head and tail prediction pooled, realistic ranks as in PyKEEN;
    both sides filtered against train + test) and AUROC on ``split.test``, batched so that
    memory stays near ``memory_mb`` whatever the graph size."""
    import torch

    n_ent, n_rel = len(split.entity_ids), len(split.relation_types)
    known = KnownTriples(split.all, n_ent, n_rel)
    test = np.asarray(split.test, dtype=np.int64)
    tail = filtered_ranks(model, test, known, "tail", memory_mb=memory_mb)
    head = filtered_ranks(model, test, known, "head", memory_mb=memory_mb)
    rk = np.concatenate([tail["realistic"], head["realistic"]])
    # AUROC: test triples vs one corrupted triple each (head or tail replaced) not in the graph
    rng = np.random.default_rng(seed)
    neg = test.copy()
    todo = np.arange(len(neg))
    for _ in range(100):
        if not todo.size:
            break
        cand = test[todo].copy()
        side = rng.random(len(todo)) < 0.5
        repl = rng.integers(n_ent, size=len(todo))
        cand[side, 0] = repl[side]
        cand[~side, 2] = repl[~side]
        ok = ~known.contains(cand)
        neg[todo[ok]] = cand[ok]
        todo = todo[~ok]
    model.eval()
    with torch.no_grad():
        tt, nt = torch.as_tensor(test), torch.as_tensor(neg)
        pos_s = model(tt[:, 0], tt[:, 1], tt[:, 2]).numpy()
        neg_s = model(nt[:, 0], nt[:, 1], nt[:, 2]).numpy()
    m = rank_metrics(rk, (1, 3, k))
    return {
        "filtered_mrr": m["mrr"],
        f"filtered_hits@{k}": m[f"hits@{k}"],
        "filtered_hits@1": m["hits@1"],
        "filtered_mean_rank": m["mean_rank"],
        "tail_mrr": rank_metrics(tail["realistic"])["mrr"],
        "head_mrr": rank_metrics(head["realistic"])["mrr"],
        "auroc": auroc(pos_s, neg_s),
        "n_test": int(len(test)),
    }


def auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U; ties count half)."""
    s = np.concatenate([pos, neg])
    from scipy.stats import rankdata

    ranks = rankdata(s)
    n_pos, n_neg = len(pos), len(neg)
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUROC needs positive and negative scores")
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def train_kge(
    kg: KnowledgeGraph,
    model: str = "transe",
    *,
    dim: int = 64,
    epochs: int = 100,
    batch_size: int = 1024,
    lr: float = 0.01,
    test_frac: float = 0.1,
    seed: int = 0,
    split: TripleSplit | None = None,
    progress: bool = True,
) -> EmbeddingResult:
    """Train one KGE model on ``kg`` and evaluate it on held-out triples."""
    import torch
    from tqdm.auto import tqdm

    if model.lower() not in MODELS:
        raise ValueError(f"unknown KGE model {model!r}; choose one of {MODELS}")
    if epochs < 1 or dim < 1:
        raise ValueError("epochs and dim must be positive")
    torch.manual_seed(seed)
    split = split or split_triples(kg, test_frac, seed)
    n_ent, n_rel = len(split.entity_ids), len(split.relation_types)
    net = _make_model(model, n_ent, n_rel, dim)
    tr = torch.as_tensor(split.train, dtype=torch.long)
    loader = net.loader(tr[:, 0], tr[:, 1], tr[:, 2], batch_size=batch_size, shuffle=True)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    t0 = time.perf_counter()
    losses = []
    for _ in tqdm(range(epochs), desc=f"KGE {model}", disable=not progress):
        net.train()
        total, n = 0.0, 0
        for h, r, t in loader:
            opt.zero_grad()
            loss = net.loss(h, r, t)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * h.numel()
            n += h.numel()
        losses.append(total / max(n, 1))
    train_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    metrics = evaluate_link_prediction(net, split, seed=seed)
    metrics["train_seconds"] = round(train_s, 2)
    metrics["eval_seconds"] = round(time.perf_counter() - t1, 2)
    metrics["final_loss"] = round(losses[-1], 5)
    ent = net.node_emb.weight.detach().numpy().copy()
    rel = net.rel_emb.weight.detach().numpy().copy()
    if hasattr(net, "node_emb_im"):  # ComplEx / RotatE: concatenate real and imaginary parts
        ent = np.concatenate([ent, net.node_emb_im.weight.detach().numpy()], axis=1)
    if hasattr(net, "rel_emb_im"):
        rel = np.concatenate([rel, net.rel_emb_im.weight.detach().numpy()], axis=1)
    cfg = {"dim": dim, "epochs": epochs, "batch_size": batch_size, "lr": lr, "test_frac": test_frac, "seed": seed}
    return EmbeddingResult(model.lower(), split.entity_ids, split.relation_types, ent, rel, metrics, cfg)
