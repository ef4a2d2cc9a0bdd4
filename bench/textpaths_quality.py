"""Text paths: does ContraCLIP beat the linear and StyleCLIP-like arms? (issue #17, docs/textpaths.md)

    python bench/textpaths_quality.py [--faces 200] [--steps 40] [--batch 8] [--pairs smile,age,gender]
        [--rows N] [--eval-pairs age] [--prefix quality]
        [--reuse] [--shard K/N] [--report]

1. Trains the three arms of the same trainer — ``contraclip``, ``linear`` and ``styleclip`` — with
   the built-in encoder (``minilm``), identical budgets (steps, batch, lr, seed, training faces),
   all pairs in one library per arm, saved as the user's libraries ``quality-<method>`` (``--prefix``; with
   ``--reuse`` an existing one is loaded instead; ``--train-only --methods M`` trains one arm, so
   the arms can train in separate processes; without ``--train-only``, ``--methods contraclip,linear``
   compares those arms only).
2. Calibrates on CALIBRATION faces (their own seed): each arm's slider amount whose mean change of
   the target attribute (the project's predictors) equals the shipped attribute slider's at ±1
   unit (matched target change; the − and + sides separately).
3. Evaluates on HELD-OUT faces (another seed, never used to train the face head, the paths or to
   choose anything): each face moved along each path at ``--points`` evenly spaced matched amounts
   from −1 to +1, rendered as the 256-px preview, and measured:

   * monotonicity: Spearman ρ of the target attribute against the amount, per face (mean);
   * identity drift: 1 − the centred cosine of MobileFaceNet embeddings (engine/inversion/identity.py's
     measure, its calibrated population centre) between each end (±1) and the start face, mean of both ends;
   * other attributes: |change from −1 to +1| of every other predictor attribute, in that
     attribute's slider units (half its spread over faces), mean over faces and attributes;
   * LPIPS step ratio: LPIPS-VGG between consecutive points of the path, per face max / mean of
     its ``points − 1`` steps (1 = evenly spread change; ``points − 1`` = all of it in one step),
     mean over faces; also the path's LPIPS length (sum of the steps).

   ``--shard K/N`` evaluates every N-th face from the K-th (run N processes); results are
   saved after every batch under ``--raw``, and ``--report`` prints the table from all shards.
4. Prints absolute times and ratios against an anchor render measured in the same process, the
   load average, and saves ``docs/textpaths_grid.png`` (held-out faces 0 and 1; rows: path ×
   ContraCLIP / linear / StyleCLIP-like / shipped slider, columns −1 … +1).

Measured with ``--steps 20`` (what the shared CPU allowed; the default is the starter's 40): the
table, its definitions and what it says are in docs/textpaths.md.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import stylestudio  # noqa: E402,F401  (first: it sets the OpenMP wait policy before torch loads)

#: path name, + sentence, − sentence (as scripts/train_starter_textpaths.py), predictor attribute, shipped slider
PAIRS = {"smile": ("a smiling face", "a face with a neutral expression", "smile", "smile"),
         "age": ("an old person", "a young person", "age", "age"),
         "gender": ("a woman", "a man", "gender", "gender"),
         # a candidate for the starter library (bench/textpaths_rows.py --pairs smile,age,gender,hair --path hair)
         "hair": ("a person with blond hair", "a person with dark hair", "hair_lightness", "hair_lightness")}
METHODS = ("contraclip", "linear", "styleclip")
ARMS = METHODS + ("slider",)
ARM_LABEL = {"contraclip": "ContraCLIP", "linear": "linear", "styleclip": "StyleCLIP-like", "slider": "shipped slider"}
PSI = 0.7
CALIB_SEED = 424242  #: the faces that fix each arm's matched amount
EVAL_SEED = 515151  #: the held-out faces (the face head used seeds 7000–7052; the trainer draws torch.randn)
CALIB_GRID = (0.5, 1.0, 2.0, 3.0)  #: text-path amounts measured to find the matched one
SLIDER_LIBRARY = "attributes"


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


# ---- 1. training ----------------------------------------------------------------------------------

PREFIX = ["quality"]  #: --prefix


def library_name(method: str) -> str:
    return f"{PREFIX[0]}-{method}"


def train_arm(gen, encoder, method: str, pairs: list[str], steps: int, batch: int, reuse: bool,
              rows: int | None = None):
    """The arm's library: loaded when ``reuse`` and it exists with these pairs, budget and rows, else trained."""
    import torch

    from stylestudio.engine.model_store import DEFAULT_MODEL
    from stylestudio.engine.text.library import TextPathLibrary, library_file
    from stylestudio.engine.text.training import PathTrainer, TrainSettings, path_rows

    file = library_file(DEFAULT_MODEL, library_name(method))
    if reuse and file.is_file():
        lib = TextPathLibrary.load(file)
        if (lib.names() == pairs and lib.meta.get("steps") == steps and lib.meta.get("batch") == batch
                and lib.rows == path_rows(gen, rows)):
            print(f"{method}: reusing {file}")
            return lib
        print(f"{method}: {file} has other pairs or budget ({lib.names()}, {lib.meta.get('steps')} steps); training")
    torch.set_grad_enabled(True)
    trainer = PathTrainer(gen, encoder, [(p, *PAIRS[p][:2]) for p in pairs],
                          TrainSettings(method=method, steps=steps, batch=batch, rows=rows))
    with torch.no_grad():
        ws = trainer.latents(batch)
        anchor = best_of(lambda: trainer.render(ws), 2)
    lib = trainer.run(lambda m, f: print(f"  [{method}] {m}", flush=True), None)
    lib.model = DEFAULT_MODEL
    lib.meta.update(anchor_seconds=round(anchor, 3), anchor=f"no-grad render of {batch} faces at the training stage",
                    load_average=load_average())
    lib.save(file)
    print(f"{method}: {lib.meta['steps']} steps in {lib.meta['seconds']:.0f} s "
          f"({lib.meta['seconds'] / lib.meta['steps']:.1f} s/step = {lib.meta['seconds'] / lib.meta['steps'] / anchor:.1f}× "
          f"the anchor {anchor:.2f} s), loss {lib.meta['eval_loss_start']:.3f} → {lib.meta['eval_loss_end']:.3f} → {file}",
          flush=True)
    torch.set_grad_enabled(False)
    return lib



