"""Knowledge-graph embeddings: TransE, RotatE, ComplEx, DistMult (``torch_geometric.nn.kge``).

Scores, for head ``h``, relation ``r``, tail ``t`` with embeddings ``e``:

* TransE   ``-||e_h + w_r - e_t||_1``
* RotatE   ``-||e_h ∘ exp(i θ_r) - e_t||`` (complex rotation)
* ComplEx  ``Re(<e_h, w_r, conj(e_t)>)``
* DistMult ``<e_h, w_r, e_t>``

:func:`train_kge` splits the triples (held-out test triples whose entities all occur in
training), trains with PyG's negative-sampling losses, and reports on the test triples:
*filtered* MRR and Hits@10 (other true triples removed from the candidate list, head and
tail prediction averaged) and link-prediction AUROC (true test triples against the same
number of corrupted triples that are not in the graph). The :class:`EmbeddingResult` saves
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


def _all_scores(model: Any, h: Any, r: Any, t: Any, side: str, n_ent: int, chunk: int = 64) -> Any:
    """Scores of replacing the tail (``side='tail'``) or head by every entity, (B, n_ent)."""
    import torch

    rows = []
    ents = torch.arange(n_ent)
    for i in range(0, h.numel(), chunk):
        hb, rb, tb = h[i : i + chunk], r[i : i + chunk], t[i : i + chunk]
        b = hb.numel()
        rr = rb.repeat_interleave(n_ent)
        cand = ents.repeat(b)
        if side == "tail":
            s = model(hb.repeat_interleave(n_ent), rr, cand)
        else:
            s = model(cand, rr, tb.repeat_interleave(n_ent))
        rows.append(s.view(b, n_ent))
    return torch.cat(rows)


def evaluate_link_prediction(
    model: Any, split: TripleSplit, *, k: int = 10, seed: int = 0
) -> dict[str, float]:
    """Filtered MRR / Hits@k (head + tail prediction) and AUROC on ``split.test``."""
    import torch

    n_ent = len(split.entity_ids)
    known = {tuple(x) for x in split.all.tolist()}
    by_hr: dict[tuple[int, int], list[int]] = {}
    by_rt: dict[tuple[int, int], list[int]] = {}
    for h, r, t in known:
        by_hr.setdefault((h, r), []).append(t)
        by_rt.setdefault((r, t), []).append(h)
    test = torch.as_tensor(split.test, dtype=torch.long)
    h, r, t = test[:, 0], test[:, 1], test[:, 2]
    ranks = []
    model.eval()
    with torch.no_grad():
        for side in ("tail", "head"):
            scores = _all_scores(model, h, r, t, side, n_ent)
            for i in range(len(test)):
                hi, ri, ti = int(h[i]), int(r[i]), int(t[i])
                target = ti if side == "tail" else hi
                others = by_hr[(hi, ri)] if side == "tail" else by_rt[(ri, ti)]
                row = scores[i].clone()
                true = row[target].item()
                row[others] = -float("inf")
                ranks.append(1 + int((row > true).sum()) + 0.5 * int((row == true).sum()))
        # AUROC: test triples vs corrupted triples not in the graph
        rng = np.random.default_rng(seed)
        neg = split.test.copy()
        for i in range(len(neg)):
            for _ in range(100):
                cand = neg[i].copy()
                if rng.random() < 0.5:
                    cand[0] = rng.integers(n_ent)
                else:
                    cand[2] = rng.integers(n_ent)
                if tuple(cand.tolist()) not in known:
                    neg[i] = cand
                    break
        nt = torch.as_tensor(neg, dtype=torch.long)
        pos_s = model(h, r, t).numpy()
        neg_s = model(nt[:, 0], nt[:, 1], nt[:, 2]).numpy()
    rk = np.asarray(ranks, dtype=np.float64)
    return {
        "filtered_mrr": float((1.0 / rk).mean()),
        f"filtered_hits@{k}": float((rk <= k).mean()),
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
    metrics = evaluate_link_prediction(net, split, seed=seed)
    metrics["train_seconds"] = round(train_s, 2)
    metrics["final_loss"] = round(losses[-1], 5)
    ent = net.node_emb.weight.detach().numpy().copy()
    rel = net.rel_emb.weight.detach().numpy().copy()
    if hasattr(net, "node_emb_im"):  # ComplEx / RotatE: concatenate real and imaginary parts
        ent = np.concatenate([ent, net.node_emb_im.weight.detach().numpy()], axis=1)
    if hasattr(net, "rel_emb_im"):
        rel = np.concatenate([rel, net.rel_emb_im.weight.detach().numpy()], axis=1)
    cfg = {"dim": dim, "epochs": epochs, "batch_size": batch_size, "lr": lr, "test_frac": test_frac, "seed": seed}
    return EmbeddingResult(model.lower(), split.entity_ids, split.relation_types, ent, rel, metrics, cfg)
