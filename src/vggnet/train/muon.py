"""Muon (Jordan et al., 2024): momentum whose update is orthogonalised before it is applied.

For a conv filter bank, the momentum buffer reshaped to (out, in*k*k) is replaced by the nearest
matrix with all singular values near 1 (five-coefficient Newton-Schulz iterations), so every
direction the filters can move in moves at the same rate. The filters' norm is reset before each
step: BatchNorm after each conv makes the net blind to it, so only its direction matters. Every
group without ``orthogonal`` is plain (Nesterov) SGD with weight decay, so one optimizer holds the
whole net and one schedule drives it.
"""

from __future__ import annotations

import torch

NEWTON_SCHULZ = (3.4445, -4.7750, 2.0315)  # coefficients that push small singular values up fastest


def orthogonalise(g: torch.Tensor, steps: int = 3, eps: float = 1e-7) -> torch.Tensor:
    """A matrix with ``g``'s singular vectors and singular values near 1 (within ~0.5-1.5: exact
    orthogonality is not needed for the step, and 3 iterations keep it cheap). fp32: the CPUs this
    runs on may lack fast bf16."""
    a, b, c = NEWTON_SCHULZ
    x = g.float() / (g.norm() + eps)  # every singular value <= 1
    wide = x.size(0) <= x.size(1)
    x = x if wide else x.T  # iterate on the smaller Gram matrix
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return (x if wide else x.T).to(g.dtype)


class Muon(torch.optim.SGD):
    """SGD for every group, except groups marked ``orthogonal`` (4-D conv filters), which take an
    orthogonalised Nesterov-momentum step of size ``lr`` on weights renormalised to sqrt(out) norm."""

    @torch.no_grad()
    def step(self, closure: object = None) -> None:  # torch's signature
        plain = [g for g in self.param_groups if not g.get("orthogonal")]
        others, self.param_groups = self.param_groups, plain
        try:
            super().step(closure)
        finally:
            self.param_groups = others
        for group in (g for g in others if g.get("orthogonal")):
            for p in group["params"]:
                if p.grad is None:
                    continue
                buf = self.state[p].setdefault("momentum_buffer", torch.zeros_like(p))
                buf.mul_(group["momentum"]).add_(p.grad)
                g = p.grad.add(buf, alpha=group["momentum"]) if group["nesterov"] else buf
                p.mul_(len(p) ** 0.5 / p.norm().clamp_min(1e-12))
                p.add_(orthogonalise(g.reshape(len(g), -1)).view_as(p), alpha=-group["lr"])
        return None
