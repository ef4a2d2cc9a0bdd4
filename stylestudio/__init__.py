"""StyleStudio: an offline portrait editor built on style-based face generators."""

__version__ = "0.1.0"
