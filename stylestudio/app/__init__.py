"""The desktop editor (PySide6). Never runs a network itself: see :mod:`.engine_client`."""
