"""PPL, ALS and FD-VGG (engine/metrics) and ``stylestudio metrics``: known answers on a generator whose
image is linear in w, reproducibility, one process = two (torchrun, gloo), the CLI."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import Tensor

from stylestudio.engine.generator import Generator, StyleLayer, SynthesisResult
from stylestudio.engine.metrics import ppl as ppl_mod
from stylestudio.engine.metrics.als import EditDirection, attribute_linearity
from stylestudio.engine.metrics.fd import fd_vgg, frechet_distance
from stylestudio.engine.metrics.ppl import draw_latents, perceptual_path_length
from stylestudio.errors import InputError


class LinearGenerator(Generator):
    """image = A · (M z) reshaped: synthesis is linear in w, so path lengths are known by hand."""

    arch = "linear-test"

    def __init__(self, dim: int = 4, side: int = 16) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.z_dim = self.w_dim = dim
        self.num_ws = 1
        self.resolution = side
        self.register_buffer("w_avg", torch.zeros(dim))
        self.register_buffer("m", torch.randn(dim, dim, generator=g))
        self.register_buffer("a", torch.randn(dim, 3 * side * side, generator=g) / side)
        self.style_layout = (StyleLayer("s", dim, side, 0, 0),)
        self.stage_names = ("b",)

    @property
    def config(self):
        return {}

    def map_z(self, z: Tensor) -> Tensor:
        return z @ self.m

    def styles(self, ws: Tensor):
        return OrderedDict(s=self.broadcast_w(ws)[:, 0])

    def synthesize(self, styles, *, taps=(), start=0, cache=None, keep_cache=False, stop_resolution=None,
                   noise_mode="const", display=False) -> SynthesisResult:
        s = styles["s"]
        return SynthesisResult((s @ self.a).reshape(s.shape[0], 3, self.resolution, self.resolution))

    @property
    def tap_names(self):
        return ()


def squared_l2(a: Tensor, b: Tensor) -> Tensor:
    return (a - b).double().square().flatten(1).sum(1)


@pytest.fixture(scope="module")
def tiny16(stylestudio_home):
    """A tiny StyleGAN2 installed in the test data folder (the CLI and torchrun find it there)."""
    from stylestudio.engine.model_store import ModelStore
    from stylestudio.engine.stylegan2.network import StyleGAN2Generator

    torch.manual_seed(0)
    gen = StyleGAN2Generator(z_dim=32, w_dim=32, img_resolution=16, num_mapping_layers=2, channel_base=256,
                             channel_max=32)
    store = ModelStore()
    store.add(gen, "metrics-tiny16", {"format": "test"})
    return store.load("metrics-tiny16")


def test_ppl_equals_the_hand_computed_value_on_a_linear_generator():
    gen = LinearGenerator()
    n, seed = 300, 5
    res = perceptual_path_length(gen, n, seed=seed, distance=squared_l2, batch=64)
    z0, z1, _ = draw_latents(gen, list(range(n)), seed, "end")
    # image(w) = w·A, so |image(w + ε d) − image(w)|² / ε² = |d·A|² with d = w1 − w0 (no ε left)
    per_sample = ((z1 - z0) @ gen.m @ gen.a).double().square().sum(1).numpy()
    lo, hi = np.percentile(per_sample, 1, method="lower"), np.percentile(per_sample, 99, method="higher")
    expected = per_sample[(per_sample >= lo) & (per_sample <= hi)].mean()
    assert res.value == pytest.approx(expected, rel=1e-3)
    assert res.samples == n - 4  # the two lowest and two highest of 300 fall outside the percentiles
    assert res.low <= res.value <= res.high and res.low < res.high


def test_ppl_finished_early_is_the_ppl_of_the_samples_measured_so_far():
    """*Finish now* on a long PPL (50 000 samples by default): it ends after the batch it is in and
    gives exactly the value and interval of those samples, saying how many were asked."""
    gen = LinearGenerator()
    batches = []
    early = perceptual_path_length(gen, 300, seed=5, distance=squared_l2, batch=64,
                                   progress=lambda m, f: batches.append(m), finish=lambda: len(batches) >= 2)
    whole = perceptual_path_length(gen, 128, seed=5, distance=squared_l2, batch=64)
    assert len(batches) == 2 and early.settings["samples"] == 128 and early.details["asked"] == 300
    assert (early.value, early.low, early.high, early.samples) == (whole.value, whole.low, whole.high, whole.samples)
    assert "asked" not in whole.details


def test_ppl_of_a_tiny_stylegan2_is_reproducible_and_has_an_interval(tiny16):
    a = perceptual_path_length(tiny16, 12, seed=3, batch=4)
    b = perceptual_path_length(tiny16, 12, seed=3, batch=5)  # another batch size: the same samples
    c = perceptual_path_length(tiny16, 12, seed=4, batch=4)
    assert np.isfinite(a.value) and a.value > 0
    assert a.low <= a.value <= a.high and a.low < a.high
    # float32 rounding differs with the batch (ε = 1e-4 magnifies it): equal to ~1e-3
    assert a.value == pytest.approx(b.value, rel=1e-2) and (a.low, a.high) == pytest.approx((b.low, b.high), rel=1e-2)
    assert c.value != pytest.approx(a.value, rel=1e-3)
    z = perceptual_path_length(tiny16, 6, seed=3, space="z", sampling="full")
    assert z.metric == "ppl_zfull" and np.isfinite(z.value)


def test_ppl_refuses_images_too_small_for_vgg(tiny16):
    with pytest.raises(InputError, match="at least 16 px"):
        perceptual_path_length(tiny16, 4, crop=True)  # 16 px cropped to 8


def test_als_is_zero_for_a_linear_attribute_and_positive_for_a_curved_one():
    gen = LinearGenerator()
    d = [EditDirection("mean", np.array([1.0, 0.5, 0.0, -1.0], np.float32), (), 0.7)]
    linear = attribute_linearity(gen, d, lambda im: {"mean": im.mean((1, 2, 3)).double().numpy()}, 8, seed=1)
    curved = attribute_linearity(gen, d, lambda im: {"mean": im.mean((1, 2, 3)).double().numpy() ** 3}, 8, seed=1)
    assert linear.value == pytest.approx(0.0, abs=1e-4)
    assert curved.value > 0.05 and curved.low < curved.value < curved.high
    assert curved.details["per_direction"]["mean"] == pytest.approx(curved.value)
    again = attribute_linearity(gen, d, lambda im: {"mean": im.mean((1, 2, 3)).double().numpy() ** 3}, 8, seed=1)
    assert again.value == curved.value


def test_frechet_distance_of_gaussians():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4000, 3))
    b = rng.standard_normal((4000, 3)) + np.array([2.0, 0.0, 0.0])
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(a, b) == pytest.approx(4.0, abs=0.3)  # |μ|² = 4, equal covariances
    c = rng.standard_normal((4000, 3)) * 2.0  # σ = 2: trace term 3·(1 + 4 − 2·2) = 3
    assert frechet_distance(a, c) == pytest.approx(3.0, abs=0.3)


def test_fd_interval_holds_the_estimate_when_the_sets_match():
    """Resampling inflates FD; near zero a percentile interval lay wholly above the estimate."""
    from stylestudio.engine.metrics.fd import fd_with_interval

    rng = np.random.default_rng(0)
    fake, real = rng.standard_normal((400, 24)), rng.standard_normal((800, 24))
    value, low, high = fd_with_interval(fake, real, seed=0, resamples=30)
    assert 0.0 <= low <= value <= high
    shifted, low2, high2 = fd_with_interval(fake + 1.0, real, seed=0, resamples=30)  # |Δμ|² = 24
    assert low2 <= shifted <= high2 and shifted == pytest.approx(24.0, rel=0.15)


def test_fd_vgg_of_a_tiny_model(tiny16):
    rng = np.random.default_rng(0)
    real = (rng.random((12, 16, 16, 3)) * 255).astype(np.uint8)
    a = fd_vgg(tiny16, real, 12, seed=2, size=32, resamples=3)
    b = fd_vgg(tiny16, real, 12, seed=2, size=32, resamples=3)
    assert np.isfinite(a.value) and a.value > 0 and a.low < a.high
    assert a.value == b.value and a.metric == "fd_vgg"


def test_cli_prints_value_and_interval(tiny16, capsys):
    from stylestudio.cli import main

    assert main(["metrics", "ppl", "--model", "metrics-tiny16", "--samples", "8", "--seed", "2"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("ppl_wend = ") and "95% interval" in line and "seed 2" in line
    assert main(["metrics", "ppl", "--model", "metrics-tiny16", "--samples", "8", "--seed", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["metric"] == "ppl_wend" and out["low"] <= out["value"] <= out["high"]
    assert f"{out['value']:.5g}" in line
    assert main(["metrics", "ppl", "--model", "no-such-model", "--samples", "8"]) == 2
    assert "no model named 'no-such-model'" in capsys.readouterr().err


def test_ctrl_c_reports_the_samples_measured_so_far(tiny16, capsys, press_ctrl_c):
    """The CLI's first Ctrl+C is the Jobs panel's Finish now: the value of the batches measured so far."""
    from stylestudio.cli import main
    from stylestudio.commands import metrics

    pressed = press_ctrl_c(metrics, "4 of 40 samples")
    rc = main(["metrics", "ppl", "--model", "metrics-tiny16", "--samples", "40", "--batch", "2", "--seed", "2",
               "--json"])
    out, err = capsys.readouterr()
    assert pressed and rc == 0, err
    assert "finishing the measurement after the current step" in err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["settings"]["samples"] == 4 and result["details"]["asked"] == 40
    assert main(["metrics", "ppl", "--model", "metrics-tiny16", "--samples", "4", "--batch", "2", "--seed", "2",
                 "--json"]) == 0  # exactly what a run asked for those 4 would say
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["value"] == result["value"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_under_torchrun_give_the_one_process_result(tiny16, capsys):
    from stylestudio.cli import main

    # 9 samples in batches of 2: rank 0 measures 5 (3 batches), rank 1 measures 4 (2 batches), and both
    # must still take the same number of turns (the ranks agree on Finish now before every batch)
    args = ["metrics", "ppl", "--model", "metrics-tiny16", "--samples", "9", "--batch", "2", "--seed", "7", "--json"]
    assert main(args) == 0
    one = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
                           "127.0.0.1", "--master_port", str(_free_port()), "-m", "stylestudio.cli", *args],
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
    assert len(lines) == 1  # rank 0 prints, rank 1 does not
    two = json.loads(lines[0])
    assert two["settings"]["processes"] == 2 and one["settings"]["processes"] == 1
    assert two["value"] == pytest.approx(one["value"], rel=1e-2)  # float32 rounding of other batches
    assert (two["low"], two["high"]) == pytest.approx((one["low"], one["high"]), rel=1e-2)


def test_cli_fd_against_a_folder_of_pictures(tiny16, tmp_path, capsys):
    from PIL import Image

    from stylestudio.cli import main

    rng = np.random.default_rng(1)
    for i in range(6):
        Image.fromarray((rng.random((20, 20, 3)) * 255).astype(np.uint8)).save(tmp_path / f"p{i}.png")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    args = ["metrics", "fd", "--model", "metrics-tiny16", "--data", str(tmp_path), "--samples", "6", "--size", "32",
            "--resamples", "2"]
    assert main(args) == 0
    out = capsys.readouterr()
    assert out.out.strip().splitlines()[-1].startswith("fd_vgg = ")
    assert main(["metrics", "fd", "--model", "metrics-tiny16", "--data", str(tmp_path / "bad.png")]) == 2
    assert "bad.png" in capsys.readouterr().err


def test_cli_als_says_when_the_model_has_no_attribute_sliders(tiny16, capsys):
    from stylestudio.cli import main

    assert main(["metrics", "als", "--model", "metrics-tiny16", "--samples", "4"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "no direction library 'attributes'" in err and "\n" not in err


def test_cli_als_names_a_direction_the_library_lacks(default_generator, capsys):
    from stylestudio.cli import main

    assert main(["metrics", "als", "--samples", "2", "--direction", "age", "--direction", "nosuch"]) == 2
    err = capsys.readouterr().err.strip()
    assert "the 'attributes' library has no direction 'nosuch' (it has: " in err and "age" in err and "\n" not in err