def train_pairs(gen, file: Path, pairs: list[str], settings: dict, anchor: bool = False):
    """``pairs`` trained in one run with the built-in encoder (``settings``: TrainSettings' fields) and saved
    to ``file``, or loaded from it when it holds these pairs and settings. ``anchor``: first draw the
    timing batch :func:`train_arm` draws, so the same training faces follow (the quality bench's arm)."""
    import torch

    from stylestudio.engine.model_store import DEFAULT_MODEL
    from stylestudio.engine.text.encoders import load_encoder
    from stylestudio.engine.text.library import TextPathLibrary
    from stylestudio.engine.text.training import PathTrainer, TrainSettings

    if file.is_file():
        lib = TextPathLibrary.load(file)
        if (lib.names() == list(pairs) and lib.rows == settings.get("rows", lib.rows)
                and all(lib.meta.get(k) == v for k, v in settings.items() if k != "rows")):
            print(f"reusing {file}")
            return lib
    torch.set_grad_enabled(True)
    trainer = PathTrainer(gen, load_encoder("minilm"), [(p, *PAIRS[p][:2]) for p in pairs], TrainSettings(**settings))
    if anchor:
        with torch.no_grad():
            trainer.latents(settings["batch"])
    lib = trainer.run(lambda m, f: print(f"  {m}", flush=True), None)
    torch.set_grad_enabled(False)
    lib.model = DEFAULT_MODEL
    lib.save(file)
    print(f"trained {lib.names()}: {lib.meta['steps']} steps in {lib.meta['seconds']:.0f} s, fixed-batch loss "
          f"{lib.meta['eval_loss_start']:.3f} → {lib.meta['eval_loss_end']:.3f} → {file}", flush=True)
    return lib


# ---- measuring ------------------------------------------------------------------------------------

