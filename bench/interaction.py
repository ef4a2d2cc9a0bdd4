"""Interaction latency of the real editor: slider drag → preview on screen, release → final frame.

Drives the actual window (offscreen unless a display is set) with the default model: a slider
drag of N value changes at a mouse-like rate, through the real worker thread, measuring

* per value change: the time until a frame showing that value *or a newer one* is painted
  (what a user perceives; includes waiting for the frame being rendered when the value came);
* per displayed preview: request → painted, for the frames actually drawn;
* release → the final full-resolution frame painted.

It prints absolute times and their ratio to an anchor measured in the same run: one plain full
synthesis of the same model (``generator.synthesis(w)``), timed inside the editor's worker thread
before and after the drags. (Measure the anchor in that thread, not the main one: on an
oversubscribed CPU, torch's thread pool driven from Python's main thread ran 3–8× slower here
than the same call from a secondary thread.)

    STYLESTUDIO_WHEELHOUSE=/tmp/wheels python bench/interaction.py --threads 2
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import stylestudio  # noqa: E402,F401  (first: it sets the OpenMP wait policy before torch loads)


def percentile(values: list[float], q: float) -> float:
    xs = sorted(values)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def anchor_job(model: str, repeats: int):
    """A worker job timing plain full syntheses (``generator.synthesis(w)``) of ``model``.

    It runs in the editor's own worker thread, so the anchor shares the exact conditions of the
    frames it is compared with (same thread, same torch thread pool).
    """

    def run(engine, ctx) -> list[float]:
        import torch

        from stylestudio.engine.document import seed_to_z

        gen = engine.generator(model)
        times = []
        with torch.no_grad():
            ws = gen.mapping(seed_to_z(1, gen.z_dim), 0.7)
            gen.synthesis(ws)  # warm-up
            for _ in range(repeats):
                t = time.perf_counter()
                gen.synthesis(ws)
                times.append(time.perf_counter() - t)
        return times

    return run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="model name (default: the built-in default model)")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    ap.add_argument("--moves", type=int, default=100, help="value changes per drag (default 100)")
    ap.add_argument("--interval-ms", type=float, default=16.0, help="time between value changes (60 Hz mouse)")
    ap.add_argument("--drags", type=int, default=3, help="drags to measure (default 3)")
    ap.add_argument("--preview-size", type=int, default=None, help="preview size setting (default: the app's)")
    ap.add_argument("--slider", default="Factor 4", help="label of the slider to drag")
    ap.add_argument("--with-job", action="store_true",
                    help="measure the drags twice: alone, then while a region-catalog build runs in the job "
                         "thread (cancelled afterwards, so nothing is saved)")
    ap.add_argument("--job-nice", type=int, default=None,
                    help="the job thread's nice increment (default: the app's JOB_NICE), to compare settings")
    ap.add_argument("--verbose", action="store_true", help="print every frame rendered")
    args = ap.parse_args()
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    import torch

    torch.set_num_threads(args.threads)
    from PySide6.QtCore import QEventLoop, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from stylestudio.app import thread_priority
    from stylestudio.app.main_window import MainWindow
    from stylestudio.app.settings import Settings
    from stylestudio.engine.model_store import DEFAULT_MODEL

    model = args.model or DEFAULT_MODEL
    if args.job_nice is not None:
        thread_priority.JOB_NICE = args.job_nice
    QApplication.instance() or QApplication([])

    user = Settings.load()
    settings = Settings.transient(default_model=model, threads=args.threads, last_seed=7,
                                  preview_size=args.preview_size or user.preview_size)
    t_start = time.perf_counter()
    window = MainWindow(settings, autosave=False)
    window.resize(1440, 900)
    window.show()

    def spin_until(cond, timeout: float) -> bool:
        """Run the event loop (sleeping in it, as a real session does) until ``cond()``."""
        loop = QEventLoop()
        poll = QTimer()
        poll.timeout.connect(lambda: loop.quit() if cond() else None)
        poll.start(5)
        QTimer.singleShot(int(timeout * 1000), loop.quit)
        if not cond():
            loop.exec()
        poll.stop()
        return bool(cond())

    if not spin_until(lambda: window.frame_is_current(final=True), 600):
        print("error: no first frame", window.errors, file=sys.stderr)
        return 1
    t_first = time.perf_counter() - t_start
    panel = window.panel("sliders-sefa")
    spin_until(lambda: panel.group is not None, 120)
    row = panel.group.row(args.slider)
    slider = row.slider
    spin_until(lambda: not window.engine.busy(), 120)  # thumbnails done: measure the drag alone
    anchor: list[float] = []

    def measure_anchor() -> None:
        got: list = []
        window.engine.submit("anchor", anchor_job(model, 3), got.append, quiet=True)
        spin_until(lambda: bool(got), 300)
        anchor.extend(got[0] if got else [])

    measure_anchor()
    resolution = window.ctx.model.resolution

    frames: list[tuple[int, str, int, float]] = []
    sizes: list[int] = []
    window.engine.rendered.connect(lambda r: sizes.append(r.image.width()) if r.quality == "preview" else None)
    window.engine.rendered.connect(lambda r: frames.append((r.seq, r.quality, r.image.width(), r.render_s)))
    shown: dict[int, tuple[str, float]] = {}
    window.canvas.frame_shown.connect(lambda seq, q, t: shown.__setitem__(seq, (q, t)))
    stats = window.engine.worker.stats

    def measure_drags() -> dict | None:
        """``args.drags`` slider drags; latencies of every value change and of the finals."""
        change_lat: list[float] = []
        frame_lat: list[float] = []
        finals: list[float] = []
        total_req = total_ren = in_final = 0
        sizes.clear()
        for drag in range(args.drags):
            req0, ren0 = stats["render_requests"], stats["renders"]
            posted: list[tuple[int, float]] = []
            slider.setSliderDown(True)
            lo, hi = slider.minimum(), slider.maximum()
            sign = 1 if drag % 2 == 0 else -1

            def move() -> None:
                i = len(posted)
                if i >= args.moves:
                    ticker.stop()
                    loop.quit()
                    return
                # a smooth out-and-back drag over most of the range, like a hand on a mouse
                phase = (i + 1) / args.moves
                frac = 0.5 + 0.4 * sign * (1 - abs(2 * phase - 1))
                slider.setValue(round(lo + frac * (hi - lo)) + (i % 2))  # always a change
                posted.append((window._latest_seq, time.perf_counter()))

            loop = QEventLoop()
            ticker = QTimer()
            ticker.setTimerType(Qt.TimerType.PreciseTimer)
            ticker.timeout.connect(move)
            ticker.start(round(args.interval_ms))
            loop.exec()
            t_release = time.perf_counter()
            slider.setSliderDown(False)
            final_seq = window._latest_seq
            if not spin_until(lambda: any(s >= final_seq and q == "final" for s, (q, _) in shown.items()), 60):
                print("error: no final frame", window.errors, file=sys.stderr)
                return None
            t_final = min(t for s, (q, t) in shown.items() if s >= final_seq and q == "final")
            finals.append(t_final - t_release)
            post_time = dict(posted)
            for seq, t_post in posted:
                # the first preview painted that shows this value or a newer one; values moved just
                # before the release appear first in the final frame (counted under "final")
                later = [t for s, (q, t) in shown.items() if s >= seq and q == "preview"]
                if later:
                    change_lat.append(min(later) - t_post)
                else:
                    in_final += 1
            for s, (q, t) in shown.items():
                if q == "preview" and s in post_time:
                    frame_lat.append(t - post_time[s])
            if args.verbose:
                print(f"drag {drag}: " + ", ".join(f"{q[0]}{w}:{rs * 1000:.0f}" for _, q, w, rs in frames))
                lat = [round((min([t for s, (_, t) in shown.items() if s >= seq] or [float('nan')]) - tp) * 1000)
                       for seq, tp in posted]
                print(f"drag {drag} latencies ms: {lat}")
            frames.clear()
            total_req += stats["render_requests"] - req0
            total_ren += stats["renders"] - ren0
            shown.clear()
            spin_until(lambda: not window.engine.worker.pending(), 30)
        return {"change": change_lat, "frame": frame_lat, "finals": finals, "in_final": in_final,
                "requests": total_req, "renders": total_ren, "sizes": list(sizes)}

    runs: list[tuple[str, dict]] = []
    alone = measure_drags()
    if alone is None:
        return 1
    runs.append(("", alone))
    if args.with_job:
        from stylestudio.engine.tasks import BuildCatalog

        # a job far longer than the drags; cancelled once they are measured, so nothing is saved
        job_state: dict[str, object] = {}
        job_id = window.engine.submit_task(
            BuildCatalog(model=model, samples=5000, name="bench-interaction-job"),
            on_done=lambda r: job_state.setdefault("done", r),
            on_error=lambda *a: job_state.setdefault("error", a))
        spin_until(lambda: window.engine.job_worker.pending() or bool(job_state), 120)
        spin_until(lambda: False, 2.0)  # let the job get past its model load
        busy = window.engine.job_worker.pending() and not job_state
        with_job = measure_drags()
        still = window.engine.job_worker.pending() and not job_state
        window.engine.cancel(job_id)
        spin_until(lambda: bool(job_state), 120)
        if with_job is None:
            return 1
        if not (busy and still):
            print(f"warning: the job was not running for all the drags ({job_state})", file=sys.stderr)
        runs.append((" [with job]", with_job))

    measure_anchor()
    window.shutdown()
    t_anchor = statistics.median(anchor)

    ms = lambda x: f"{x * 1000:7.1f} ms"  # noqa: E731
    print(f"StyleStudio interaction benchmark — model {model} ({resolution} px), torch threads {args.threads}, "
          f"{args.drags} drags × {args.moves} moves every {args.interval_ms:g} ms, "
          f"largest preview {settings.preview_size} px, budget {settings.preview_budget_ms} ms, "
          f"job thread nice +{thread_priority.JOB_NICE}, "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"anchor: one plain full synthesis              {ms(t_anchor)}  (median of {len(anchor)} in the worker "
          f"thread, before and after; range {min(anchor) * 1000:.0f}–{max(anchor) * 1000:.0f} ms)")
    print(f"first frame after start (model load incl.)    {ms(t_first)}")
    lines = []
    for label, r in runs:
        change_lat, frame_lat, finals, sz = r["change"], r["frame"], r["finals"], r["sizes"]
        print(f"--- drags{label or ' alone'}")
        print(f"value change → preview with it on screen: p50 {ms(percentile(change_lat, .5))}  "
              f"p95 {ms(percentile(change_lat, .95))}   ({percentile(change_lat, .95) / t_anchor:.2f}× anchor, "
              f"n={len(change_lat)}; {r['in_final']} last moves first seen in the final frame)")
        print(f"displayed preview, request → painted:     p50 {ms(percentile(frame_lat, .5))}  "
              f"p95 {ms(percentile(frame_lat, .95))}   (n={len(frame_lat)})")
        print(f"release → final frame painted:            p50 {ms(percentile(finals, .5))}  "
              f"max {ms(max(finals))}   ({statistics.median(finals) / t_anchor:.2f}× anchor)")
        print(f"preview sizes drawn: { {w: sz.count(w) for w in sorted(set(sz))} } (px: frames)")
        print(f"render requests {r['requests']}, frames rendered {r['renders']} "
              f"({r['renders'] / max(1, r['requests']):.0%}; the rest were superseded before their turn)")
        goal = 0.250 if label else 0.150
        ok_preview = percentile(change_lat, .95) <= goal and bool(sz) and min(sz) >= 256
        ok_final = statistics.median(finals) <= 0.6
        print(f"goals: preview p95 ≤ {goal * 1000:.0f} ms at ≥ 256 px: {'met' if ok_preview else 'NOT met'}; "
              f"final p50 ≤ 0.6 s: {'met' if ok_final else 'NOT met'}")
        lines.append(f"preview p95 {percentile(change_lat, .95) * 1000:.0f} ms, "
                     f"preview size min {min(sz) if sz else 0} px, median {statistics.median(sz) if sz else 0:.0f} px, "
                     f"final p50 {statistics.median(finals) * 1000:.0f} ms{label}")
    print("---")
    for line in lines:  # one line per run, for scripts
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
