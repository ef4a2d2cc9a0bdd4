"""Synthesis speed of the default model (MobileStyleGAN) on the CPU, against OpenVINO.

Times, on ``--threads`` CPU threads (2 by default) in float32:

* our 1024×1024 synthesis (W → image, styles included) and the OpenVINO runtime's on the very
  same IR files (CPU plugin, f32, same thread count), at batch 1 and batch 4, and their ratio;
* a render that reuses the start-stage cache and recomputes only the last two blocks
  (what a slider on a fine-detail style costs);
* a stopped render (``stop_resolution=128`` → 256² preview);
* StyleGAN2 config-F at 1024 px on random weights, for scale (skipped if that module is absent).

Each figure is the median (and min) of ``--repeats`` runs after warm-up; ours and OpenVINO's
runs are interleaved so that both see the same background load. OpenVINO is imported here only,
as a speed anchor: the application never uses it.

``--omp-wait`` sets ``OMP_WAIT_POLICY`` before torch loads (``passive`` by default, as importing
``stylestudio`` does for the application; ``inherit`` keeps the environment's). PyTorch's OpenMP threads otherwise spin at every barrier, and when the
CPU is shared with other busy processes a descheduled thread stalls its partner: measured here
under a load average of 6–8 on 2 cores, one render went from 2.7 s (spinning) to 0.5 s
(passive), while OpenVINO's TBB threads took 1.0 s either way. Spinning also skews the
interleaved comparison: our idle spinning threads steal the CPU from OpenVINO's runs.

    STYLESTUDIO_WHEELHOUSE=/tmp/wheels python bench/synthesis.py
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
torch: Any = None  # imported in main(), after OMP_WAIT_POLICY is set


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def interleaved(fns: dict[str, Callable[[], object]], repeats: int, warmup: int) -> dict[str, list[float]]:
    """Run every function ``warmup`` times, then ``repeats`` rounds of each in turn."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            times[k].append(timed(fn))
    return times


def fmt(ts: list[float]) -> str:
    return f"{statistics.median(ts) * 1000:8.1f} ms (min {min(ts) * 1000:7.1f})"


def openvino_runner(members: dict[str, bytes], threads: int, batch: int) -> tuple[Callable[[object], object], str]:
    """A compiled OpenVINO synthesis network for ``batch`` styles; the IR files as shipped."""
    import openvino as ov

    folder = Path(tempfile.mkdtemp(prefix="msg-ir-"))
    (folder / "s.xml").write_bytes(members["synthesis_xml"])
    (folder / "s.bin").write_bytes(members["synthesis_bin"])
    core = ov.Core()
    model = core.read_model(str(folder / "s.xml"))
    note = ""
    if batch > 1:
        try:
            model.reshape({model.inputs[0].any_name: [batch, 512]})
        except Exception as exc:  # the IR may not be reshapeable: then run it per image
            note = f" (IR not reshapeable: {type(exc).__name__}; {batch} sequential calls)"
    config = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads,
              "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY"}
    request = core.compile_model(model, "CPU", config).create_infer_request()
    if note or batch == 1:
        return (lambda w: [request.infer({0: w[i:i + 1]}) for i in range(w.shape[0])]), note
    return (lambda w: request.infer({0: w})), note


