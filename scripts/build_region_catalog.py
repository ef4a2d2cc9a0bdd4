"""Build the region catalog shipped for a model, name its clusters, and draw maps to check them.

    python scripts/build_region_catalog.py                     # the default model → resources/
    python scripts/build_region_catalog.py --maps /tmp/maps     # + cluster maps of a few faces
    python scripts/build_region_catalog.py --names-only         # re-apply NAMES to the built one
    python scripts/build_region_catalog.py --effects-only       # (re)measure the pixel-effect matrices

Naming was done by hand: build, look at the maps (``--maps``: each face beside its cluster map,
cluster numbers written at each cluster's centre), write down what every cluster covers in
:data:`NAMES`, re-run with ``--names-only``. The build is deterministic for a given model,
settings and library versions (seeded sampling, seeded k-means, clusters numbered by area), so
the numbers in NAMES belong to exactly the settings in :data:`SETTINGS`. For another generator,
build with ``stylestudio catalog build --model NAME`` and name with ``stylestudio catalog label``.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import stylestudio  # noqa: E402,F401  (first: it sets the OpenMP wait policy before torch loads)
import torch  # noqa: E402

from stylestudio.engine.regions.builder import build_catalog  # noqa: E402
from stylestudio.engine.regions.catalog import Catalog  # noqa: E402
from stylestudio.engine.regions.effects import measure_effects  # noqa: E402

#: Build settings per model (what the shipped catalog was made with).
SETTINGS: dict[str, dict] = {
    "mobilestylegan-ffhq": dict(k=26, layer="b32.conv2", samples=300, fit_samples=120, psi=0.7, seed=0, batch=4),
}

#: Pixel-effect measurement per model (regions.effects): faces, sign probes per cluster, and the
#: preview stage the image is taken at (MobileStyleGAN's 256-px preview).
EFFECTS: dict[str, dict] = {
    "mobilestylegan-ffhq": dict(samples=32, probes=2, stop_resolution=128, psi=0.7, seed=0),
}

#: Region name → cluster numbers, per model, written after looking at the maps.
NAMES: dict[str, dict[str, list[int]]] = {
    # From the maps of seeds 1–8 and the mean membership of each cluster over 24 faces (where on
    # the picture each cluster lives): 23 both eyes, 25 the brows, 22 lips and mouth, 5 the nose
    # with the skin just under the eyes and above the lip, 6 the forehead, 4/7/15 the cheeks and
    # chin, 24 the ears, 16/14 the neck, 9/21 the clothes, 0/1/2/3/19 the background, and the
    # hair split by where it grows: 11 crown, 20 fringe, 10/12 the two sides on top, 17/18 the
    # outline, 8/13 long hair below the ears.
    "mobilestylegan-ffhq": {
        "eyes": [23],
        "eyebrows": [25],
        "nose": [5],
        "mouth": [22],
        "ears": [24],
        "forehead": [6],
        "cheeks": [4, 7, 15],
        "skin": [4, 5, 6, 7, 15],
        "hair": [8, 10, 11, 12, 13, 17, 18, 20],
        "neck": [14, 16],
        "clothes": [9, 21],
        "background": [0, 1, 2, 3, 19],
    },
}


def draw_maps(gen, cat: Catalog, out: Path, seeds: list[int], size: int = 256) -> None:
    """One PNG per face: the face and its cluster map with cluster numbers; plus a legend grid."""
    from PIL import Image, ImageDraw

    from stylestudio.commands.catalog import PALETTE, colour_map
    from stylestudio.engine.document import SeedSource

    out.mkdir(parents=True, exist_ok=True)
    tiles = []
    for seed in seeds:
        with torch.no_grad():
            styles = gen.styles(SeedSource(seed, 0.7).latent(gen))
            img = gen.synthesize(styles).image
            img = torch.nn.functional.adaptive_avg_pool2d((img.clamp(-1, 1) + 1) * 127.5, size)
            face = img[0].permute(1, 2, 0).round().byte().numpy()
            labels = cat.cluster_map(gen, styles, size)[0].numpy()
        over = Image.fromarray((0.4 * face + 0.6 * colour_map(labels)).astype(np.uint8))
        draw = ImageDraw.Draw(over)
        for i in np.unique(labels):
            ys, xs = np.nonzero(labels == i)
            if len(ys) > 30:
                draw.text((float(np.median(xs)) - 4, float(np.median(ys)) - 5), str(i), fill=(0, 0, 0))
        tile = Image.new("RGB", (2 * size, size))
        tile.paste(Image.fromarray(face), (0, 0))
        tile.paste(over, (size, 0))
        tile.save(out / f"seed{seed}.png")
        tiles.append(tile)
    cols = 2
    grid = Image.new("RGB", (cols * 2 * size, ((len(tiles) + cols - 1) // cols) * size + 20), (255, 255, 255))
    for j, t in enumerate(tiles):
        grid.paste(t, ((j % cols) * 2 * size, (j // cols) * size + 20))
    d = ImageDraw.Draw(grid)
    for i in range(cat.k):
        d.rectangle([i * 40 + 2, 2, i * 40 + 16, 16], fill=tuple(int(v) for v in PALETTE[i % len(PALETTE)]))
        d.text((i * 40 + 19, 4), str(i), fill=(0, 0, 0))
    grid.save(out / "all.png")
    print(f"maps: {out}/all.png")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="mobilestylegan-ffhq")
    ap.add_argument("--out", type=Path, default=None, help="default: resources/catalogs/<model>/default")
    ap.add_argument("--names-only", action="store_true", help="only re-apply NAMES to the existing catalog")
    ap.add_argument("--effects-only", action="store_true", help="only (re)measure the existing catalog's pixel effects")
    ap.add_argument("--maps", type=Path, default=None, help="write cluster maps of a few faces here")
    ap.add_argument("--map-seeds", default="1,2,3,4,5,6,7,8")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from stylestudio.cli import progress_printer
    from stylestudio.engine.model_store import ModelStore

    out = args.out or REPO / "resources" / "catalogs" / args.model / "default"
    gen = ModelStore().load(args.model)
    if args.names_only or args.effects_only:
        cat = Catalog.load(out)
    else:
        settings = SETTINGS.get(args.model, dict(k=14, samples=200))
        cat = build_catalog(gen, args.model, progress=progress_printer, **settings)
    if not args.names_only:
        spec = EFFECTS.get(args.model, dict(samples=32, probes=2))
        t0 = time.time()
        effects = measure_effects(gen, cat, progress=progress_printer, **spec)
        meta = dict(cat.meta, effects=dict(spec, seconds=round(time.time() - t0, 1)))
        cat = dataclasses.replace(cat, effects=effects, meta=meta, queries={})  # old tunings are stale
    names = NAMES.get(args.model, {})
    if not args.effects_only:
        queries = {n: q for n, q in cat.queries.items() if list(cat.names.get(n, ())) == names.get(n)}
        cat = dataclasses.replace(cat, names={}, queries={})
        for name, clusters in names.items():
            cat = cat.with_name(name, clusters)
        cat = dataclasses.replace(cat, queries=queries)
    path = cat.save(out)
    size = path.stat().st_size + path.with_suffix(".npz").stat().st_size
    print(f"saved {path} ({size / 1e6:.2f} MB): {cat.k} clusters of {cat.layer}; regions: {', '.join(cat.names) or 'none'}")
    if args.maps:
        draw_maps(gen, cat, args.maps, [int(s) for s in args.map_seeds.split(",")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
