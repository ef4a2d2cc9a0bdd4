"""Which activations of a generator a region catalog works on: the tap each style layer scales,
the layer it clusters, and how far a render must run to reach a tap (so it can stop early)."""
from __future__ import annotations

from typing import Mapping

import torch

from ...errors import InputError
from ..generator import Generator


def probe_taps(gen: Generator) -> dict[str, tuple[int, int, int]]:
    """(channels, height, width) of every tap, from one render of the average face."""
    with torch.no_grad():
        ws = gen.broadcast_w(gen.w_avg[None].to(gen.device))
        res = gen.synthesize(gen.styles(ws), taps=gen.tap_names)
    return {k: tuple(v.shape[1:]) for k, v in res.features.items()}  # type: ignore[misc]


def style_input_taps(gen: Generator, shapes: Mapping[str, tuple[int, int, int]]) -> dict[str, str | None]:
    """For each style layer, the tap holding the activations its style vector scales.

    A style modulates the *input* channels of its convolution, and that input is the output of
    the previous feature (non-RGB) layer in execution order. The very first layer reads a learned
    constant, which is not tapped; its own output (same width in every StyleGAN-like network)
    stands in. ``None`` when no tap matches the channel count: that layer's contributions then
    fall back to the clusters' area shares (no locality information).
    """
    out: dict[str, str | None] = {}
    prev: str | None = None
    for layer in gen.style_layout:
        chosen = None
        for cand in (prev, layer.name):
            if cand is not None and cand in shapes and shapes[cand][0] == layer.channels:
                chosen = cand
                break
        out[layer.name] = chosen
        if layer.kind != "rgb" and layer.name in shapes:
            prev = layer.name
    return out


def default_cluster_layer(gen: Generator) -> str:
    """The last feature layer at 32 px (or half the output size for tiny models).

    Collins et al. cluster a 32×32 StyleGAN layer: coarse enough to be semantic, fine enough to
    separate eyes, nose and mouth.
    """
    target = min(32, max(4, gen.resolution // 2))
    taps = set(gen.tap_names)
    cands = [l for l in gen.style_layout if l.kind != "rgb" and l.name in taps and l.resolution <= target]
    if not cands:
        raise InputError("this model exposes no feature layer to cluster")
    best = max(l.resolution for l in cands)
    return [l for l in cands if l.resolution == best][-1].name


def stop_for(gen: Generator, tap: str) -> int | None:
    """The smallest ``stop_resolution`` whose render still contains ``tap``."""
    try:
        stage = gen.layer(tap).stage
    except KeyError:
        return None
    return max(l.resolution for l in gen.style_layout if l.stage == stage)
