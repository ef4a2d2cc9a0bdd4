"""Discovering new editing directions without labels: ContraFeat (Zhu et al. 2022) and the
instant PCA (GANSpace) and SeFa baselines, written once against the Generator interface."""
