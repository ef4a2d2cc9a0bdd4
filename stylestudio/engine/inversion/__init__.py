"""Photo → latent: a fast estimate, W+ optimisation, optional generator fine-tuning (PTI)."""
from .invert import (InversionResult, InversionSettings, InversionUpdate, apply_weight_deltas, invert,
                     iter_inversion, synthesis_parameters)

__all__ = ["InversionResult", "InversionSettings", "InversionUpdate", "apply_weight_deltas", "invert",
           "iter_inversion", "synthesis_parameters"]
