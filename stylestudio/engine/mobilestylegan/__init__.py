"""MobileStyleGAN (Belousov 2021), the default face generator, as a plain PyTorch module."""
