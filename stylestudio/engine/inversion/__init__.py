"""Photo → latent: a fast estimate, W+ optimisation, optional generator fine-tuning (PTI)."""
from .encoder import FeatureEncoder, model_encoder
from .invert import (PTI_CHOICES, InversionResult, InversionSettings, InversionUpdate, apply_weight_deltas, invert,
                     iter_inversion, pti_choice, synthesis_parameters, with_pti)

__all__ = ["PTI_CHOICES", "FeatureEncoder", "InversionResult", "InversionSettings", "InversionUpdate",
           "apply_weight_deltas", "invert", "iter_inversion", "model_encoder", "pti_choice", "synthesis_parameters",
           "with_pti"]
