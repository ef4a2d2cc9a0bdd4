"""ContraCLIP (Tzelepis et al. 2022): semantic dipoles → non-linear latent paths.

Text side. A dipole (t⁺, t⁻) of normalised sentence embeddings defines the RBF pair
``f(φ) = exp(−γ‖φ−t⁺‖²) − exp(−γ‖φ−t⁻‖²)`` with ``γ = −ln 0.5 / ‖t⁺−t⁻‖²``; its normalised
gradient at an image's embedding φ is the *local* direction towards t⁺ and away from t⁻ — it turns
as the image moves, unlike the fixed difference t⁺−t⁻.

Latent side (trained). A path is a warping function over the first rows of W+ (flattened, centred
on ``w_avg``): N dipoles of RBF support vectors (+v, −v) with weights ±1 and a learnable γ,
``g(x) = Σ α_i exp(−γ‖x−v_i‖²)``; a step is ``δ = ε·∇g/‖∇g‖``. The direction depends on where the
face is, so a traversal follows the path step by step (:func:`follow`).

Loss. InfoNCE between the normalised image-embedding changes Δφ and the local text directions of
every dipole (the dipole that moved the face is the positive), temperature τ = 0.07; ``cossim``
pulls Δφ towards the own direction only. The two ablations of the paper's comparison live in the
same trainer: ``linear`` (a fixed latent direction per path, target t⁺−t⁻) and ``styleclip``
(target: the pole itself, t^± − φ).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

METHODS = ("contraclip", "linear", "styleclip")
LOSSES = ("contrastive", "cossim")
LN_HALF = math.log(0.5)


# ---- text side ------------------------------------------------------------------------------------

def dipole_gammas(pos: Tensor, neg: Tensor) -> Tensor:
    """γ per dipole such that each pole's RBF is 0.5 at the other pole."""
    return -LN_HALF / (pos - neg).pow(2).sum(-1).clamp(min=1e-12)


def rbf_pair(phi: Tensor, pos: Tensor, neg: Tensor, gamma: Tensor) -> Tensor:
    """f(φ) for every (image, dipole): φ [B, D], poles [K, D], γ [K] → [B, K]."""
    dp = (phi[:, None] - pos[None]).pow(2).sum(-1)
    dn = (phi[:, None] - neg[None]).pow(2).sum(-1)
    return torch.exp(-gamma * dp) - torch.exp(-gamma * dn)


def text_directions(phi: Tensor, pos: Tensor, neg: Tensor, gamma: Tensor) -> Tensor:
    """∇f/‖∇f‖ at φ for every dipole, in closed form: [B, K, D]."""
    dp, dn = phi[:, None] - pos[None], phi[:, None] - neg[None]
    ep = torch.exp(-gamma[None, :, None] * dp.pow(2).sum(-1, keepdim=True))
    en = torch.exp(-gamma[None, :, None] * dn.pow(2).sum(-1, keepdim=True))
    grad = -2 * gamma[None, :, None] * (ep * dp - en * dn)
    return F.normalize(grad, dim=-1)


# ---- latent side ----------------------------------------------------------------------------------

