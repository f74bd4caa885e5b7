"""model=fusion / model=population through run_pipeline, train -> predict, and the KG reading."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

import graphbrain
from graphbrain.cli import main as cli
from graphbrain.data import Cohort
from graphbrain.fusion.synthetic import make_multimodal_cohort
from graphbrain.kg import Concept, KnowledgeGraph, Relation, SemanticType
from graphbrain.pipeline import predict, train_model

FAST = {"progress": False, "epochs": 20}


def test_fusion_run_train_predict(tmp_path, capsys):
    cohort, table = make_multimodal_cohort(80, signal="both", seed=4, missing=0.2)
    table.save(tmp_path / "emb.parquet")
    model = {"name": "fusion", "image": str(tmp_path / "emb.parquet"), "strategy": "concat"}
    res = graphbrain.run_pipeline(cohort=cohort, model=model, train=FAST, cv={"scheme": "stratified", "n_splits": 3},
                                  output_dir=tmp_path / "run", progress=False)
    pred = pd.read_parquet(tmp_path / "run" / "predictions.parquet")
    assert pred["has_image"].tolist() == [sid in table for sid in pred["subject_id"]]
    assert res.attention["modality_mask"].shape == (80, 3)
    assert res["auroc"] > 0.7
    out = train_model(cohort=cohort.subset(np.arange(60)), model=model, train=FAST,
                                 output_dir=tmp_path / "model", progress=False)
    pr = predict(out, cohort=cohort.subset(np.arange(60, 80)), output_dir=tmp_path / "pred")
    assert len(pr.predictions) == 20 and np.isfinite(pr.predictions["proba"]).all()
    assert cli(["models"]) == 0
    listed = capsys.readouterr().out
    assert "fusion" in listed and "population" in listed


def test_population_model_through_the_pipeline(tmp_path):
    cohort, _ = make_multimodal_cohort(80, signal="connectome", seed=5)
    res = graphbrain.run_pipeline(cohort=cohort, model={"name": "population", "epochs": 80},
                                  cv={"scheme": "stratified", "n_splits": 3}, output_dir=None, progress=False)
    assert res["auroc"] > 0.7


def test_kg_reading_sits_next_to_the_predictions(tmp_path):
    cohort, _ = make_multimodal_cohort(60, signal="connectome", seed=6, n_rois=8)
    names = ["Left Hippocampus", "Right Hippocampus", "Left Amygdala", "Cerebellum 1", "Cerebellum 2",
             "Frontal Pole", "Precentral Gyrus", "Left Thalamus"]
    cohort = Cohort([dataclasses.replace(s, roi_names=names) for s in cohort], name="named", roi_names=names)
    body = (SemanticType("T023", "Body Part, Organ, or Organ Component"),)
    kg = KnowledgeGraph.from_records(
        [Concept("A:t", "temporal lobe", semantic_types=body), Concept("A:c", "cerebellum", semantic_types=body),
         Concept("D:1", "temporal lobe epilepsy"), Concept("D:2", "cerebellar ataxia")],
        [Relation("D:1", "located_in", "A:t"), Relation("D:2", "located_in", "A:c")],
    )
    kg.save(tmp_path / "kg.json.gz")
    res = graphbrain.run_pipeline(cohort=cohort, model="logreg", cv={"scheme": "stratified", "n_splits": 3},
                                  output_dir=tmp_path / "run", progress=False,
                                  overrides=["kg_reading.enabled=true", f"kg_reading.kg={tmp_path / 'kg.json.gz'}",
                                             "kg_reading.top_rois=2", "kg_reading.top_k=1", "explain=true",
                                             "explain_options.methods=[linear]", "explain_options.random=2",
                                             "explain_options.permutations=50", "cache_dir=null"])
    kr = res.kg_reading
    assert set(kr["subject_id"]) == set(res.predictions["subject_id"])
    node = res.attention["node"]
    for sid, row in kr.set_index("subject_id").iterrows():
        i = res.predictions.index[res.predictions["subject_id"] == sid][0]
        top = [names[j] for j in np.argsort(-node[i])[:2]]
        assert row["rois"] == " | ".join(top)
        expect = {"D:1" if "Hippocampus" in t or "Amygdala" in t else "D:2" if "Cerebellum" in t else None for t in top}
        if isinstance(row["disease_id"], str):
            assert row["disease_id"] in expect
    assert (tmp_path / "run" / "kg_reading.parquet").exists()
    assert graphbrain.PipelineResult.load(tmp_path / "run").kg_reading.shape == kr.shape
    html = (tmp_path / "run" / "explain" / "report.html").read_text()
    assert "Knowledge-graph reading" in html and "temporal lobe epilepsy" in html
