"""DistributedDataParallel through torchrun: 2 gloo processes on CPU give the weights of one
process trained with the same global batch (class-weighted loss, uneven shards)."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

SCRIPT = textwrap.dedent(
    '''
    import sys
    import numpy as np
    import torch
    from torch import nn
    from graphbrain.models.base import ModelOutput
    from graphbrain.training import distributed
    from graphbrain.training.trainer import TensorSet, Trainer


    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(10, 8), nn.Tanh(), nn.Linear(8, 2))

        def forward(self, batch):
            return ModelOutput(logits=self.net(batch["x"]))


    def data():
        rng = np.random.default_rng(0)
        x = rng.standard_normal((23, 10)).astype(np.float32)
        y = (x[:, 0] + 0.5 * rng.standard_normal(23) > 0.4).astype(np.int64)  # imbalanced
        return TensorSet({"x": x}, y)


    def train():
        torch.manual_seed(3)
        model = Tiny()
        cfg = {"epochs": 4, "batch_size": 8, "lr": 0.05, "warmup_epochs": 1, "device": "cpu",
               "progress": False, "class_weight": "balanced", "grad_clip": 1.0}
        hist = Trainer(cfg, seed=7).fit(model, data()).history
        return model, hist


    if __name__ == "__main__":
        ctx = distributed.init_from_env()
        model, hist = train()
        if ctx is None or ctx.rank == 0:
            from safetensors.torch import save_file
            state = {k: v.contiguous() for k, v in model.state_dict().items()}
            state["loss"] = torch.tensor([h["train_loss"] for h in hist])
            save_file(state, sys.argv[1])
        if ctx is not None:
            import torch.distributed as dist
            dist.barrier()
            dist.destroy_process_group()
    '''
)


def test_two_gloo_processes_match_one_process(tmp_path):
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available")
    from safetensors.torch import load_file, save_file

    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("WORLD_SIZE", None)
    one = tmp_path / "one.safetensors"
    two = tmp_path / "two.safetensors"
    ns = runpy.run_path(str(script), run_name="reference")  # one process, in this interpreter
    model, hist = ns["train"]()
    save_file({**{k: v.contiguous() for k, v in model.state_dict().items()},
               "loss": torch.tensor([h["train_loss"] for h in hist])}, str(one))
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script), str(two)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = load_file(str(one)), load_file(str(two))
    assert set(a) == set(b)
    for k in a:
        np.testing.assert_allclose(b[k].numpy(), a[k].numpy(), atol=1e-5, err_msg=k)
    # the weights moved (the comparison is not between two untouched initialisations)
    torch.manual_seed(3)
    init = torch.nn.Sequential(torch.nn.Linear(10, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2)).state_dict()
    assert float((a["net.0.weight"] - init["0.weight"]).abs().max()) > 1e-2


def test_shards_cover_the_batch_once():
    from graphbrain.training.distributed import DistContext

    idx = np.arange(7)
    parts = [DistContext(r, 3, r, "gloo").shard(idx) for r in range(3)]
    assert np.concatenate([p for p, _ in parts]).tolist() == idx.tolist()
    assert [w for _, w in parts] == [1.0, 1.0, 1.0]
    part, w = DistContext(2, 3, 2, "gloo").shard(np.arange(2))  # empty shard: one sample, weight 0
    assert part.tolist() == [0] and w == 0.0
