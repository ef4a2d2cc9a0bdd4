"""Photo → latent: a fast estimate, W+ optimisation, optional generator fine-tuning (PTI)."""
from .encoder import FeatureEncoder, model_encoder
from .invert import (InversionResult, InversionSettings, InversionUpdate, apply_weight_deltas, invert,
                     iter_inversion, synthesis_parameters)

__all__ = ["FeatureEncoder", "InversionResult", "InversionSettings", "InversionUpdate", "apply_weight_deltas",
           "invert", "iter_inversion", "model_encoder", "synthesis_parameters"]
