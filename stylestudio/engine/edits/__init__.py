"""Edit kinds. Importing this package registers every kind with the document model."""
from . import direction  # noqa: F401  (registers "direction")
from . import transfer  # noqa: F401  (registers "transfer")
from . import path  # noqa: F401  (registers "textpath")
