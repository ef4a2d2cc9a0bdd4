"""StyleGAN2 in pure PyTorch, plus code-free readers for NVlabs and rosinality checkpoints."""
from .network import StyleGAN2Generator

__all__ = ["StyleGAN2Generator"]
