"""Latent directions: closed-form factors (SeFa), attribute boundaries (InterFaceGAN/SC²GAN)."""
