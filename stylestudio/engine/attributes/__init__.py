"""Attribute predictors used to label generated faces (a development dependency of the
direction builder: the app ships the directions, not the predictors)."""
from .predictor import ATTRIBUTES, AttributePredictor, AttributeSpec, identity_distance

__all__ = ["ATTRIBUTES", "AttributePredictor", "AttributeSpec", "identity_distance"]
