"""KG embeddings and the R-GCN recover planted structure on a tiny synthetic KG."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from synthetic import planted_kg

from graphbrain.kg import KnowledgeGraph


@pytest.fixture(scope="module")
def kg():
    return KnowledgeGraph.from_records(*planted_kg())


def test_import_kg_does_not_import_torch():
    code = "import sys, graphbrain.kg; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    "model,epochs,lr,dim,min_mrr",
    [("transe", 50, 0.05, 32, 0.25), ("distmult", 50, 0.05, 32, 0.4), ("complex", 50, 0.05, 32, 0.4), ("rotate", 20, 0.05, 16, 0.2)],
)
def test_kge_recovers_planted_links(kg, model, epochs, lr, dim, min_mrr):
    pytest.importorskip("torch_geometric")
    from graphbrain.kg.embeddings import train_kge

    res = train_kge(kg, model, dim=dim, epochs=epochs, batch_size=256, lr=lr, seed=0, progress=False)
    n_ent = len(res.entity_ids)
    # random ranking of 57 entities gives filtered MRR around 0.08 and AUROC 0.5
    assert res.metrics["filtered_mrr"] > min_mrr > 2 * (np.log(n_ent) / n_ent)
    assert res.metrics["auroc"] > 0.7
    assert res.entity_embeddings.shape[0] == n_ent


def test_embeddings_save_load_and_export(kg, tmp_path):
    pytest.importorskip("torch_geometric")
    import pandas as pd

    from graphbrain.kg.embeddings import EmbeddingResult, train_kge

    res = train_kge(kg, "distmult", dim=8, epochs=2, batch_size=256, progress=False)
    res.save(tmp_path / "emb")
    back = EmbeddingResult.load(tmp_path / "emb.npz")
    assert back.entity_ids == res.entity_ids and back.metrics == res.metrics
    np.testing.assert_array_equal(back.entity_embeddings, res.entity_embeddings)
    feats = back.features(["D:0.1", "S:2.3"])
    assert feats.shape == (2, 8)
    np.testing.assert_array_equal(feats[0], res.entity_embeddings[res.entity_ids.index("D:0.1")])
    with pytest.raises(KeyError, match="nope"):
        back.features(["nope"])
    p = back.export_features(tmp_path / "f.parquet")
    df = pd.read_parquet(p)
    assert list(df.columns[:2]) == ["id", "f0"] and len(df) == len(res.entity_ids)


def test_rgcn_zero_shot_beats_popularity(kg):
    pytest.importorskip("torch_geometric")
    from graphbrain.kg.gnn import zero_shot_disease_relation

    res = zero_shot_disease_relation(kg, holdout_frac=0.2, dim=16, epochs=30, progress=False)
    assert res["held_out_diseases"] == 6 and res["test_edges"] == 30
    # held-out diseases have no symptom edges; only their is-a link tells the group
    assert res["rgcn"]["mrr"] > 0.6 > res["popularity"]["mrr"]
    assert res["rgcn"]["auroc"] > 0.85
