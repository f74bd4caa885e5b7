"""The built-in MONAI encoder: self-supervised, in-fold, real volumes in, embedding table out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("monai")

from graphbrain.errors import DataError  # noqa: E402
from graphbrain.fusion.encoder import VolumeEncoder, load_volume  # noqa: E402

HAXBY = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "haxby2001" / "sub001"


def test_unlabelled_encoder_embeds_a_planted_structure():
    """No label reaches the encoder; a linear read-out of its embedding finds the blob."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    vols, y = [], []
    for i in range(48):
        v = rng.normal(size=(16, 16, 16)).astype(np.float32) + 5
        if i % 2:
            v[2:8, 2:8, 2:8] += 3.0
        vols.append(v)
        y.append(i % 2)
    y = np.asarray(y)
    ids = [f"s{i}" for i in range(48)]
    enc = VolumeEncoder(size=16, channels=(8, 16), epochs=12, cube=4).fit(ids[:32], vols[:32])
    assert enc.fitted_ids == ids[:32]  # trained on the training volumes only
    assert enc.loss_history[-1] < enc.loss_history[0]
    table = enc.transform(ids, vols)
    assert table.ids == ids and table.values.shape == (48, 16)
    read = LogisticRegression(max_iter=2000).fit(table.values[:32], y[:32])
    assert roc_auc_score(y[32:], read.predict_proba(table.values[32:])[:, 1]) > 0.9


@pytest.mark.skipif(not HAXBY.is_dir(), reason="../shared/data absent")
def test_haxby_anatomy_and_mean_bold_volumes():
    runs = sorted((HAXBY / "BOLD").glob("task001_run*/bold_25mm.nii.gz"))[:6]
    anat = sorted((HAXBY / "anatomy").glob("*.nii.gz"))
    assert len(runs) == 6 and anat
    assert load_volume(runs[0]).ndim == 3  # 4D BOLD -> its mean volume
    enc = VolumeEncoder(size=16, channels=(8, 16), epochs=6, cube=4).fit([r.parent.name for r in runs[:4]], runs[:4])
    ids = [r.parent.name for r in runs[4:]] + [a.name for a in anat]
    table = enc.transform(ids, [*runs[4:], *anat])
    assert np.isfinite(table.values).all() and table.values.shape == (len(ids), 16)
    e = table.values
    # two mean-BOLD runs of one subject resemble each other more than an anatomical scan
    d_runs = np.linalg.norm(e[0] - e[1])
    d_anat = min(np.linalg.norm(e[0] - e[2]), np.linalg.norm(e[1] - e[2]))
    assert d_runs < d_anat


def test_bad_volumes_are_named(tmp_path):
    (tmp_path / "broken.nii.gz").write_bytes(b"not a nifti")
    with pytest.raises(DataError) as err:
        load_volume(tmp_path / "broken.nii.gz")
    assert "broken.nii.gz" in str(err.value)
