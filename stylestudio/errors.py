"""Errors that carry a message meant for the user (CLI prints it as one line, the GUI shows it)."""


class StyleStudioError(Exception):
    """Base for every failure that is the input's fault, not a bug."""


class ModelFormatError(StyleStudioError):
    """A file is not a model we can read (wrong format, truncated, hostile)."""


class UnknownModelError(StyleStudioError):
    """No model by that name in the user's model store."""


class ProvisioningError(StyleStudioError):
    """The default model could not be fetched or converted."""


class InputError(StyleStudioError):
    """A latent, image or project given by the user has the wrong shape or content."""


class Cancelled(StyleStudioError):
    """A long job was cancelled by the user."""
