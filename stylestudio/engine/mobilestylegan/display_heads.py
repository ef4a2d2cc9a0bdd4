"""Display heads: k×k preview heads fitted for the eye, used only for previews that are shown.

The 1×1 preview heads map each feature pixel on its own, which leaves a visible 2×2 grid on skin in
the drag previews (issue #15). A k×k head lets a pixel's Haar coefficients see its neighbours and
removes it (bench/preview_heads.py measures the difference). The 1×1 heads are kept as they are
for everything that *measures* a coarse render (attribute labels, the face-text encoder, region
fits, inversion estimates): their results were calibrated on them and must not move.

The fit is the same least squares as the 1×1 heads' (stage features → Haar coefficients of the
final image box-downsampled to the preview's size), over faces truncated by ψ ∈ [0.5, 1] (the
editor's default is 0.7; ψ = 1 faces alone made held-out ψ = 0.7 previews worse). To keep the
system small, the off-centre taps see only the stage's top principal components.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ...errors import ModelFormatError
from ..progress import Progress
from .network import MobileStyleGAN, haar_analysis

#: display head kernel per stage b4 … b256 (previews of 8 … 512 px), 0 for none: the grid shows
#: from the 128-px preview up; the smaller previews are never shown while dragging
DISPLAY_KERNELS = (0, 0, 0, 0, 3, 3, 3)
DISPLAY_SAMPLES, DISPLAY_SEED = 32, 1
#: the off-centre taps see this many principal components of the stage's channels (the centre tap
#: sees all): it keeps the normal equations small enough to solve in seconds
DISPLAY_COMPONENTS = 128
#: pixels per face: neighbouring pixels add little, more faces add much
DISPLAY_PIXELS = 2048
DISPLAY_PSI = (0.5, 1.0)


class HeadFit:
    """Normal equations of one stage's k×k head, accumulated face by face.

    Columns: the centre pixel's C channels, then for each off-centre tap the stage's top
    ``components`` principal components there (from the first faces seen), then 1 for the bias.
    The solution folds back into an ordinary k×k conv over all C channels."""

    def __init__(self, channels: int, kernel: int, components: int) -> None:
        self.c, self.k = channels, kernel
        self.m = min(channels, components) if kernel > 1 else 0
        self.offsets = [(dy, dx) for dy in range(kernel) for dx in range(kernel)
                        if (dy, dx) != (kernel // 2, kernel // 2)]
        self.dim = channels + len(self.offsets) * self.m + 1
        self.proj: torch.Tensor | None = None  # [m, C]
        self.xtx = torch.zeros(self.dim, self.dim, dtype=torch.float64)
        self.xty = torch.zeros(self.dim, 12, dtype=torch.float64)
        self.yty = torch.zeros((), dtype=torch.float64)
        self.count = 0

    def set_projection(self, feats: torch.Tensor, pixels: int, rng: torch.Generator) -> None:
        """The off-centre taps' basis: top principal components of ``feats`` [N, C, h, w]."""
        if not self.m:
            return
        if self.m == self.c:
            self.proj = torch.eye(self.c)
            return
        x = feats.permute(1, 0, 2, 3).flatten(1).T  # [N·h·w, C]
        x = x[torch.randperm(x.shape[0], generator=rng)[:4 * pixels]].double()
        _, vecs = torch.linalg.eigh(torch.cov(x.T))  # ascending
        self.proj = vecs[:, -self.m:].T.float().contiguous()

    def design(self, feat: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
        """Design-matrix rows [P, dim] of pixels (ys, xs) of one face's features [C, h, w]."""
        cols = [feat[:, ys, xs].T]
        if self.m:
            assert self.proj is not None, "set_projection first"
            pad = self.k // 2
            z = F.pad(torch.einsum("mc,chw->mhw", self.proj, feat), (pad, pad, pad, pad))
            cols += [z[:, ys + dy, xs + dx].T for dy, dx in self.offsets]
        cols.append(torch.ones(len(ys), 1))
        return torch.cat(cols, 1)

    def add(self, feat: torch.Tensor, target: torch.Tensor, pixels: int, rng: torch.Generator) -> None:
        """One face: features [C, h, w], wanted coefficients [12, h, w]."""
        h, w = feat.shape[1:]
        pick = torch.randperm(h * w, generator=rng)[:pixels]
        ys, xs = pick // w, pick % w
        x = self.design(feat, ys, xs)  # float32: the products are summed in float64 per face
        y = target[:, ys, xs].T.double()
        self.xtx += (x.T @ x).double()
        self.xty += x.double().T @ y
        self.yty += y.square().sum()
        self.count += len(pick)

    def solve(self) -> tuple[torch.Tensor, torch.Tensor, float]:
        """(weight [12, C, k, k], bias [12], RMS error over the fitted pixels)."""
        ridge = 1e-4 * self.xtx.diagonal().mean() * torch.eye(self.dim, dtype=torch.float64)
        sol = torch.linalg.solve(self.xtx + ridge, self.xty)  # [dim, 12]
        sse = self.yty - 2 * (sol * self.xty).sum() + (sol * (self.xtx @ sol)).sum()
        weight = torch.zeros(12, self.c, self.k, self.k, dtype=torch.float64)
        weight[:, :, self.k // 2, self.k // 2] = sol[:self.c].T
        for j, (dy, dx) in enumerate(self.offsets):
            part = sol[self.c + j * self.m:self.c + (j + 1) * self.m].T  # [12, m]
            assert self.proj is not None
            weight[:, :, dy, dx] = part @ self.proj.double()
        return weight.float(), sol[-1].float(), float(torch.sqrt(sse.clamp(min=0) / (self.count * 12)))


@torch.no_grad()
def fit_display_heads(gen: MobileStyleGAN, samples: int = DISPLAY_SAMPLES, seed: int = DISPLAY_SEED,
                      pixels: int = DISPLAY_PIXELS, components: int = DISPLAY_COMPONENTS,
                      psi: tuple[float, float] = DISPLAY_PSI, progress: Progress | None = None,
                      span: tuple[float, float] = (0.0, 1.0)) -> dict[str, float]:
    """Fit ``gen``'s display heads in place; returns each head's RMS error (Haar coefficients)."""
    say = progress or (lambda message, fraction: None)
    rng = torch.Generator().manual_seed(seed)
    names = [n for n in gen.stage_names[:-1] if hasattr(gen.stages[n], "display")]
    index = {n: gen.stage_names.index(n) for n in names}
    taps = {n: f"{n}.conv1" if n == "b4" else f"{n}.conv2" for n in names}
    fits = {n: HeadFit(gen.channels[index[n]], gen.stages[n].display.kernel, components) for n in names}
    batch = 4
    for i in range(0, samples, batch):
        say("Fitting the display heads…", span[0] + (span[1] - span[0]) * i / samples)
        n_batch = min(batch, samples - i)
        ws = gen.mapping(torch.randn(n_batch, gen.z_dim, generator=rng))
        psis = psi[0] + (psi[1] - psi[0]) * torch.rand(n_batch, 1, 1, generator=rng)
        ws = gen.w_avg.lerp(ws, psis.to(ws))
        out = gen.synthesize(gen.styles(ws), taps=list(taps.values()))
        for name in names:
            feats = out.features[taps[name]].float().cpu()
            target = haar_analysis(F.adaptive_avg_pool2d(out.image, 8 * 2 ** index[name]), gen.wavelet_taps).cpu()
            if i == 0:
                fits[name].set_projection(feats, pixels, rng)
            for n in range(n_batch):
                fits[name].add(feats[n], target[n].float(), pixels, rng)
    errors = {}
    for name in names:
        weight, bias, errors[name] = fits[name].solve()
        head = gen.stages[name].display
        head.weight.copy_(weight.to(head.weight))
        head.bias.copy_(bias.to(head.bias))
    return errors


def display_heads_record(errors: dict[str, float], kernels: tuple[int, ...] = DISPLAY_KERNELS) -> dict[str, Any]:
    """What the model's metadata says about its display heads."""
    return {"samples": DISPLAY_SAMPLES, "seed": DISPLAY_SEED, "psi": list(DISPLAY_PSI), "kernels": list(kernels),
            "components": DISPLAY_COMPONENTS, "rms_error": errors}


def with_display_heads(gen: MobileStyleGAN, kernels: tuple[int, ...] = DISPLAY_KERNELS,
                       progress: Progress | None = None,
                       span: tuple[float, float] = (0.0, 1.0)) -> tuple[MobileStyleGAN, dict[str, Any]]:
    """A copy of ``gen`` (e.g. stored before display heads existed) with display heads of
    ``kernels``, fitted on the CPU; every other weight, the 1×1 heads included, is ``gen``'s."""
    new = MobileStyleGAN(**dict(gen.config, display_kernels=list(kernels)))
    state = {k: v.cpu() for k, v in gen.state_dict().items() if ".display." not in k}
    missing, unexpected = new.load_state_dict(state, strict=False)
    if unexpected or any(".display." not in k for k in missing):
        raise ModelFormatError(f"cannot carry the weights over: missing {missing}, unexpected {unexpected}")
    new = new.eval().requires_grad_(False)
    errors = fit_display_heads(new, samples=DISPLAY_SAMPLES, progress=progress, span=span)
    return new, display_heads_record(errors, kernels)
