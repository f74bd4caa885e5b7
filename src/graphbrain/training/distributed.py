"""Data-parallel training over several processes: torch DistributedDataParallel via ``torchrun``.

Launch any graphbrain entry point with ``torchrun``; the :class:`~graphbrain.training.trainer.Trainer`
notices the ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` variables that torchrun sets,
joins the process group (NCCL on GPUs, gloo on CPU) and trains one model replica per
process::

    torchrun --standalone --nproc_per_node=4 -m graphbrain train model=brainnetcnn ... output_dir=m

What each step does (``W`` processes, global batch ``B`` indices drawn from the same seeded
permutation on every rank, so all ranks agree on the batch without communicating):

* the batch is split into ``W`` contiguous shards (sizes differ by at most one; a rank
  with an empty shard computes a zero-weighted loss on one sample so every rank joins the
  gradient all-reduce);
* rank ``r`` computes ``L_r = W * sum_{i in shard r} w_{y_i} CE_i / sum_{i in batch} w_{y_i}``
  (``w``: class weights, 1 without them). DDP averages gradients over ranks, so the
  applied gradient is that of ``sum_i w_{y_i} CE_i / sum_i w_{y_i}`` over the whole batch:
  exactly the single-process loss with the same global batch (the test checks the final
  weights agree to 1e-5 with 2 gloo processes);
* gradient clipping, AdamW and the schedule then run identically on every rank.

Not identical to one process, by nature: BatchNorm statistics are per rank (converted to
``SyncBatchNorm`` on CUDA), dropout masks and random crops draw from per-rank streams,
and a model's auxiliary loss is averaged over shards rather than computed on the whole
batch. Validation runs the full inner-validation set on every rank, so early stopping
decisions agree. Only rank 0 shows progress bars and writes logs; pipelines write their
output folder from rank 0 only (:func:`is_main_process`).

Multi-GPU node: ``torchrun --standalone --nproc_per_node=<GPUs> ...`` (each rank uses
``cuda:<LOCAL_RANK>``); several nodes: ``torchrun --nnodes=N --node_rank=k
--rdzv_endpoint=host:29400 ...`` (see ``docs/batch.md``). The per-GPU batch is
``train.batch_size / W``: keep ``train.batch_size`` as the global batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from graphbrain.errors import ConfigError


@dataclass
class DistContext:
    """This process's place in a data-parallel job."""

    rank: int
    world_size: int
    local_rank: int
    backend: str

    def device(self, requested: torch.device) -> torch.device:
        """``cuda:<local_rank>`` when training on CUDA, else the requested device."""
        if requested.type == "cuda":
            torch.cuda.set_device(self.local_rank)
            return torch.device("cuda", self.local_rank)
        return requested

    def shard(self, index: np.ndarray) -> tuple[np.ndarray, float]:
        """``(local indices, weight)``: this rank's contiguous part of a global batch; an
        empty part becomes one sample with weight 0 (it still joins the all-reduce)."""
        part = np.array_split(np.asarray(index), self.world_size)[self.rank]
        if part.size == 0:
            return np.asarray(index)[:1], 0.0
        return part, 1.0

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """The model wrapped in DistributedDataParallel (SyncBatchNorm on CUDA)."""
        from torch.nn.parallel import DistributedDataParallel

        if device.type == "cuda" and any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def loss(self, out: Any, y_local: torch.Tensor, y_global: np.ndarray, weight: torch.Tensor | None,
             shard_weight: float = 1.0) -> torch.Tensor:
        """The rank's share of the global-batch loss (see the module docstring)."""
        logits = out.logits.float()
        per = F.cross_entropy(logits, y_local, weight=weight, reduction="none")  # w_y * CE
        yg = torch.as_tensor(np.asarray(y_global), device=logits.device)
        denom = weight[yg].sum() if weight is not None else torch.tensor(float(len(y_global)), device=logits.device)
        loss = per.sum() * (self.world_size * shard_weight) / denom
        if out.aux_loss is not None:
            frac = shard_weight * len(y_local) / len(y_global)
            loss = loss + out.aux_loss.float() * (self.world_size * frac)
        return loss

    def global_mean(self, value: torch.Tensor) -> float:
        """The batch loss as one process would report it (mean of the ranks' shares)."""
        import torch.distributed as dist

        v = value.detach().clone().float()
        dist.all_reduce(v)
        return float(v) / self.world_size


def init_from_env(backend: str | None = None) -> DistContext | None:
    """Join the process group described by torchrun's environment variables; ``None``
    when this is a single-process run (``WORLD_SIZE`` unset or 1)."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 and not dist.is_initialized():
        return None
    if not dist.is_available():
        raise ConfigError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    if not dist.is_initialized():
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        dist.init_process_group(backend=backend)
    return DistContext(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        backend=dist.get_backend(),
    )


def current() -> DistContext | None:
    """The data-parallel context of this process, or ``None`` (single process)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return init_from_env()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return init_from_env()
    return None


def is_main_process() -> bool:
    """True on rank 0 of a data-parallel job and in every single-process run."""
    return int(os.environ.get("RANK", "0")) == 0
