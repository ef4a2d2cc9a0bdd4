"""Training a StyleGAN2 generator on the user's pictures, with the HSR regulariser.

The generator's forward stays in ``stylegan2/network.py``; everything that only training needs
(the discriminator, the losses, the HSR heads, optimisers, checkpoints, data) lives here.
"""
