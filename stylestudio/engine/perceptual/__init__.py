"""Perceptual distances (LPIPS-VGG) for inversion losses and measurement."""
from .lpips import LPIPS, load_lpips

__all__ = ["LPIPS", "load_lpips"]
