"""Phenotype encoding in-fold; atlas ROI -> KG anatomy mapping and KG reading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from graphbrain.data import Cohort, Subject
from graphbrain.errors import ConfigError
from graphbrain.fusion.kg_features import (
    kg_roi_features,
    map_rois_to_kg,
    mapping_coverage,
    read_label_table,
    roi_label_texts,
)
from graphbrain.fusion.phenotypes import PhenotypeEncoder
from graphbrain.fusion.reading import kg_reading
from graphbrain.kg import Concept, KnowledgeGraph, Relation, SemanticType

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _cohort(rows):
    ts = np.random.default_rng(0).standard_normal((20, 3)).astype(np.float32)
    return Cohort([Subject(id=f"s{i}", timeseries=ts, label=i % 2, covariates=c) for i, c in enumerate(rows)])


def test_phenotypes_use_training_statistics_only_and_mask_missing():
    train = _cohort([{"age": 10.0, "sex": 1}, {"age": 20.0, "sex": 2}, {"age": 30.0, "sex": 1}])
    test = _cohort([{"age": 40.0, "sex": 2}, {"age": None, "sex": None}, {"age": 20.0, "sex": 3}])
    enc = PhenotypeEncoder(["age", "sex"]).fit(train)
    vals, present, mask = enc.transform(test)
    sd = np.std([10.0, 20.0, 30.0])
    assert vals[0, 0] == pytest.approx((40.0 - 20.0) / sd)  # training mean/sd, not the test's
    assert vals[0, 1:].tolist() == [0.0, 1.0]  # one-hot over training categories ["1", "2"]
    assert present.tolist() == [True, False, True]
    assert mask[1].tolist() == [False, False] and not vals[1].any()  # missing -> zeros + mask
    assert vals[2, 1:].tolist() == [0.0, 0.0]  # unseen category encodes as nothing


@pytest.mark.parametrize("col", ["DX_GROUP", "ados_total", "SRS_raw", "label"])
def test_diagnosis_derived_columns_are_refused(col):
    with pytest.raises(ConfigError, match="diagnosis-derived"):
        PhenotypeEncoder(["age", col])


def _anatomy_kg() -> KnowledgeGraph:
    body = (SemanticType("T023", "Body Part, Organ, or Organ Component"),)
    concepts = [
        Concept("A:temporal", "temporal lobe", semantic_types=body),
        Concept("A:cerebellum", "cerebellum", semantic_types=body),
        Concept("A:brain", "brain", semantic_types=body),
        Concept("D:epi", "temporal lobe epilepsy"),
        Concept("D:ataxia", "cerebellar ataxia"),
    ]
    rels = [Relation("D:epi", "located_in", "A:temporal"), Relation("D:ataxia", "located_in", "A:cerebellum")]
    return KnowledgeGraph.from_records(concepts, rels)


def test_roi_mapping_exact_region_and_user_override(tmp_path):
    kg = _anatomy_kg()
    labels = ["Left Temporal Pole", "Cerebelum_Crus1_L", "Right Hippocampus", "Frontal Pole", "Left Temporal Lobe"]
    m = map_rois_to_kg(labels, kg, roi_names=["1", "2", "3", "4", "5"])
    got = dict(zip(m["label"], m["concept_id"]))
    assert got["Left Temporal Lobe"] == "A:temporal" and m.loc[4, "method"] == "exact"
    assert got["Right Hippocampus"] == "A:temporal" and m.loc[2, "method"] == "region"  # no hippocampus in this KG
    assert got["Cerebelum_Crus1_L"] == "A:cerebellum"
    assert got["Frontal Pole"] == "A:brain"  # nothing finer exists here: the coarsest container
    assert not m["concept_id"].isin(["D:epi", "D:ataxia"]).any()  # diseases are never anatomy
    cov = mapping_coverage(m)
    assert cov["mapped"] == 5 and cov["by_method"]["region"] >= 2
    fix = m[["roi", "concept_id"]].copy()
    fix.loc[3, "concept_id"] = "A:temporal"
    fix.to_csv(tmp_path / "fix.csv", index=False)
    m2 = map_rois_to_kg(labels, kg, roi_names=["1", "2", "3", "4", "5"], mapping=tmp_path / "fix.csv")
    assert m2.loc[3, "concept_id"] == "A:temporal" and (m2["method"] == "user").all()


def test_kg_reading_reads_the_top_rois():
    kg = _anatomy_kg()
    m = map_rois_to_kg(["Left Hippocampus", "Cerebellum", "Frontal Pole"], kg)
    att = np.array([[0.9, 0.1, 0.0], [0.0, 1.0, 0.2]])
    out = kg_reading(att, m, kg, ["a", "b"], top_rois=1, top_k=1)
    assert out.set_index("subject_id").loc["a", "disease_id"] == "D:epi"
    assert out.set_index("subject_id").loc["b", "disease_id"] == "D:ataxia"
    assert "located_in" in out.set_index("subject_id").loc["b", "evidence"]


def test_kg_roi_features_give_mapped_rois_their_concept_embedding():
    kg = _anatomy_kg()
    feats, table = kg_roi_features(["Left Hippocampus", "Right Amygdala", "Cerebellum 6"], kg=kg, dim=8, epochs=2)
    assert feats.shape == (3, 8) and table["has_embedding"].all()
    np.testing.assert_array_equal(feats[0], feats[1])  # both map to the temporal lobe
    assert not np.allclose(feats[0], feats[2])


@pytest.mark.skipif(not (SHARED / "atlases_pcp" / "ho_labels.csv").exists(), reason="../shared/data absent")
def test_harvard_oxford_labels_map_to_default_kg_anatomy():
    table = read_label_table(SHARED / "atlases_pcp" / "ho_labels.csv")
    assert table["10"] == "Left Thalamus" and len(table) == 110
    names = list(table)
    m = map_rois_to_kg(roi_label_texts(names, table), KnowledgeGraph.default(), roi_names=names)
    cov = mapping_coverage(m)
    # every HO label is a cortical, subcortical or cerebellar structure: all have a container
    assert cov["coverage"] >= 0.95
    kinds = pd.Series(m.set_index("label")["concept_name"])
    assert kinds["Left Hippocampus"] == "temporal lobe"
    assert kinds["Right Thalamus"] in ("diencephalon", "cerebrum", "brain")
