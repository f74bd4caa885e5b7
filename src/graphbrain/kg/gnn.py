"""A TxGNN-style relational GNN predicting disease relations, evaluated zero-shot.

Encoder (R-GCN, Schlichtkrull et al. 2018), two layers over all KG relations and their
inverses, with a learnable input embedding per concept::

    h_i^{(l+1)} = ReLU( W_0 h_i^{(l)} + sum_r sum_{j in N_r(i)} (1 / |N_r(i)|) W_r h_j^{(l)} )
    shapes: x (N, d) -> (N, d); W_r from a basis decomposition (num_bases bases)

Decoder (DistMult): ``score(d, s) = <z_d, w_rel, z_s>`` for the predicted relation
(``has_symptom`` by default).

Zero-shot protocol: a fraction of the diseases that have the predicted relation are held
out — *all* their edges of that relation are removed from the message-passing graph and
from supervision; they keep their other edges (is-a, location, cause ...). After training,
each held-out disease ranks every candidate tail (all concepts that are a tail of the
relation anywhere). Reported: MRR and Hits@10 (filtered: other true tails removed) and
AUROC over held-out (disease, candidate) pairs, next to a popularity baseline (rank tails
by how many training diseases have them).

torch / torch_geometric are imported inside the functions.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from graphbrain.kg.embeddings import auroc

if TYPE_CHECKING:
    from graphbrain.kg.graph import KnowledgeGraph


def _build_model(n_nodes: int, n_rel: int, dim: int, num_bases: int) -> Any:
    import torch
    from torch_geometric.nn import RGCNConv

    class RGCNLinkPredictor(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding(n_nodes, dim)
            self.conv1 = RGCNConv(dim, dim, n_rel, num_bases=min(num_bases, n_rel))
            self.conv2 = RGCNConv(dim, dim, n_rel, num_bases=min(num_bases, n_rel))
            self.rel = torch.nn.Parameter(torch.empty(dim))
            self.reset_parameters()

        def reset_parameters(self) -> None:
            torch.nn.init.xavier_uniform_(self.emb.weight)
            self.conv1.reset_parameters()
            self.conv2.reset_parameters()
            torch.nn.init.ones_(self.rel)

        def encode(self, edge_index: Any, edge_type: Any) -> Any:
            x = self.emb.weight
            x = torch.relu(self.conv1(x, edge_index, edge_type))
            return self.conv2(x, edge_index, edge_type)

        def score(self, z: Any, heads: Any, tails: Any) -> Any:
            return (z[heads] * self.rel * z[tails]).sum(-1)

    return RGCNLinkPredictor()


def zero_shot_disease_relation(
    kg: KnowledgeGraph,
    relation: str = "has_symptom",
    *,
    holdout_frac: float = 0.1,
    dim: int = 64,
    epochs: int = 100,
    lr: float = 0.01,
    num_bases: int = 8,
    negatives: int = 4,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Train the R-GCN on ``kg`` without the held-out diseases' ``relation`` edges and
    evaluate tail ranking for those diseases (see module doc). Returns a metrics dict."""
    import torch
    from tqdm.auto import tqdm

    if not 0.0 < holdout_frac < 1.0:
        raise ValueError(f"holdout_frac must be in (0, 1), got {holdout_frac}")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    mem = kg.memory()
    c = mem.columns
    code = mem.relation_code(relation)
    if code < 0:
        raise ValueError(f"the graph has no {relation!r} relations")
    target = c.relation == code
    heads_all = np.unique(c.head[target])
    n_hold = max(1, int(round(holdout_frac * len(heads_all))))
    held = np.sort(rng.choice(heads_all, n_hold, replace=False))
    held_mask = np.zeros(len(mem.ids), dtype=bool)
    held_mask[held] = True
    test_e = target & held_mask[c.head]
    train_e = target & ~held_mask[c.head]
    keep = ~test_e
    n_rel = len(c.relation_types)
    src = np.concatenate([c.head[keep], c.tail[keep]])
    dst = np.concatenate([c.tail[keep], c.head[keep]])
    et = np.concatenate([c.relation[keep], c.relation[keep] + n_rel])
    edge_index = torch.as_tensor(np.stack([src, dst]), dtype=torch.long)
    edge_type = torch.as_tensor(et, dtype=torch.long)
    cand = np.unique(c.tail[target])
    tr_h = torch.as_tensor(c.head[train_e], dtype=torch.long)
    tr_t = torch.as_tensor(c.tail[train_e], dtype=torch.long)
    cand_t = torch.as_tensor(cand, dtype=torch.long)
    model = _build_model(len(mem.ids), 2 * n_rel, dim, num_bases)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    bce = torch.nn.BCEWithLogitsLoss()
    t0 = time.perf_counter()
    for _ in tqdm(range(epochs), desc="R-GCN", disable=not progress):
        model.train()
        opt.zero_grad()
        z = model.encode(edge_index, edge_type)
        pos = model.score(z, tr_h, tr_t)
        nh = tr_h.repeat(negatives)
        nt = cand_t[torch.randint(len(cand_t), (nh.numel(),))]
        neg = model.score(z, nh, nt)
        loss = bce(torch.cat([pos, neg]), torch.cat([torch.ones_like(pos), torch.zeros_like(neg)]))
        loss.backward()
        opt.step()
    train_s = time.perf_counter() - t0
    model.eval()
    with torch.no_grad():
        z = model.encode(edge_index, edge_type)
        hh = torch.as_tensor(held, dtype=torch.long)
        scores = (z[hh] * model.rel) @ z[cand_t].T  # (held, cand)
    scores_np = scores.numpy()
    pop = np.zeros(len(mem.ids))
    np.add.at(pop, c.tail[train_e], 1.0)
    pop_c = pop[cand]
    cand_pos = {int(x): i for i, x in enumerate(cand)}
    truth: dict[int, set[int]] = {}
    for h, t in zip(c.head[test_e], c.tail[test_e]):
        truth.setdefault(int(h), set()).add(cand_pos[int(t)])
    res: dict[str, Any] = {}
    for name, mat in (("rgcn", scores_np), ("popularity", np.tile(pop_c, (len(held), 1)))):
        ranks, pos_s, neg_s = [], [], []
        for i, h in enumerate(held.tolist()):
            row = mat[i]
            true = sorted(truth[h])
            mask = np.zeros(len(cand), dtype=bool)
            mask[true] = True
            for j in true:
                others = row[~mask]
                ranks.append(1 + (others > row[j]).sum() + 0.5 * (others == row[j]).sum())
            pos_s.extend(row[mask].tolist())
            neg_s.extend(row[~mask].tolist())
        rk = np.asarray(ranks, dtype=np.float64)
        res[name] = {
            "mrr": round(float((1.0 / rk).mean()), 4),
            "hits@10": round(float((rk <= 10).mean()), 4),
            "auroc": round(auroc(np.asarray(pos_s), np.asarray(neg_s)), 4),
        }
    res.update(
        {
            "relation": relation,
            "held_out_diseases": int(len(held)),
            "test_edges": int(test_e.sum()),
            "train_edges": int(train_e.sum()),
            "candidates": int(len(cand)),
            "epochs": epochs,
            "dim": dim,
            "train_seconds": round(train_s, 2),
            "seed": seed,
        }
    )
    return res