class Meter:
    """Renders W+ codes as 256-px previews and measures what the bench compares, loaded once."""

    def __init__(self, gen, lpips_size: int) -> None:
        from stylestudio.engine.attributes import AttributePredictor
        from stylestudio.engine.directions.labels import preview_stop
        from stylestudio.engine.inversion.identity import IdentityCalibration
        from stylestudio.engine.perceptual.lpips import load_lpips

        self.gen = gen
        self.pred = AttributePredictor(identity=True)
        self.names = list(self.pred.names)
        self.lpips = load_lpips("cpu", size=lpips_size)
        self.stop = preview_stop(gen, 256)
        self.centre = IdentityCalibration.load().centre

    def render(self, ws):
        from stylestudio.engine.directions.labels import render_small

        return render_small(self.gen, ws, self.stop)

    def __call__(self, ws, lpips: bool = True) -> dict:
        img = self.render(ws)
        lm = self.pred.landmarks(img)
        m = self.pred.measure(img, lm)
        out = {"attrs": np.stack([m[a] for a in self.names], 1), "emb": self.pred.embed(img, lm), "img": img}
        if lpips:
            out["feats"] = self.lpips.features(img)
        return out

    def identity_drift(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        from stylestudio.engine.inversion.identity import centred_cosine

        return 1.0 - centred_cosine(a, b, self.centre)

    def lpips_between(self, fa: list, fb: list):
        """LPIPS from two images' :meth:`LPIPS.features` (each image's VGG pass is shared by its two steps)."""
        total = 0.0
        for j, (x, y) in enumerate(zip(fa, fb)):
            total = total + ((x - y).pow(2) * self.lpips.head(j).view(1, -1, 1, 1)).sum(1).mean((1, 2))
        return total.numpy()


class Arms:
    """Moves W+ codes along a path of each arm: the three text path libraries and the shipped slider."""

    def __init__(self, gen, libs: dict) -> None:
        from stylestudio.engine.directions.library import DirectionLibrary
        from stylestudio.engine.model_store import DEFAULT_MODEL
        from stylestudio.engine.resources import Resources

        self.gen, self.libs = gen, libs
        self.sliders = DirectionLibrary.load(Resources(None, DEFAULT_MODEL).find_file("directions", f"{SLIDER_LIBRARY}.ssdir"))

    def move(self, arm: str, pair: str, ws, amount: float):
        if amount == 0:
            return ws
        if arm == "slider":
            return ws + self.sliders.delta(PAIRS[pair][3], amount, self.gen.num_ws)[None].to(ws.dtype)
        return self.libs[arm].move(pair, ws, amount, self.gen.w_avg)


def nanmean(x) -> float:
    x = np.asarray(x, np.float64)
    return float(np.nanmean(x)) if np.isfinite(x).any() else math.nan


# ---- 2. calibration -------------------------------------------------------------------------------

def fingerprint(libs: dict, pairs: list[str]) -> dict:
    """What a calibration and the shards depend on: the arms' trainings and the pairs (a pair's
    calibration file leaves the pair list out, so pairs can be calibrated in separate processes)."""
    return {"pairs": pairs, **{m: [libs[m].meta.get("steps"), libs[m].meta.get("batch"), libs[m].meta.get("seconds")]
                              for m in sorted(libs)}}


def crossing(grid: list[float], change: list[float], goal: float) -> tuple[float, bool]:
    """The amount where the mean change first reaches ``goal`` (linear between grid points);
    (the largest amount, False) when it never does."""
    for i in range(1, len(grid)):
        if change[i] / goal >= 1.0:
            f = (goal - change[i - 1]) / (change[i] - change[i - 1]) if change[i] != change[i - 1] else 1.0
            return grid[i - 1] + min(max(f, 0.0), 1.0) * (grid[i] - grid[i - 1]), True
    return grid[-1], False


def calibrate(args, gen, libs: dict, arms: Arms, pairs: list[str], meter: Meter) -> dict:
    """Per pair and arm the amounts (− side, + side) whose mean target change on the calibration
    faces equals the shipped slider's at ∓1 / ±1. Cached under ``--raw``."""
    import torch

    from stylestudio.engine.directions.labels import sample_w

    key = {**fingerprint(libs, pairs), "faces": args.calib_faces, "seed": CALIB_SEED}
    cal, ws, base = {"key": key, "pairs": {}}, None, None
    for p in pairs:
        file = args.raw / f"calibration-{p}.json"
        if file.is_file():
            old = json.loads(file.read_text())
            if old.get("key") == {**key, "pairs": None}:
                print(f"calibration {p}: reusing {file}")
                cal["pairs"][p] = old["entry"]
                continue
        t0 = time.time()
        if ws is None:
            ws = gen.broadcast_w(torch.from_numpy(sample_w(gen, args.calib_faces, CALIB_SEED, PSI)))
            base = meter(ws, lpips=False)["attrs"]
        ti = meter.names.index(PAIRS[p][2])
        change = lambda arm, a: nanmean(meter(arms.move(arm, p, ws, a), lpips=False)["attrs"][:, ti] - base[:, ti])  # noqa: E731
        goal = {"+": change("slider", 1.0), "-": change("slider", -1.0)}
        entry = {"slider_change": goal, "slider": {"+": 1.0, "-": 1.0}, "reached": {}, "grid": {}}
        for m in METHODS:
            entry[m], entry["reached"][m], entry["grid"][m] = {}, {}, {}
            for side, sign in (("+", 1.0), ("-", -1.0)):
                grid = [0.0, *CALIB_GRID]
                ch = [0.0] + [change(m, sign * a) for a in CALIB_GRID]
                amount, ok = crossing(grid, ch, goal[side])
                entry[m][side], entry["reached"][m][side], entry["grid"][m][side] = amount, ok, ch
        cal["pairs"][p] = entry
        entry["seconds"] = round(time.time() - t0, 1)
        file.write_text(json.dumps({"key": {**key, "pairs": None}, "entry": entry}, indent=1))
        print(f"calibration {p}: slider ±1 changes {PAIRS[p][2]} by {goal['-']:+.2f} / {goal['+']:+.2f}; matched amounts "
              + ", ".join(f"{m} −{entry[m]['-']:.2f}{'' if entry['reached'][m]['-'] else '(capped)'}"
                          f"/+{entry[m]['+']:.2f}{'' if entry['reached'][m]['+'] else '(capped)'}" for m in METHODS),
              flush=True)
    return cal


# ---- 3. evaluation --------------------------------------------------------------------------------

def save_npz(path: Path, **arrays) -> None:
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def zero_shot(encoder, pairs: list[str], img) -> np.ndarray:
    """[N, pairs]: cosine to the + sentence minus cosine to the − sentence (the encoder's own verdict)."""
    import torch.nn.functional as F

    phi = F.normalize(encoder.encode_image(img), dim=-1)
    pos = F.normalize(encoder.encode_text([PAIRS[p][0] for p in pairs]), dim=-1)
    neg = F.normalize(encoder.encode_text([PAIRS[p][1] for p in pairs]), dim=-1)
    return (phi @ pos.T - phi @ neg.T).numpy()


def evaluate(args, gen, libs: dict, pairs: list[str]) -> int:
    import torch

    from stylestudio.engine.attributes.predictor import to_uint8
    from stylestudio.engine.directions.labels import sample_w
    from stylestudio.engine.text.encoders import load_encoder

    k, n = (int(x) for x in args.shard.split("/"))
    meter, arms = Meter(gen, args.lpips_size), Arms(gen, libs)
    cal = calibrate(args, gen, libs, arms, pairs, meter)
    encoder = load_encoder("minilm")
    ts = np.linspace(-1.0, 1.0, args.points)
    mine = np.arange(k, args.faces, n)
    w_all = sample_w(gen, args.faces, EVAL_SEED, PSI)
    shape = (len(mine), len(pairs), len(ARMS), args.points)
    file = args.raw / f"shard-{k}of{n}.npz"
    key = json.dumps({**cal["key"], "faces_calib": args.calib_faces, "faces": args.faces, "points": args.points,
                      "lpips": args.lpips_size})
    A = len(meter.names)
    data = {"attrs": np.full(shape + (A,), np.nan, np.float32), "ident": np.full(shape, np.nan, np.float32),
            "lpips": np.full(shape[:-1] + (args.points - 1,), np.nan, np.float32),
            "zero_shot": np.full((len(mine), len(pairs)), np.nan, np.float32), "done": np.zeros(len(mine), bool)}
    if file.is_file():
        old = np.load(file)
        if str(old["key"]) == key:
            data = {x: old[x].copy() for x in data}
            print(f"shard {k}/{n}: resuming, {int(data['done'].sum())} of {len(mine)} faces done")
    ws_one = gen.broadcast_w(torch.from_numpy(w_all[:1]))
    anchor = best_of(lambda: meter.render(ws_one), 3)
    print(f"shard {k}/{n}: {len(mine)} held-out faces (seed {EVAL_SEED}), {args.points} points, anchor: one 256-px "
          f"preview render {anchor:.3f} s, load average {load_average()}", flush=True)
    t0, done0 = time.time(), int(data["done"].sum())
    grid_faces, grid_rows = [int(x) for x in args.grid_faces.split(",") if x.strip()], {}
    for start in range(0, len(mine), args.batch_faces):
        sel = np.arange(start, min(start + args.batch_faces, len(mine)))
        sel = sel[~data["done"][sel]]
        if not len(sel):
            continue
        ws = gen.broadcast_w(torch.from_numpy(w_all[mine[sel]]))
        base = meter(ws)
        data["zero_shot"][sel] = zero_shot(encoder, pairs, base["img"])
        for pi, p in enumerate(pairs):
            for ai, arm in enumerate(ARMS):
                amounts = [t * cal["pairs"][p][arm]["-" if t < 0 else "+"] for t in ts]
                feats, imgs = [], []
                for j, a in enumerate(amounts):
                    r = base if a == 0 else meter(arms.move(arm, p, ws, a))
                    data["attrs"][sel, pi, ai, j] = r["attrs"]
                    data["ident"][sel, pi, ai, j] = meter.identity_drift(r["emb"], base["emb"])
                    feats.append(r["feats"])
                    imgs.append(r["img"])
                for j in range(args.points - 1):
                    data["lpips"][sel, pi, ai, j] = meter.lpips_between(feats[j], feats[j + 1])
                for f in set(grid_faces) & set(mine[sel].tolist()):
                    i = mine[sel].tolist().index(f)
                    grid_rows[f"{f}/{p}/{arm}"] = np.stack([to_uint8(im[i:i + 1])[0] for im in imgs])
        if grid_rows:
            save_npz(args.raw / f"grid-{k}of{n}.npz", **grid_rows)
        data["done"][sel] = True
        save_npz(file, key=np.array(key), faces=mine, **data)
        got = int(data["done"].sum()) - done0
        per = (time.time() - t0) / got
        print(f"shard {k}/{n}: {int(data['done'].sum())}/{len(mine)} faces, {per:.1f} s a face "
              f"({per / anchor:.0f}× the anchor render), load average {load_average()}", flush=True)
    return 0



# ---- 4. the table and the grid --------------------------------------------------------------------

def spearman_rows(ts: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per row of y [F, P] Spearman ρ against ts (NaN where a point is missing or y is constant)."""
    from scipy.stats import spearmanr

    out = np.full(len(y), np.nan)
    for i, row in enumerate(y):
        if np.isfinite(row).all() and np.ptp(row) > 0:
            out[i] = spearmanr(ts, row).statistic
    return out


def paired(a: np.ndarray, b: np.ndarray) -> str:
    """Mean of a − b over faces with both, ± 2 standard errors."""
    d = (a - b)[np.isfinite(a) & np.isfinite(b)]
    if len(d) < 2:
        return "n/a"
    return f"{d.mean():+.3f} ± {2 * d.std(ddof=1) / math.sqrt(len(d)):.3f}"


def attribute_units(names: list[str], base: np.ndarray) -> np.ndarray:
    """Each attribute's slider unit (half its spread over faces): the shipped library's where it
    has the attribute (2999 faces), else half the spread of these faces at the start."""
    from stylestudio.engine.directions.library import DirectionLibrary
    from stylestudio.engine.model_store import DEFAULT_MODEL
    from stylestudio.engine.resources import Resources

    lib = DirectionLibrary.load(Resources(None, DEFAULT_MODEL).find_file("directions", f"{SLIDER_LIBRARY}.ssdir"))
    return np.array([float(lib[a].meta["unit_change"]) if a in lib and "unit_change" in lib[a].meta
                     else float(np.nanstd(base[:, i])) / 2 for i, a in enumerate(names)])


def report(args, pairs: list[str]) -> int:
    from stylestudio.engine.attributes.predictor import ATTRIBUTES
    from stylestudio.engine.model_store import DEFAULT_MODEL
    from stylestudio.engine.text.face_captions import THRESHOLDS
    from stylestudio.engine.text.library import TextPathLibrary, library_file

    shards = sorted(args.raw.glob("shard-*.npz"))
    parts = [np.load(f) for f in shards]
    keys = {str(x["key"]) for x in parts}
    if len(keys) != 1:
        raise SystemExit(f"{args.raw}: shards from different runs ({len(keys)} settings); delete the old ones")
    data = {k: np.concatenate([x[k][x["done"]] for x in parts]) for k in ("attrs", "ident", "lpips", "zero_shot", "faces")}
    key = json.loads(keys.pop())
    pairs = key["pairs"]
    cal = {"pairs": {p: json.loads((args.raw / f"calibration-{p}.json").read_text())["entry"] for p in pairs}}
    names = list(ATTRIBUTES)
    points = data["attrs"].shape[3]
    ts = np.linspace(-1.0, 1.0, points)
    mid = points // 2
    nf = len(data["faces"])
    print(f"model {DEFAULT_MODEL}, encoder minilm; {nf} held-out faces (seed {EVAL_SEED}, ψ {PSI}) of {key['faces']} "
          f"asked, {points} points from −1 to +1 matched units; calibration on {key['faces_calib']} other faces "
          f"(seed {CALIB_SEED}); load average now {load_average()}\n")

    print("training (each arm: all pairs in one run, same steps, batch, lr, seed and training faces)")
    for m in METHODS:
        lib = TextPathLibrary.load(library_file(DEFAULT_MODEL, library_name(m)))
        mt = lib.meta
        per_step = mt["seconds"] / max(mt["steps"], 1)
        print(f"  {ARM_LABEL[m]:15s} {mt['steps']} steps × batch {mt['batch']}: {mt['seconds']:.0f} s = "
              f"{mt['seconds'] / len(lib.paths):.0f} s per pair; {per_step:.1f} s a step = "
              f"{per_step / mt.get('anchor_seconds', math.nan):.1f}× its anchor ({mt.get('anchor', '?')}: "
              f"{mt.get('anchor_seconds', math.nan):.2f} s); loss {mt['eval_loss_start']:.3f} → {mt['eval_loss_end']:.3f}; "
              f"load average {mt.get('load_average', '?')}")

    print("\nmatched amounts (calibration faces): the shipped slider's mean target change at −1 / +1, and each arm's "
          "amount (its own slider units) with the same mean change; * = not reached at ±3, capped")
    for p in pairs:
        c = cal["pairs"][p]
        print(f"  {p:7s} slider {c['slider_change']['-']:+.2f} / {c['slider_change']['+']:+.2f} "
              f"{ATTRIBUTES[PAIRS[p][2]].unit}: " + "; ".join(
                  f"{ARM_LABEL[m]} −{c[m]['-']:.2f}{'' if c['reached'][m]['-'] else '*'} / "
                  f"+{c[m]['+']:.2f}{'' if c['reached'][m]['+'] else '*'}" for m in METHODS))

    units = attribute_units(names, data["attrs"][:, 0, 0, mid])
    rows, per_arm = [], {a: {"rho": [], "id": [], "other": [], "ratio": []} for a in ARMS}
    raw = {}
    for pi, p in enumerate(pairs):
        ti = names.index(PAIRS[p][2])
        others = [i for i in range(len(names)) if i != ti]
        for ai, arm in enumerate(ARMS):
            y = data["attrs"][:, pi, ai]  # [F, P, A]
            ok = np.isfinite(y[:, :, ti]).all(1)
            rho = spearman_rows(ts, y[:, :, ti])
            ident = np.nanmean(data["ident"][:, pi, ai][:, [0, -1]], 1)
            change = np.abs(y[:, -1, others] - y[:, 0, others]) / units[others]  # [F, others]
            other = np.nanmean(change, 1)
            worst = int(np.nanargmax(np.nanmean(change, 0)))
            lp = data["lpips"][:, pi, ai]
            ratio = lp.max(1) / np.maximum(lp.mean(1), 1e-12)
            raw[(p, arm)] = {"rho": rho, "id": ident, "ratio": ratio}
            rows.append((p, ARM_LABEL[arm], int(ok.sum()), nanmean(y[ok, -1, ti] - y[ok, 0, ti]), nanmean(rho),
                         nanmean(rho > 0.99), nanmean(ident), nanmean(other), names[others[worst]],
                         nanmean(change[:, worst]), nanmean(ratio), nanmean(lp.sum(1))))
            for k, v in (("rho", rho), ("id", ident), ("other", other), ("ratio", ratio)):
                per_arm[arm][k].append(nanmean(v))
    print("\n| path | arm | faces | target −1→+1 | Spearman ρ | ρ = 1 | identity drift | other attrs | largest other "
          "| LPIPS step max/mean | LPIPS length |\n|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]:+.2f} | {r[4]:+.3f} | {100 * r[5]:.0f} % | {r[6]:.3f} | {r[7]:.2f} | "
              f"{r[8]} {r[9]:.2f} | {r[10]:.2f} | {r[11]:.3f} |")
    print(f"\nmean over the {len(pairs)} paths\n\n| arm | Spearman ρ | identity drift | other attrs | LPIPS step max/mean |\n"
          "|---|---|---|---|---|")
    for a in ARMS:
        print(f"| {ARM_LABEL[a]} | {np.mean(per_arm[a]['rho']):+.3f} | {np.mean(per_arm[a]['id']):.3f} | "
              f"{np.mean(per_arm[a]['other']):.2f} | {np.mean(per_arm[a]['ratio']):.2f} |")

    print("\nthe issue's goal, ContraCLIP − linear per face (mean ± 2 standard errors; ρ: higher is better, "
          "identity drift and LPIPS ratio: lower is better)")
    for p in pairs:
        c, lin = raw[(p, "contraclip")], raw[(p, "linear")]
        print(f"  {p:7s} Δρ {paired(c['rho'], lin['rho'])}   Δidentity drift {paired(c['id'], lin['id'])}   "
              f"ΔLPIPS ratio {paired(c['ratio'], lin['ratio'])}")

    facts = {"smile": ("smiling", "neutral"), "age": ("old", "young"), "gender": ("female", "male")}
    print("\nthe encoder on these held-out faces (start faces): + sentence nearer than − sentence, on faces the "
          "predictors put clearly on one side (the captions' thresholds); full figures: bench/face_text_encoder.py")
    base = data["attrs"][:, 0, 0, mid]
    for pi, p in enumerate(pairs):
        pos_f, neg_f = facts[p]
        col = names.index(PAIRS[p][2])
        v = base[:, col]
        _, op_p, th_p = THRESHOLDS[pos_f]
        _, op_n, th_n = THRESHOLDS[neg_f]
        with np.errstate(invalid="ignore"):
            pos = (v > th_p) if op_p == ">" else (v < th_p)
            neg = (v > th_n) if op_n == ">" else (v < th_n)
        zs = data["zero_shot"][:, pi]
        acc = (np.sum(zs[pos] > 0) + np.sum(zs[neg] < 0)) / max(int(pos.sum() + neg.sum()), 1)
        print(f"  {p:7s} \"{PAIRS[p][0]}\" vs \"{PAIRS[p][1]}\": {100 * acc:.1f} % of {int(pos.sum() + neg.sum())} faces")
    grids = sorted(args.raw.glob("grid-*.npz"))
    if grids:
        save_grid(grids, pairs, ts, args.grid)
    return 0


def save_grid(files: list[Path], pairs: list[str], ts: np.ndarray, out: Path) -> None:
    """Rows (path, arm), columns −1 … +1 matched units of each shown held-out face."""
    from PIL import Image, ImageDraw

    g = {}
    for f in files:
        with np.load(f) as z:
            g.update({k: z[k] for k in z.files})
    faces = sorted({int(k.split("/")[0]) for k in g})
    thumb, label_w, gap = 96, 100, 8
    rows = [(p, a) for p in pairs for a in ARMS]
    width = label_w + len(faces) * (thumb * len(ts) + gap)
    canvas = Image.new("RGB", (width, 18 + thumb * len(rows)), "white")
    draw = ImageDraw.Draw(canvas)
    for fi in range(len(faces)):
        for j, t in enumerate(ts):
            draw.text((label_w + fi * (thumb * len(ts) + gap) + j * thumb + thumb // 2 - 12, 3), f"{t:+.2f}", fill="black")
    for r, (p, a) in enumerate(rows):
        y = 18 + r * thumb
        draw.text((6, y + thumb // 2 - 12), f"{p}\n{ARM_LABEL[a]}", fill="black")
        for fi, face in enumerate(faces):
            for j, im in enumerate(g.get(f"{face}/{p}/{a}", [])):
                canvas.paste(Image.fromarray(im).resize((thumb, thumb), Image.LANCZOS),
                             (label_w + fi * (thumb * len(ts) + gap) + j * thumb, y))
    canvas.quantize(256).save(out, optimize=True)  # a palette keeps the figure small in the repository
    print(f"\nfigure: {out} (rows: path × arm, columns: −1 … +1 matched units of held-out faces {faces})")


# ---- main -----------------------------------------------------------------------------------------

def use_methods(methods: list[str]) -> None:
    """Compare only these arms (``--methods``), in the usual order; the shipped slider always."""
    global METHODS, ARMS
    METHODS = tuple(m for m in METHODS if m in methods)
    ARMS = METHODS + ("slider",)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", default="smile,age,gender", help=f"comma-separated, of {', '.join(PAIRS)}")
    ap.add_argument("--steps", type=int, default=40, help="training steps of every arm")
    ap.add_argument("--batch", type=int, default=8, help="training batch of every arm")
    ap.add_argument("--methods", default=",".join(METHODS),
                    help="the arms to train (with --train-only) or to compare (then contraclip and linear at least; "
                         "the shipped slider always): a run whose StyleCLIP-like arm is not wanted need not train it")
    ap.add_argument("--reuse", action="store_true", help="load an arm's library when it exists with the same budget")
    ap.add_argument("--train-only", action="store_true")
    ap.add_argument("--faces", type=int, default=200, help="held-out faces to evaluate")
    ap.add_argument("--calib-faces", type=int, default=10, help="calibration faces (their own seed)")
    ap.add_argument("--points", type=int, default=5, help="points along each path, −1 … +1 matched units")
    ap.add_argument("--shard", default="0/1", help="K/N: evaluate faces K, K+N, K+2N, …")
    ap.add_argument("--report", action="store_true", help="only print the table from the saved shards")
    ap.add_argument("--raw", type=Path, default=Path("/tmp/textpaths_quality"), help="calibration and shard results")
    ap.add_argument("--lpips-size", type=int, default=128, help="side the LPIPS step distance is taken at")
    ap.add_argument("--batch-faces", type=int, default=8, help="faces rendered together in the evaluation")
    ap.add_argument("--grid", type=Path, default=REPO / "docs" / "textpaths_grid.png")
    ap.add_argument("--grid-faces", default="0,1", help="the held-out faces shown in the grid")
    ap.add_argument("--calibrate-only", default=None, metavar="PAIRS",
                    help="calibrate these of the libraries' pairs and stop (to calibrate pairs in parallel)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--prefix", default="quality", help="the arms' libraries are <prefix>-<method>")
    ap.add_argument("--rows", type=int, default=None,
                    help="every arm moves W+ rows 0…N−1 (default: the first two thirds; `textpaths train --rows`)")
    ap.add_argument("--eval-pairs", default=None,
                    help="calibrate, evaluate and report only these of the trained --pairs (default: all)")
    args = ap.parse_args()
    PREFIX[0] = args.prefix
    if args.report:
        use_methods([m.strip() for m in args.methods.split(",") if m.strip() in METHODS])
    trained = [p.strip() for p in args.pairs.split(",") if p.strip()]
    if not trained or any(p not in PAIRS for p in trained):
        raise SystemExit(f"--pairs: choose from {', '.join(PAIRS)}")
    pairs = [p.strip() for p in args.eval_pairs.split(",")] if args.eval_pairs else trained
    if any(p not in trained for p in pairs):
        raise SystemExit("--eval-pairs: choose from the trained --pairs")

    import torch

    from stylestudio.engine.model_store import DEFAULT_MODEL, ModelStore
    from stylestudio.engine.text.encoders import load_encoder

    torch.set_num_threads(args.threads)
    args.raw.mkdir(parents=True, exist_ok=True)
    if args.report:
        return report(args, pairs)
    gen = ModelStore().load(DEFAULT_MODEL, device="cpu")
    encoder = load_encoder("minilm")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if any(m not in METHODS for m in methods) or not (args.train_only or {"contraclip", "linear"} <= set(methods)):
        raise SystemExit(f"--methods: choose from {', '.join(METHODS)} (to compare: contraclip and linear at least)")
    use_methods(methods)
    libs = {m: train_arm(gen, encoder, m, trained, args.steps, args.batch, args.reuse, args.rows)
            for m in methods}
    if args.train_only:
        return 0
    torch.set_grad_enabled(False)
    if args.calibrate_only:
        calibrate(args, gen, libs, Arms(gen, libs), args.calibrate_only.split(","), Meter(gen, args.lpips_size))
        return 0
    return evaluate(args, gen, libs, pairs)


if __name__ == "__main__":
    raise SystemExit(main())
