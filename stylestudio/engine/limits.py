"""The bounds StyleStudio holds every input to, in one place for the CLI, the documents and the app.

Each bound is chosen so that anything inside it renders to a sensible picture in bounded memory,
and anything outside it is refused with one line before work starts.
"""
from __future__ import annotations

#: Truncation ψ: 1 is the model's own distribution, 0 the average face, values below 0 mirror the
#: face through the average ("anti-faces") and values above 1 exaggerate it. Outside −1 … 2 the
#: latents leave the range the generator was trained on and it draws noise.
PSI_MIN = -1.0
PSI_MAX = 2.0

#: Seeds follow ``numpy.random.RandomState(seed)``, which takes 0 … 2**32 − 1.
SEED_MIN = 0
SEED_MAX = 2**32 - 1

#: Output images: 1 … 8192 pixels on a side (8192² RGB is 200 MB as 8-bit, 800 MB as float).
MIN_SIZE = 1
MAX_SIZE = 8192

#: Photos (and every image decoded for its pixels): at most 100 megapixels (≈300 MB as RGB).
MAX_IMAGE_PIXELS = 100_000_000

#: Painted masks: at most 4096 × 4096 (a mask is turned into float32, 64 MB at this size).
MAX_MASK_SIDE = 4096
MAX_MASK_PIXELS = MAX_MASK_SIDE * MAX_MASK_SIDE

#: Latent ``.npy`` files: at most this many latents in one file and this many numbers in all
#: (16 M float32 = 64 MB; e.g. 1800 W+ latents of a 1024-px model).
MAX_LATENTS = 10_000
MAX_LATENT_VALUES = 16 * 1024 * 1024
#: A latent is at most 3-D: [N, num_ws, w_dim].
MAX_LATENT_DIMS = 3
#: Latent values: z is standard normal and W lies within tens of the origin; ±10⁴ is far outside
#: anything a model makes, and beyond it the generator overflows to NaN (a black picture).
MAX_LATENT_ABS = 1e4

#: File name suffixes read as photos, everywhere (``invert``, ``--source``, the editor).
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp", ".gif")


def describe_range(lo: float, hi: float) -> str:
    """``-1 … 2`` for messages."""
    return f"{lo:g} … {hi:g}"
