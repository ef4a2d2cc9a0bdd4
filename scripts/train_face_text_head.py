"""Train the built-in text encoder's image side (resources/textencoder/minilm-face-head.pt).

    python scripts/train_face_text_head.py extract --cache /tmp/fth/cache [--minutes 40]
    python scripts/train_face_text_head.py train --cache /tmp/fth/cache [-o resources/textencoder/minilm-face-head.pt]

``extract`` renders faces of the default model at a 256-px preview, labels them with the
project's attribute predictors (dlib landmarks → age, gender, expression, pose, openness, hair
and skin lightness) and stores the frozen face features of :mod:`stylestudio.engine.text.face_head`
in chunks of 100 faces (it can be stopped and resumed; every 5th chunk is the held-out split
the training never reads). ``train`` writes captions for every face in varied wordings
(:mod:`stylestudio.engine.text.face_captions`; some wordings are held out for the paraphrase
test), embeds them once with the frozen MiniLM, and trains the head with symmetric InfoNCE —
seconds on cached features. bench/face_text_encoder.py measures the result.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import stylestudio  # noqa: E402,F401  (first: it sets the OpenMP wait policy before torch loads)

CHUNK = 100
SEED0 = 7000


def is_heldout(chunk: int) -> bool:
    return chunk % 5 == 4


def chunk_psi(chunk: int) -> float:
    return (0.7, 0.85, 1.0)[chunk % 3]


def mean_landmarks(gen, pred, stop, n: int = 64) -> np.ndarray:
    import torch

    from stylestudio.engine.directions.labels import render_small, sample_w

    w = sample_w(gen, n, SEED0 - 1, 0.7)
    lm = pred.landmarks(torch.cat([render_small(gen, torch.from_numpy(w[i:i + 1]), stop) for i in range(n)]))
    return (np.nanmean(lm, 0) / 256.0).astype(np.float32)


def extract(args: argparse.Namespace) -> int:
    import torch

    from stylestudio.engine.attributes import AttributePredictor
    from stylestudio.engine.attributes.networks import EMOTIONS
    from stylestudio.engine.directions.labels import preview_stop, render_small, sample_w
    from stylestudio.engine.model_store import ModelStore
    from stylestudio.engine.text.face_head import FaceFeatures

    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    gen = ModelStore().load(device="cpu")
    pred = AttributePredictor()
    stop = preview_stop(gen, 256)
    tpl_file = cache / "template.npy"
    if not tpl_file.is_file():
        np.save(tpl_file, mean_landmarks(gen, pred, stop))
    feats = FaceFeatures(torch.from_numpy(np.load(tpl_file)))
    t_end = time.time() + args.minutes * 60
    chunk = args.start
    while time.time() < t_end and chunk < args.max_chunks:
        out = cache / f"chunk{chunk:04d}.npz"
        if out.is_file():
            chunk += 1
            continue
        t0 = time.time()
        w = sample_w(gen, CHUNK, SEED0 + chunk, chunk_psi(chunk))
        rows = {k: [] for k in ("features", "thumb", "emotion", *pred.names)}
        for i in range(0, CHUNK, 10):
            img = torch.cat([render_small(gen, torch.from_numpy(w[j:j + 1]), stop) for j in range(i, i + 10)])
            lm = pred.landmarks(img)
            m = pred.measure(img, lm)
            ok = ~np.isnan(lm).any(axis=(1, 2))
            emo = np.full((10, len(EMOTIONS)), np.nan, np.float32)
            if ok.any():
                emo[ok] = pred.emotion(img[ok], torch.from_numpy(lm[ok])).numpy()
            rows["emotion"].append(emo)
            rows["features"].append(feats(img).numpy())
            rows["thumb"].append(((torch.nn.functional.interpolate(img, size=(64, 64), mode="area") + 1) * 127.5)
                                 .round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy())
            for k in pred.names:
                rows[k].append(m[k])
        data = {k: np.concatenate(v) for k, v in rows.items()}
        tmp = cache / f".chunk{chunk:04d}.tmp.npz"
        np.savez_compressed(tmp, w=w, psi=np.float32(chunk_psi(chunk)), seed=np.int64(SEED0 + chunk), **data)
        tmp.rename(out)
        print(f"chunk {chunk} ({'held out' if is_heldout(chunk) else 'train'}): {CHUNK} faces in "
              f"{time.time() - t0:.0f} s", flush=True)
        chunk += 1
    return 0


def load_cache(cache: Path, heldout: bool) -> dict[str, np.ndarray]:
    parts = []
    for f in sorted(Path(cache).glob("chunk*.npz")):
        if is_heldout(int(f.stem[5:])) == heldout:
            with np.load(f) as d:
                part = {k: d[k] for k in d.files if d[k].ndim >= 1}
                part["chunk"] = np.full(len(part["age"]), int(f.stem[5:]))
                parts.append(part)
    if not parts:
        raise SystemExit(f"no {'held-out' if heldout else 'training'} chunks in {cache}")
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


PAIRS = [("old", "young"), ("female", "male"), ("smiling", "neutral"), ("turned_left", "turned_right"),
         ("mouth_open", "mouth_closed"), ("eyes_wide", "eyes_narrow"), ("light_hair", "dark_hair"),
         ("light_skin", "dark_skin")]


def zero_shot(head, train_data: dict[str, np.ndarray], data: dict[str, np.ndarray]) -> float:
    """Mean over :data:`PAIRS` of the share of faces whose nearer prompt agrees with their labels."""
    import torch
    import torch.nn.functional as F

    from stylestudio.engine.text.face_captions import fact_masks, prompt
    from stylestudio.engine.text.minilm import minilm_text

    _, cuts = fact_masks(train_data)
    masks, _ = fact_masks(data, cuts)
    with torch.no_grad():
        img = F.normalize(head(torch.from_numpy(data["features"]).float()), dim=-1)
        accs = []
        for a, b in PAIRS:
            sel = masks[a] | masks[b]
            t = F.normalize(minilm_text().encode_text([prompt(a), prompt(b)]), dim=-1)
            pick_a = (img[torch.from_numpy(sel)] @ t.T).argmax(1).numpy() == 0
            accs.append(float((pick_a == masks[a][sel]).mean()))
    return float(np.mean(accs))


def embed_captions(texts: list[str], cache_file: Path):
    """Frozen MiniLM embeddings of ``texts``, reusing those of earlier runs (caption → vector)."""
    import torch

    from stylestudio.engine.text.minilm import minilm_text

    known = torch.load(cache_file, weights_only=True) if cache_file.is_file() else {}
    todo = [t for t in texts if t not in known]
    for i in range(0, len(todo), 256):
        for t, e in zip(todo[i:i + 256], minilm_text().encode_text(todo[i:i + 256])):
            known[t] = e.clone()
    if todo:
        torch.save(known, cache_file)
    return torch.stack([known[t] for t in texts])


def train(args: argparse.Namespace) -> int:
    import torch

    from stylestudio.engine.text.face_captions import caption_table
    from stylestudio.engine.text.face_head import FaceHead, save_head, train_head

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data = load_cache(Path(args.cache), heldout=False)
    ok = np.isfinite(data["age"])
    data = {k: v[ok] for k, v in data.items()}
    val = None
    if args.validate:  # choose settings on part of the training split; the held-out split stays unseen
        is_val = (data["chunk"] % 5) == 3
        val = {k: v[is_val] for k, v in data.items()}
        data = {k: v[~is_val] for k, v in data.items()}
    n = len(data["age"])
    t0 = time.time()
    texts, caps = caption_table(data, per_face=args.captions, seed=args.seed, heldout_wordings=False)
    text_emb = embed_captions(texts, Path(args.cache) / "captions.pt")
    print(f"{n} training faces, {len(texts)} distinct captions embedded in {time.time() - t0:.0f} s", flush=True)
    feats = torch.from_numpy(data["features"]).float()
    head = FaceHead(feats.shape[1], 384, args.hidden, args.dropout)
    head.set_standardisation(feats)
    t0 = time.time()
    losses = train_head(head, feats, torch.from_numpy(caps), text_emb, epochs=args.epochs, batch=args.batch,
                        lr=args.lr, weight_decay=args.weight_decay, seed=args.seed)
    print(f"trained {args.epochs} epochs in {time.time() - t0:.0f} s: loss {losses[0]:.3f} → {losses[-1]:.3f}",
          flush=True)
    if val is not None:
        print(f"validation zero-shot accuracy {100 * zero_shot(head, data, val):.1f}% (training wordings)")
        return 0
    template = torch.from_numpy(np.load(Path(args.cache) / "template.npy"))
    meta = {"faces": n, "captions": len(texts), "epochs": args.epochs, "lr": args.lr, "batch": args.batch,
            "hidden": args.hidden, "seed": args.seed, "generator": "mobilestylegan-ffhq (default model)",
            "text": "all-MiniLM-L6-v2 (frozen)", "script": "scripts/train_face_text_head.py"}
    save_head(Path(args.output), head, template, meta)
    print(f"→ {args.output} ({Path(args.output).stat().st_size / 1e6:.1f} MB)")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("extract")
    e.add_argument("--cache", default="/tmp/fth/cache")
    e.add_argument("--minutes", type=float, default=40)
    e.add_argument("--max-chunks", type=int, default=500, help="stop before this chunk index")
    e.add_argument("--start", type=int, default=0,
                   help="first chunk index (two processes can share the work: --start 0 --max-chunks 100 "
                        "and --start 100 --max-chunks 200)")
    e.add_argument("--threads", type=int, default=1)
    e.set_defaults(func=extract)
    t = sub.add_parser("train")
    t.add_argument("--cache", default="/tmp/fth/cache")
    t.add_argument("-o", "--output", default=str(REPO / "resources" / "textencoder" / "minilm-face-head.pt"))
    t.add_argument("--captions", type=int, default=8, help="captions written per face")
    t.add_argument("--epochs", type=int, default=60)
    t.add_argument("--batch", type=int, default=256)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--weight-decay", type=float, default=0.05)
    t.add_argument("--hidden", type=int, default=512)
    t.add_argument("--dropout", type=float, default=0.1)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--validate", action="store_true",
                   help="train on 3 of the 4 training chunks in 5 and print zero-shot accuracy on the 4th; save nothing")
    t.set_defaults(func=train)
    args = ap.parse_args()
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