def stylegan2_line(threads: int, repeats: int) -> str | tuple[str, float]:
    try:
        from stylestudio.engine.stylegan2.network import StyleGAN2Generator
    except ImportError as exc:
        return f"StyleGAN2 config-F 1024 px: skipped ({exc})"
    try:
        g = StyleGAN2Generator(z_dim=512, w_dim=512, img_resolution=1024, img_channels=3,
                               channel_base=32768, channel_max=512).eval().requires_grad_(False)
    except TypeError as exc:
        return f"StyleGAN2 config-F 1024 px: skipped (constructor does not take NVlabs kwargs: {exc})"
    with torch.inference_mode():
        ws = g.mapping(torch.randn(1, 512, generator=torch.Generator().manual_seed(0)))
        ts = interleaved({"sg2": lambda: g.synthesis(ws)}, max(3, repeats // 2), 1)["sg2"]
    return f"StyleGAN2 config-F 1024 px (random weights), batch 1: {fmt(ts)}", statistics.median(ts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--warmup", type=int, default=4)
    ap.add_argument("--omp-wait", choices=("passive", "active", "inherit"), default="passive",
                    help="OMP_WAIT_POLICY for torch's threads (default passive; see above)")
    args = ap.parse_args()
    if args.omp_wait != "inherit":
        os.environ["OMP_WAIT_POLICY"] = args.omp_wait.upper()
    policy = os.environ.get("OMP_WAIT_POLICY", "unset")  # what OpenMP reads when torch loads
    global torch
    import torch as torch_module

    torch = torch_module
    torch.set_num_threads(args.threads)

    from stylestudio.engine.mobilestylegan import provision

    members = provision.read_members(provision.locate_wheel())
    gen = provision.build(members)
    print(f"torch {torch.__version__}, {args.threads} threads, float32, CPU, "
          f"OMP_WAIT_POLICY={policy} at torch start, load average "
          f"{os.getloadavg()[0]:.1f}; median (min) of {args.repeats} runs after {args.warmup} warm-up runs")

    rng = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        w4 = gen.map_z(torch.randn(4, 512, generator=rng))
    w1 = w4[:1]
    ov1, _ = openvino_runner(members, args.threads, 1)
    ov4, note4 = openvino_runner(members, args.threads, 4)
    w1_np, w4_np = w1.numpy(), w4.numpy()

    with torch.inference_mode():
        t1 = interleaved({"ours": lambda: gen.synthesis(w1), "ov": lambda: ov1(w1_np)}, args.repeats, args.warmup)
        anchor = statistics.median(t1["ov"])
        ours1 = statistics.median(t1["ours"])
        print(f"batch 1, 1024x1024  ours     {fmt(t1['ours'])}")
        print(f"batch 1, 1024x1024  OpenVINO {fmt(t1['ov'])}")
        print(f"batch 1  ratio ours/OpenVINO = {ours1 / anchor:.2f}")

        t4 = interleaved({"ours": lambda: gen.synthesis(w4), "ov": lambda: ov4(w4_np)},
                         max(3, args.repeats // 2), 2)
        r4 = statistics.median(t4["ours"]) / statistics.median(t4["ov"])
        print(f"batch 4, 1024x1024  ours     {fmt(t4['ours'])}  = {statistics.median(t4['ours']) / 4 * 1000:.1f} ms/image")
        print(f"batch 4, 1024x1024  OpenVINO {fmt(t4['ov'])}{note4}")
        print(f"batch 4  ratio ours/OpenVINO = {r4:.2f}")

        styles = gen.styles(gen.broadcast_w(w1))
        full = gen.synthesize(styles, keep_cache=True)
        edited = dict(styles)
        for name in ("b256.conv1", "b512.conv2"):
            edited[name] = styles[name] * 1.1
        start = gen.first_stage_of(["b256.conv1", "b512.conv2"])
        tc = interleaved({
            "cache": lambda: gen.synthesize(edited, start=start, cache=full.cache),
            "ov": lambda: ov1(w1_np),
        }, args.repeats, 2)
        print(f"last two blocks only (start={start}, cached)  {fmt(tc['cache'])}  "
              f"= {statistics.median(tc['cache']) / statistics.median(tc['ov']):.2f} x OpenVINO full")
        tp = interleaved({"preview": lambda: gen.synthesize(styles, stop_resolution=128)}, args.repeats, 2)
        print(f"preview stop_resolution=128 (256x256 image)  {fmt(tp['preview'])}  "
              f"= {statistics.median(tp['preview']) / anchor:.2f} x OpenVINO full")

    line = stylegan2_line(args.threads, args.repeats)
    if isinstance(line, tuple):
        print(f"{line[0]}  = {line[1] / anchor:.1f} x OpenVINO MobileStyleGAN")
    else:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
