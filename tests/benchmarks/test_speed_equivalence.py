"""Speed edits must not change the maths: the one-matmul Gram backward of the STAGIN
orthogonality regulariser equals autograd's two-matmul one."""

from __future__ import annotations

import torch

from graphbrain.models.layers import orthogonality_penalty


def _reference(h: torch.Tensor) -> torch.Tensor:
    inner = torch.bmm(h, h.transpose(1, 2))
    scale = inner.amax(dim=-1, keepdim=True).clamp_min(1e-8)
    eye = torch.eye(h.shape[1], dtype=h.dtype)
    return torch.triu(inner / scale - eye).norm(dim=(1, 2)).mean()


def test_orthogonality_penalty_value_and_gradient_match_autograd():
    h = torch.randn(5, 7, 4, dtype=torch.float64, requires_grad=True)
    ours = orthogonality_penalty(h)
    (g_ours,) = torch.autograd.grad(ours, h)
    h2 = h.detach().clone().requires_grad_(True)
    ref = _reference(h2)
    (g_ref,) = torch.autograd.grad(ref, h2)
    assert torch.allclose(ours, ref, atol=1e-12)
    assert torch.allclose(g_ours, g_ref, atol=1e-10)
    assert torch.autograd.gradcheck(orthogonality_penalty, (h,))