class LatentPaths(nn.Module):
    """K paths in a ``dim``-d latent space; ``step(x, k, eps)`` moves each row of x along its path."""

    def __init__(self, count: int, dim: int, radius: float, dipoles: int = 4, method: str = "contraclip",
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        self.method, self.count, self.dim = method, count, dim
        if method == "linear":
            d = torch.randn(count, dim, generator=generator)
            self.direction = nn.Parameter(F.normalize(d, dim=-1))
        else:
            # N dipoles per path, +v and −v at 0.9–1.25 × the codes' radius, weights +1 / −1
            u = F.normalize(torch.randn(count, dipoles, dim, generator=generator), dim=-1)
            r = radius * (0.9 + 0.35 * torch.rand(count, dipoles, 1, generator=generator))
            self.support = nn.Parameter(torch.cat([u * r, -u * r], dim=1))  # [K, 2N, dim]
            self.register_buffer("alpha", torch.cat([torch.ones(count, dipoles), -torch.ones(count, dipoles)], 1))
            # γ so that a support vector's RBF is 0.5 at the origin's typical distance, learnable (log)
            self.log_gamma = nn.Parameter(torch.full((count,), math.log(-LN_HALF / radius**2)))

    def direction_at(self, x: Tensor, k: Tensor) -> Tensor:
        """Unit step direction of path k[i] at x[i]: [B, dim]."""
        if self.method == "linear":
            return F.normalize(self.direction[k], dim=-1)
        sv, alpha, gamma = self.support[k], self.alpha[k], self.log_gamma[k].exp()  # [B,2N,dim] [B,2N] [B]
        diff = x[:, None] - sv
        w = alpha * torch.exp(-gamma[:, None] * diff.pow(2).sum(-1))  # [B, 2N]
        grad = -2 * gamma[:, None] * (w[..., None] * diff).sum(1)
        return F.normalize(grad, dim=-1)

    def step(self, x: Tensor, k: Tensor, eps: Tensor) -> Tensor:
        return x + eps[:, None] * self.direction_at(x, k)

    def restricted(self, k: int, dim: int) -> "LatentPaths":
        """Path k alone over the first ``dim`` coordinates (a path trained on fewer W+ rows than its
        library's, stored zero-padded: distances and steps must not see the padding)."""
        dipoles = self.support.shape[1] // 2 if self.method != "linear" else 1
        out = LatentPaths(1, dim, 1.0, dipoles, self.method)
        out.load_state_dict({n: (v[k : k + 1, ..., :dim] if n in ("support", "direction") else v[k : k + 1]).clone()
                             for n, v in self.state_dict().items()})
        return out.to(next(self.parameters()).device).eval().requires_grad_(False)


def follow(paths: LatentPaths, x: Tensor, k: int, amount: float, unit: float, max_step: float = 0.25) -> Tensor:
    """Move x [B, dim] ``amount`` slider units along path k, re-reading the direction every
    ``max_step`` units or less (iterative path following: the path bends with the face)."""
    steps = max(1, math.ceil(abs(amount) / max_step))
    h = torch.full((x.shape[0],), amount * unit / steps, dtype=x.dtype, device=x.device)
    idx = torch.full((x.shape[0],), k, dtype=torch.long, device=x.device)
    for _ in range(steps):
        x = paths.step(x, idx, h)
    return x


# ---- loss -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Poles:
    """The dipoles' normalised text embeddings: t⁺, t⁻ [K, D] and γ [K]."""

    pos: Tensor
    neg: Tensor
    gamma: Tensor

    @classmethod
    def from_embeddings(cls, pos: Tensor, neg: Tensor) -> "Poles":
        pos, neg = F.normalize(pos.float(), dim=-1), F.normalize(neg.float(), dim=-1)
        return cls(pos, neg, dipole_gammas(pos, neg))


def targets(method: str, phi: Tensor, poles: Poles, sign: Tensor) -> Tensor:
    """The text direction each image's change should follow, for every dipole: [B, K, D].

    ``sign`` [B] is +1 where the step went towards t⁺, −1 where it went towards t⁻."""
    if method == "contraclip":
        u = text_directions(phi, poles.pos, poles.neg, poles.gamma)
    elif method == "linear":
        u = F.normalize(poles.pos - poles.neg, dim=-1)[None].expand(phi.shape[0], -1, -1)
    else:  # styleclip: towards the pole itself
        towards = torch.where(sign[:, None, None] > 0, poles.pos[None], poles.neg[None])
        return F.normalize(towards - phi[:, None], dim=-1)
    return u * sign[:, None, None]


def path_loss(delta_phi: Tensor, target: Tensor, k: Tensor, loss: str = "contrastive", tau: float = 0.07) -> Tensor:
    """InfoNCE over the dipoles (positive: the image's own path k) or the cossim variant.

    delta_phi [B, D] (any scale), target [B, K, D] unit vectors, k [B]."""
    d = F.normalize(delta_phi, dim=-1)
    sim = (target * d[:, None]).sum(-1)  # [B, K] cosines
    if loss == "cossim" or target.shape[1] == 1:
        return (1 - sim.gather(1, k[:, None])).mean()
    return F.cross_entropy(sim / tau, k)
