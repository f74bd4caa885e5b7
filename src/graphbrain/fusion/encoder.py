"""A built-in imaging encoder: a small 3D CNN (MONAI), trained self-supervised in-fold.

For users with volumes but no foundation model: structural images or mean-BOLD images
(a 4D file is averaged over time) are resampled to ``size**3`` voxels and z-scored inside
the non-zero (brain) voxels; a MONAI ``AutoEncoder`` (3D, ``channels`` per level, stride
2) learns to *inpaint* volumes whose random cubes were blanked (masked-image modelling,
loss on the blanked voxels only), so no label is ever used. The embedding of a volume is
its encoder output averaged over space (``channels[-1]`` numbers), returned as the same
:class:`~graphbrain.fusion.embeddings.EmbeddingTable` an external encoder would give.

Fit it on the *training fold's* volumes only (:meth:`VolumeEncoder.fit` takes ids and
volumes, nothing else); ``graphbrain.fusion`` never fits it on a cohort that holds test
subjects. Needs the optional extra ``imaging`` (MONAI).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from graphbrain.errors import DataError, MissingDependencyError
from graphbrain.fusion.embeddings import EmbeddingTable


def _monai() -> Any:
    try:
        import monai  # noqa: F401
        from monai.networks.nets import AutoEncoder
        from monai.transforms import NormalizeIntensity, Resize
    except ImportError as err:  # pragma: no cover - exercised only without the extra
        raise MissingDependencyError("the built-in imaging encoder needs MONAI: pip install 'graphbrain-connectome[imaging]'") from err
    return AutoEncoder, Resize, NormalizeIntensity


def load_volume(path: str | Path) -> np.ndarray:
    """A 3D float32 array from a NIfTI file (4D -> mean over time), with a named error."""
    import nibabel as nib

    p = Path(path)
    try:
        img = nib.load(str(p))
        data = np.asarray(img.dataobj, dtype=np.float32)
    except FileNotFoundError as err:
        raise DataError("volume not found", source=str(p), reason="missing_file") from err
    except Exception as err:
        raise DataError(f"not a readable NIfTI volume: {err}", source=str(p), reason="unreadable") from err
    if data.ndim == 4:
        data = data.mean(axis=3)
    if data.ndim != 3:
        raise DataError(f"expected a 3D or 4D image, got {data.ndim}D {data.shape}", source=str(p), reason="wrong_shape")
    if not np.isfinite(data).all():
        raise DataError("volume holds NaN/Inf", source=str(p), reason="nan")
    return data


class VolumeEncoder:
    """Self-supervised 3D CNN encoder; ``fit(ids, volumes)`` then ``transform(ids, volumes)``."""

    def __init__(
        self,
        *,
        size: int = 32,
        channels: Sequence[int] = (8, 16, 32),
        epochs: int = 40,
        lr: float = 3e-3,
        batch_size: int = 8,
        mask_ratio: float = 0.4,
        cube: int = 4,
        seed: int = 0,
    ) -> None:
        if size % (2 ** len(channels)) != 0:
            raise ValueError(f"size {size} must be divisible by 2**{len(channels)}")
        self.size, self.channels, self.epochs, self.lr = int(size), tuple(int(c) for c in channels), int(epochs), float(lr)
        self.batch_size, self.mask_ratio, self.cube, self.seed = int(batch_size), float(mask_ratio), int(cube), int(seed)
        self.net: Any = None
        self.loss_history: list[float] = []
        self.fitted_ids: list[str] = []

    def _prep(self, volumes: Sequence[np.ndarray | str | Path]) -> torch.Tensor:
        _, Resize, NormalizeIntensity = _monai()
        resize = Resize((self.size,) * 3)
        norm = NormalizeIntensity(nonzero=True)
        out = []
        for v in volumes:
            arr = load_volume(v) if isinstance(v, str | Path) else np.asarray(v, dtype=np.float32)
            if arr.ndim == 4:
                arr = arr.mean(axis=3)
            x = torch.as_tensor(arr)[None]
            out.append(norm(resize(x)).float())
        return torch.stack(out)  # (N, 1, S, S, S)

    def _mask(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        g = self.size // self.cube
        keep = (torch.rand((x.shape[0], 1, g, g, g), generator=gen) >= self.mask_ratio).float()
        return keep.repeat_interleave(self.cube, 2).repeat_interleave(self.cube, 3).repeat_interleave(self.cube, 4)

    def fit(self, ids: Sequence[str], volumes: Sequence[np.ndarray | str | Path]) -> VolumeEncoder:
        AutoEncoder, _, _ = _monai()
        if len(ids) != len(volumes) or len(ids) < 2:
            raise DataError(f"need >= 2 volumes with one id each, got {len(volumes)} volumes / {len(ids)} ids",
                            reason="too_few")
        torch.manual_seed(self.seed)
        gen = torch.Generator().manual_seed(self.seed)
        x = self._prep(volumes)
        self.net = AutoEncoder(spatial_dims=3, in_channels=1, out_channels=1, channels=self.channels,
                               strides=(2,) * len(self.channels))
        opt = torch.optim.AdamW(self.net.parameters(), lr=self.lr)
        self.loss_history = []
        for _ in range(self.epochs):
            perm = torch.randperm(len(x), generator=gen)
            total = 0.0
            self.net.train()
            for i in range(0, len(x), self.batch_size):
                xb = x[perm[i : i + self.batch_size]]
                keep = self._mask(xb, gen)
                rec = self.net(xb * keep)
                hidden = 1.0 - keep
                loss = ((rec - xb) ** 2 * hidden).sum() / hidden.sum().clamp_min(1.0)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(xb)
            self.loss_history.append(total / len(x))
        self.net.eval()
        self.fitted_ids = [str(i) for i in ids]
        return self

    @torch.no_grad()
    def transform(self, ids: Sequence[str], volumes: Sequence[np.ndarray | str | Path]) -> EmbeddingTable:
        if self.net is None:
            raise DataError("VolumeEncoder is not fitted", reason="not_fitted")
        x = self._prep(volumes)
        h = self.net.intermediate(self.net.encode(x))
        emb = h.mean(dim=(2, 3, 4)).numpy()
        return EmbeddingTable(list(ids), emb, source="graphbrain.fusion.VolumeEncoder")
