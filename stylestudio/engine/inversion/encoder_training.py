"""Fitting the inversion encoders on generated faces: the ridge one (:mod:`.encoder`, used by
scripts/train_encoder.py) and the network one (:mod:`.net_encoder`, ``stylestudio train-encoder``).

Kept apart from the encoders themselves because only training needs scikit-learn's solver, the
renders, the augmentation and the optimiser; using an encoder is one forward pass.
"""
from __future__ import annotations

import math
import time
import zipfile
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ...errors import InputError
from ..progress import Progress, check_cancel, no_progress
from .encoder import FeatureEncoder, FeatureSpec, downsample
from .net_encoder import Inputs, NetConfig, NetEncoder, NetHead, head_inputs

ALPHAS = tuple(float(a) for a in np.logspace(1, 5, 9))


def degrade(images: np.ndarray, rng: np.random.RandomState, low: int = 32,
            high: int = 256, device: torch.device | str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Copies of uint8 faces [N, S, S, 3] as if the photo had held only s×s pixels of the aligned
    crop (s log-uniform in [low, high]): area-downsampled, bicubic-upsampled back, quantised.

    A face found small in a photo (messi5.jpg's is 36 px) is aligned by upsampling; trained on
    sharp renders only, the encoder misreads that blur (latent error +20% on faces seen at under
    96 px), trained on both it barely changes on sharp ones. Returns (copies, s per face).
    """
    n, size = images.shape[0], images.shape[1]
    sides = np.exp(rng.uniform(np.log(low), np.log(high), n)).astype(int)
    out = images.copy()
    with torch.no_grad():
        for i, s in enumerate(sides):
            if s >= size:
                continue
            x = torch.from_numpy(images[i:i + 1]).to(device).permute(0, 3, 1, 2).float() / 127.5 - 1.0
            x = F.interpolate(F.interpolate(x, size=(s, s), mode="area"), size=(size, size), mode="bicubic",
                              align_corners=False)
            out[i] = ((x.clamp(-1, 1) + 1) * 127.5).round().byte()[0].permute(1, 2, 0).cpu().numpy()
    return out, sides


def pick_alpha(x: np.ndarray, y: np.ndarray, groups: np.ndarray, alphas: tuple[float, ...] = ALPHAS,
               holdout: float = 0.1, seed: int = 0) -> tuple[float, dict[float, float]]:
    """Ridge strength with the lowest error on a held-out tenth of the *faces*.

    Leave-one-out (RidgeCV's default) would see a face's degraded copy while predicting the face
    and choose far too little regularisation. One SVD of the training part serves every alpha.
    """
    rng = np.random.RandomState(seed)
    faces = np.unique(groups)
    val = np.isin(groups, rng.choice(faces, max(1, int(len(faces) * holdout)), replace=False))
    xt, yt = x[~val], y[~val]
    x_mu, y_mu = xt.mean(0), yt.mean(0)
    u, s, vt = np.linalg.svd(xt - x_mu, full_matrices=False)
    uty = u.T @ (yt - y_mu)
    xv = (x[val] - x_mu) @ vt.T
    errors = {}
    for a in alphas:
        pred = xv @ ((s / (s ** 2 + a))[:, None] * uty) + y_mu
        errors[a] = float(((pred - y[val]) ** 2).mean())
    return min(errors, key=errors.get), errors


def fit_encoder(features: np.ndarray, w: np.ndarray, spec: FeatureSpec, model: str, components: int = 128,
                groups: np.ndarray | None = None, alphas: tuple[float, ...] = ALPHAS) -> FeatureEncoder:
    """Ridge regression from standardised pooled features [N, D] onto the top ``components`` PCA
    coefficients of ``w`` [N, w_dim].

    ``groups``: which face each row shows (rows of one face: a render and its degraded copies);
    the ridge strength is then picked on held-out faces (:func:`pick_alpha`), else by
    leave-one-out. On the default model 128 components predict as well as all 512 (the minor
    ones are not predictable from these features), at a quarter of the file size.
    """
    from sklearn.linear_model import Ridge, RidgeCV

    x = np.asarray(features, np.float64)
    w = np.asarray(w, np.float64)
    x_mean, x_scale = x.mean(0), x.std(0) + 1e-6
    xs = (x - x_mean) / x_scale
    w_mean = w.mean(0)
    _, _, vt = np.linalg.svd(w - w_mean, full_matrices=False)
    basis = vt[:components]
    y = (w - w_mean) @ basis.T
    if groups is None:
        ridge = RidgeCV(alphas=alphas).fit(xs, y)
        alpha = float(ridge.alpha_)
    else:
        alpha, _ = pick_alpha(xs, y, np.asarray(groups), alphas)
        ridge = Ridge(alpha=alpha).fit(xs, y)
    meta = {"training": {"rows": int(x.shape[0]), "alpha": alpha}}
    return FeatureEncoder(model, spec, x_mean.astype(np.float32), x_scale.astype(np.float32),
                          ridge.coef_.astype(np.float32), ridge.intercept_.astype(np.float32),
                          w_mean.astype(np.float32), basis.astype(np.float32), meta)


# ---------------------------------------------------------------------------------------------
# the network encoder's training faces (see :mod:`.net_encoder`)


@torch.no_grad()
def training_faces(gen, n: int, seed: int, psi: tuple[float, float] = (0.5, 1.0), mix: float = 0.25,
                   size: int = 256, batch: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``n`` generated faces with their exact W+ codes: (W+ [n, num_ws, w_dim] float32, images
    [n, size, size, 3] uint8, full renders downsampled as an aligned photo is).

    Each face's ψ is drawn from ``psi`` so faces far from the average are covered; a ``mix``
    share of them are style-mixed (the rows from a random layer on come from a second face), so
    the per-row offsets the encoder predicts are learned from faces that really have them. The
    generator's cheap previews are not used: their colours differ from the full render (mean
    absolute error 0.08 of the [-1, 1] range at 128 px, against 0.004 for the 512-px stop).
    """
    from ..directions.labels import sample_w

    rng = np.random.RandomState(seed + 1)
    psis = rng.uniform(psi[0], psi[1], n).astype(np.float32)
    w_avg = gen.w_avg.cpu()
    w1 = w_avg[None].lerp(torch.from_numpy(sample_w(gen, n, seed, 1.0)), torch.from_numpy(psis)[:, None])
    w2 = w_avg[None].lerp(torch.from_numpy(sample_w(gen, n, seed + 7919, 1.0)), torch.from_numpy(psis)[:, None])
    wplus = w1[:, None].repeat(1, gen.num_ws, 1)
    mixed = rng.uniform(size=n) < mix
    cross = rng.randint(1, gen.num_ws, n)
    for i in np.flatnonzero(mixed):
        wplus[i, cross[i]:] = w2[i]
    images = np.empty((n, size, size, 3), np.uint8)
    batch = batch or (4 if gen.device.type == "cpu" else 50)  # a GPU renders a cache chunk at once
    for i in range(0, n, batch):
        ws = wplus[i:i + batch].to(gen.device)
        img = downsample(gen.synthesize(gen.styles(ws)).image, size)
        images[i:i + batch] = ((img.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    return wplus.numpy().astype(np.float32), images


@dataclass(frozen=True)
class NetTraining:
    """How the network encoder's head is fitted (defaults: what the shipped one used).

    ``style_weight``: besides the rows themselves, their StyleSpace vectors (the generator's
    per-layer affine outputs, in units of each channel's spread) are fitted, which weighs a
    latent error by how much the layers it feeds notice it, for the price of the affines alone
    (no render). ``delta_weight``: e4e's penalty on the per-row offsets, so codes stay editable.
    """

    epochs: int = 40
    batch: int = 32
    lr: float = 1e-3
    linear_lr_share: float = 0.0  #: the linear path's step as a share of ``lr`` (started from a ridge)
    weight_decay: float = 1e-2
    style_weight: float = 1.0
    delta_weight: float = 0.5
    val_fraction: float = 0.1  #: faces held out to keep the best epoch
    max_seconds: float | None = None
    seed: int = 0


@torch.no_grad()
def compute_inputs(lpips, images: np.ndarray, cfg: NetConfig, batch: int | None = None,
                   progress: Progress | None = None, cancel: Any = None) -> Inputs:
    """uint8 faces [N, S, S, 3] → the head's inputs, stored as float16 on the CPU (~90 KB a face);
    VGG runs on ``lpips``'s device."""
    parts = []
    batch = batch or (16 if next(lpips.parameters()).device.type == "cpu" else 100)
    for i in range(0, len(images), batch):
        check_cancel(cancel)
        x = torch.from_numpy(np.ascontiguousarray(images[i:i + batch])).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        parts.append(head_inputs(lpips, x, cfg).to("cpu", torch.float16))
        if progress is not None:
            progress(f"reading faces {min(len(images), i + batch)}/{len(images)}", min(1.0, (i + batch) / len(images)))
    return Inputs.cat(parts)


def _style_scales(gen, wplus: Tensor) -> dict[str, Tensor]:
    """Each style channel's spread over the training codes, floored at a tenth of its layer's mean
    spread: a channel that hardly varies must not dominate the loss."""
    with torch.no_grad():
        out = {}
        for k, v in gen.styles(wplus).items():
            sd = v.std(0)
            out[k] = sd.clamp_min(0.1 * float(sd.mean()) + 1e-6)
        return out


@torch.no_grad()
def init_head(cfg: NetConfig, stats: Tensor, wplus: Tensor, ridge: FeatureEncoder | None) -> NetHead:
    """A head whose linear path is ``ridge`` (when given: the shipped ridge encoder, so training
    starts from its answers) or a fresh map onto W's principal components of the training codes,
    and whose units are fitted on the training rows (``stats`` [N, D], ``wplus`` [N, num_ws, w_dim])."""
    head = NetHead(cfg)
    w = wplus.mean(1)
    rows = wplus.reshape(-1, cfg.w_dim)[::7]
    # vt must hold all w_dim directions; the full SVD also makes a rows × rows U (38 GB for 16 500
    # faces), so it is asked for only when there are fewer rows than dimensions
    _, sv, vt = torch.linalg.svd(rows - rows.mean(0), full_matrices=rows.shape[0] < cfg.w_dim)
    sv = torch.cat([sv, sv.new_zeros(cfg.w_dim - sv.shape[0])])  # fewer rows than dimensions: no spread
    if ridge is not None:
        if ridge.spec != cfg.spec or ridge.coef.shape[0] != cfg.components or ridge.w_dim != cfg.w_dim:
            raise ValueError("the ridge encoder's features or components do not match the head's")
        head.stats_mean.copy_(torch.from_numpy(ridge.x_mean))
        head.stats_scale.copy_(torch.from_numpy(ridge.x_scale))
        head.linear.weight.copy_(torch.from_numpy(ridge.coef))
        head.linear.bias.copy_(torch.from_numpy(ridge.intercept))
        head.w_mean.copy_(torch.from_numpy(ridge.w_mean))
        head.w_basis.copy_(torch.from_numpy(ridge.w_basis))
    else:
        head.stats_mean.copy_(stats.mean(0))
        head.stats_scale.copy_(stats.std(0) + 1e-6)
        head.w_mean.copy_(w.mean(0))
        head.w_basis.copy_(vt[:cfg.components])
    head.w_scale.copy_(w.std(0) + 1e-4)
    c = head.linear((stats[:4000] - head.stats_mean) / head.stats_scale)
    head.coef_scale.copy_(c.std(0) + 1e-4)
    head.basis.copy_(vt[:cfg.offset_components])
    # an offset's unit: a tenth of the spread of W along each direction
    head.basis_scale.copy_((0.1 * sv[:cfg.offset_components] / np.sqrt(max(1, rows.shape[0] - 1))).clamp_min(1e-3))
    return head


def fit_net_encoder(gen, model: str, inputs: Inputs, wplus: np.ndarray, groups: np.ndarray, cfg: NetConfig,
                    settings: NetTraining = NetTraining(), ridge: FeatureEncoder | None = None,
                    progress: Progress | None = None, cancel: Any = None,
                    clock: Callable[[], float] = time.perf_counter) -> NetEncoder:
    """Fit a :class:`NetHead` on rows of ``inputs`` whose faces have the codes ``wplus`` [N, num_ws, w_dim].

    ``groups``: which face each row shows (a render and its degraded copy share one); a
    ``val_fraction`` of the faces is held out and the epoch that fits them best is kept (the
    starting point counts as epoch 0, so with ``ridge`` the result is never worse than it there).
    """
    progress = progress or no_progress
    torch.manual_seed(settings.seed)
    rng = np.random.RandomState(settings.seed)
    target = torch.from_numpy(np.asarray(wplus, np.float32))
    faces = np.unique(groups)
    val_faces = rng.choice(faces, max(1, int(round(len(faces) * settings.val_fraction))), replace=False)
    is_val = np.isin(groups, val_faces)
    tr, va = np.flatnonzero(~is_val), np.flatnonzero(is_val)

    head = init_head(cfg, inputs.stats[tr].float(), target[tr], ridge)  # fitted on the CPU, where the inputs are
    device = gen.device  # then everything moves to the generator's device once
    head, target, inputs = head.to(device), target.to(device), inputs.to(device)
    w_std = float(target[tr].mean(1).std(0).mean())
    style_scale = _style_scales(gen, target[tr[:2000]])

    def losses(idx: np.ndarray) -> tuple[Tensor, dict[str, float]]:
        sel = torch.from_numpy(idx).to(device)
        x = inputs[sel].to(torch.float32)
        t = target[sel]
        w, off = head(x)
        rows = w[:, None] + off
        lat = ((rows - t) / w_std).square().mean()
        delta = (off / w_std).square().mean()
        total = lat + settings.delta_weight * delta
        style = torch.zeros(())
        if settings.style_weight:
            with torch.no_grad():
                st = gen.styles(t)
            sp = gen.styles(rows)
            style = sum(((sp[k] - st[k]) / style_scale[k]).square().mean() for k in st) / len(st)
            total = total + settings.style_weight * style
        return total, {"latent": float(lat.detach()), "style": float(style.detach()), "delta": float(delta.detach())}

    # the linear path started from the ridge encoder is a fitted solution: with a few thousand
    # faces and 7232 inputs, fine-tuning it overfits at once, so by default it stays as fitted
    share = settings.linear_lr_share if ridge is not None else 1.0
    linear = [p for n, p in head.named_parameters() if n.startswith("linear.")]
    rest = [p for n, p in head.named_parameters() if not n.startswith("linear.")]
    groups_, lrs = [{"params": rest}], [settings.lr]
    if share > 0:
        groups_.append({"params": linear})
        lrs.append(settings.lr * share)
    else:
        for p in linear:
            p.requires_grad_(False)
    opt = torch.optim.AdamW(groups_, lr=settings.lr, weight_decay=settings.weight_decay)
    steps_per_epoch = max(1, int(np.ceil(len(tr) / settings.batch)))
    total_steps = max(1, settings.epochs * steps_per_epoch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lrs, total_steps=total_steps, pct_start=0.05)
    best, best_val, history = None, math.inf, []
    t0 = clock()
    step = 0

    def evaluate(epoch: int, train_loss: float | None) -> float:
        nonlocal best, best_val
        head.eval()
        with torch.no_grad():
            chunks = [va[i:i + 256] for i in range(0, len(va), 256)]
            vals = [losses(c) for c in chunks]
        val = sum(float(l) * len(c) for (l, _), c in zip(vals, chunks)) / len(va)
        parts = {k: sum(p[k] * len(c) for (_, p), c in zip(vals, chunks)) / len(va) for k in vals[0][1]}
        history.append({"epoch": epoch, "train": None if train_loss is None else round(train_loss, 5),
                        "val": round(val, 5), **{f"val_{k}": round(v, 5) for k, v in parts.items()},
                        "seconds": round(clock() - t0, 1)})
        if val < best_val:
            best_val, best = val, {k: v.detach().clone() for k, v in head.state_dict().items()}
        return val

    start = evaluate(0, None)
    progress(f"encoder: held-out loss {start:.4f} at the start", 0.0)
    for epoch in range(settings.epochs):
        head.train()
        order = rng.permutation(tr)
        run = []
        for i in range(0, len(order), settings.batch):
            check_cancel(cancel)
            with torch.enable_grad():
                loss, _ = losses(order[i:i + settings.batch])
                opt.zero_grad(set_to_none=True)
                loss.backward()
            opt.step()
            if step < total_steps - 1:
                sched.step()
            step += 1
            run.append(float(loss.detach()))
        val = evaluate(epoch + 1, float(np.mean(run)))
        progress(f"encoder epoch {epoch + 1}/{settings.epochs}: training loss {np.mean(run):.4f}, held-out "
                 f"{val:.4f} (latent {history[-1]['val_latent']:.4f})", (epoch + 1) / settings.epochs)
        if settings.max_seconds is not None and clock() - t0 > settings.max_seconds:
            break
    assert best is not None
    head.load_state_dict(best)
    head.eval().requires_grad_(False)
    meta = {"training": {"rows": int(len(groups)), "faces": int(len(faces)), "held_out_faces": int(len(val_faces)),
                         "w_std": round(w_std, 5), "settings": {k: v for k, v in asdict(settings).items()
                                                                if v is not None},
                         "best_held_out_loss": round(best_val, 5), "history": history}}
    return NetEncoder(model, head, meta)


CHUNK = 50  #: faces per cache file: a stopped run loses at most this many renders


MAX_FACES = 50_000  #: 1000 chunks; ~0.6 MB a face in the cache


def chunk_seed(seed: int, k: int) -> int:
    """The seed of training chunk ``k``. The benchmarks' held-out faces use seed 500 000
    (bench/encoder_heldout.py) and 1000–1049 (bench/inversion.py), which no chunk reaches:
    chunks past the 400th jump over them."""
    return seed * 1_000_003 + 100_000 + 1000 * k + (600_000 if k >= 400 else 0)


def _inputs_arrays(prefix: str, x: Inputs) -> dict[str, np.ndarray]:
    return {f"{prefix}_stats": x.stats.numpy(), f"{prefix}_tap3": x.tap3.numpy(), f"{prefix}_tap4": x.tap4.numpy()}


def _inputs_from(f, prefix: str) -> Inputs:
    return Inputs(*(torch.from_numpy(np.asarray(f[f"{prefix}_{k}"], np.float16)) for k in ("stats", "tap3", "tap4")))


def prepare_faces(gen, lpips, cfg: NetConfig, cache: Any, faces: int, seed: int = 0, mix: float = 0.25,
                  progress: Progress | None = None, cancel: Any = None, render_seconds: float | None = None,
                  clock: Callable[[], float] = time.monotonic) -> tuple[Inputs, np.ndarray, np.ndarray]:
    """Render ``faces`` training faces in chunks kept in the folder ``cache`` (so a stopped run
    resumes and a refit renders nothing), each face also as a degraded copy (:func:`degrade`), and
    read them with the frozen VGG. Returns (inputs [2F rows], W+ [2F, num_ws, w_dim], face index [2F]).

    ``render_seconds``: once rendering has taken this long, no new chunk is started and the faces
    made so far (cached ones included, at least one chunk) are used — "as many as fit in T".
    """
    from pathlib import Path

    progress = progress or no_progress
    cache = Path(cache)
    if cache.exists() and not cache.is_dir():
        raise InputError(f"{cache}: the face cache must be a folder")
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{cache}: cannot make the face cache folder ({exc.strerror})") from None
    parts, targets, groups = [], [], []
    chunks = (faces + CHUNK - 1) // CHUNK
    rendering = 0.0  # seconds spent making or reading new chunks (complete cached ones cost nothing)
    for k in range(chunks):
        check_cancel(cancel)
        t0 = clock()
        n = min(CHUNK, faces - k * CHUNK)
        path = cache / f"train{k:03d}.npz"
        arrays: dict[str, np.ndarray] = {}
        if path.is_file():
            try:
                with np.load(path, allow_pickle=False) as f:
                    arrays = {key: f[key] for key in f.files}
            except (OSError, ValueError, EOFError, zipfile.BadZipFile):
                arrays = {}  # a damaged cache file (a run killed while writing it?): render it again
            if len(arrays.get("wplus", ())) < n or int(arrays.get("seed", -1)) != chunk_seed(seed, k):
                arrays = {}
        if not arrays:
            if render_seconds is not None and parts and rendering >= render_seconds:
                progress(f"rendering stopped after {rendering:.0f} s: training on {k * CHUNK} faces", 1.0)
                break
            progress(f"rendering training faces {k * CHUNK + 1}–{k * CHUNK + n} of {faces}", k / chunks)
            wp, images = training_faces(gen, n, chunk_seed(seed, k), mix=mix)
            arrays = {"wplus": wp.astype(np.float16), "images": images, "seed": np.int64(chunk_seed(seed, k))}
        if "sharp_stats" not in arrays or arrays["sharp_stats"].shape[1] != cfg.stats_dim:
            progress(f"reading training faces {k * CHUNK + 1}–{k * CHUNK + n} of {faces}", (k + 0.8) / chunks)
            degraded, _ = degrade(arrays["images"], np.random.RandomState(int(arrays["seed"]) + 2),
                                  device=gen.device)
            arrays.update(_inputs_arrays("sharp", compute_inputs(lpips, arrays["images"], cfg, cancel=cancel)))
            arrays.update(_inputs_arrays("degraded", compute_inputs(lpips, degraded, cfg, cancel=cancel)))
            _save_npz(path, arrays)
            rendering += clock() - t0
        with np.load(path, allow_pickle=False) as f:
            wp = np.asarray(f["wplus"][:n], np.float32)
            for prefix in ("sharp", "degraded"):
                parts.append(_inputs_from(f, prefix)[:n])
                targets.append(wp)
                groups.append(np.arange(k * CHUNK, k * CHUNK + n))
    return Inputs.cat(parts), np.concatenate(targets), np.concatenate(groups)


def _save_npz(path, arrays: dict[str, np.ndarray]) -> None:
    from ...safe_io import atomic_write

    atomic_write(path, lambda f: np.savez(f, **arrays))
