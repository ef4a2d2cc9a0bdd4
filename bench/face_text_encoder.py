"""The built-in text encoder's limits, measured on held-out generated faces (docs/textpaths.md).

    python bench/face_text_encoder.py --cache /tmp/fth/cache [--head resources/textencoder/minilm-face-head.pt]

The cache is what ``scripts/train_face_text_head.py extract`` wrote; only its held-out chunks
(every 5th, never read by the training) are used. Prints

- zero-shot accuracy: for each pair of opposite facts ("an old person" / "a young person"), the
  held-out faces the predictors put clearly on one side, classified by which prompt is nearer
  (cosine), with the training wording and with a wording and template training never saw;
- retrieval on held-out captions: text → face recall@K (the caption's own face among all
  held-out faces) and label precision@K (top-K faces whose labels agree with every fact the
  caption states), with training and held-out wordings;
- what it cannot know: prompts about beards, glasses, hats, make-up (no predictor labels them):
  how the faces split, and how much of that split a labelled attribute (gender, age) explains;
- speed: ``encode_image`` per face against rendering the 256-px preview (the anchor), same run.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))
import stylestudio  # noqa: E402,F401  (first: it sets the OpenMP wait policy before torch loads)

PAIRS = [("old", "young"), ("female", "male"), ("smiling", "neutral"), ("turned_left", "turned_right"),
         ("mouth_open", "mouth_closed"), ("eyes_wide", "eyes_narrow"), ("light_hair", "dark_hair"),
         ("light_skin", "dark_skin"), ("child", "old")]
UNKNOWABLE = [("a man with a beard", "a man without a beard"), ("a person wearing glasses", "a person without glasses"),
              ("a person wearing a hat", "a person without a hat"), ("a woman wearing make-up", "a woman without make-up"),
              ("a person with long hair", "a person with short hair")]


def main() -> int:
    import torch
    import torch.nn.functional as F

    from stylestudio.engine.text.face_captions import FACTS, fact_masks, prompt, sentence
    from stylestudio.engine.text.face_head import head_file, read_head
    from stylestudio.engine.text.minilm import minilm_text
    from train_face_text_head import load_cache

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", default="/tmp/fth/cache")
    ap.add_argument("--head", type=Path, default=None)
    ap.add_argument("--speed-faces", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    head, _, meta = read_head(args.head or head_file())
    train = load_cache(Path(args.cache), heldout=False)
    data = load_cache(Path(args.cache), heldout=True)
    ok = np.isfinite(data["age"])
    data = {k: v[ok] for k, v in data.items()}
    n = len(data["age"])
    _, cuts = fact_masks({k: v[np.isfinite(train["age"])] for k, v in train.items()})
    masks, _ = fact_masks(data, cuts)
    img = F.normalize(head(torch.from_numpy(data["features"]).float()), dim=-1)
    text = minilm_text()

    def emb(texts):
        return F.normalize(torch.cat([text.encode_text(texts[i:i + 256]) for i in range(0, len(texts), 256)]), dim=-1)

    print(f"head trained on {meta.get('faces')} faces ({meta.get('captions')} captions); "
          f"{n} held-out faces (face detected), default model")
    print("\nzero-shot accuracy (held-out faces clearly on one side; chance 50 %)")
    print(f"{'pair':34s} {'faces':>6s} {'train wording':>14s} {'unseen wording':>15s}")
    accs = {}
    for a, b in PAIRS:
        sel = masks[a] | masks[b]
        if sel.sum() < 10:
            print(f"{a + ' / ' + b:34s} {int(sel.sum()):6d}  (too few faces labelled)")
            continue
        truth = masks[a][sel]
        row = []
        for heldout in (False, True):
            t = emb([prompt(a, heldout), prompt(b, heldout)])
            pick_a = (img[torch.from_numpy(sel)] @ t.T).argmax(1).numpy() == 0
            row.append(float((pick_a == truth).mean()))
        accs[(a, b)] = row
        print(f"{a + ' / ' + b:34s} {int(sel.sum()):6d} {100 * row[0]:13.1f}% {100 * row[1]:14.1f}%")
    mean = np.mean(list(accs.values()), 0)
    print(f"{'mean':34s} {'':6s} {100 * mean[0]:13.1f}% {100 * mean[1]:14.1f}%")
    print("  e.g. prompts:", repr(prompt("old")), "vs", repr(prompt("young")), "| unseen:", repr(prompt("old", True)))

    print("\nretrieval, text → face, one caption per held-out face (2–4 facts each)")
    names = list(masks)
    m = np.stack([masks[f] for f in names], 1)
    for heldout in (False, True):
        rng = np.random.RandomState(1)
        caps, facts, faces = [], [], []
        for i in range(n):
            have = [names[j] for j in np.flatnonzero(m[i])]
            if len(have) < 2:
                continue
            keep = list(rng.choice(have, size=min(len(have), rng.randint(2, 5)), replace=False))
            caps.append(sentence(keep, rng, heldout))
            facts.append(keep)
            faces.append(i)
        sims = emb(caps) @ img.T  # [captions, faces]
        order = sims.argsort(1, descending=True).numpy()
        faces = np.array(faces)
        line = []
        for k in (1, 5, 10):
            recall = float(np.mean([faces[c] in order[c, :k] for c in range(len(caps))]))
            prec = float(np.mean([m[order[c, :k]][:, [names.index(f) for f in facts[c]]].all(1).mean()
                                  for c in range(len(caps))]))
            base = float(np.mean([m[:, [names.index(f) for f in facts[c]]].all(1).mean() for c in range(len(caps))]))
            line.append(f"R@{k} {100 * recall:5.1f}% (chance {100 * k / n:4.1f}%)  "
                        f"P@{k} {100 * prec:5.1f}% (chance {100 * base:4.1f}%)")
        print(f"  {'unseen' if heldout else 'training'} wordings, {len(caps)} captions, e.g. {caps[0]!r}")
        for s in line:
            print("    " + s)

    print("\nwhat it cannot know (no predictor labels these): how the held-out faces split, and the split's")
    print("correlation with labels it does know (a high |r| = it answers with a proxy)")
    g = data["gender"]
    age = data["age"]
    for a, b in UNKNOWABLE:
        t = emb([a, b])
        margin = (img @ t.T).numpy()
        d = margin[:, 0] - margin[:, 1]
        r_g = float(np.corrcoef(d, -g)[0, 1])
        r_a = float(np.corrcoef(d, age)[0, 1])
        print(f"  {a!r:34s} chosen for {100 * (d > 0).mean():5.1f}% of faces; "
              f"r with maleness {r_g:+.2f}, with age {r_a:+.2f}")
    print("  (facts labelled: " + ", ".join(FACTS) + ")")

    print("\nspeed (1 thread)")
    from stylestudio.engine.directions.labels import preview_stop, render_small, sample_w
    from stylestudio.engine.model_store import ModelStore
    from stylestudio.engine.text.encoders import load_encoder

    gen = ModelStore().load(device="cpu")
    stop = preview_stop(gen, 256)
    w = torch.from_numpy(sample_w(gen, args.speed_faces, 99, 0.7))
    enc = load_encoder("minilm")
    render_small(gen, w[:1], stop)
    enc.encode_image(render_small(gen, w[:1], stop))
    t0 = time.perf_counter()
    imgs = render_small(gen, w, stop)
    t_render = (time.perf_counter() - t0) / len(w)
    t0 = time.perf_counter()
    enc.encode_image(imgs)
    t_enc = (time.perf_counter() - t0) / len(w)
    x = imgs[:2].clone().requires_grad_(True)
    with torch.enable_grad():
        t0 = time.perf_counter()
        enc.encode_image(x).sum().backward()
        t_back = (time.perf_counter() - t0) / 2
    print(f"  anchor: render 256-px preview {1000 * t_render:.0f} ms/face")
    print(f"  encode_image {1000 * t_enc:.0f} ms/face ({t_enc / t_render:.2f}× the render); "
          f"forward+backward {1000 * t_back:.0f} ms/face ({t_back / t_render:.2f}×)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
