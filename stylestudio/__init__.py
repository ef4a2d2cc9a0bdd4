"""StyleStudio: an offline portrait editor built on style-based face generators."""
import os as _os

# torch's OpenMP runtime (libgomp) spin-waits between parallel regions by default. Beside a GUI
# thread, or on a CPU shared with other programs, the spinning threads take the cores the work
# itself needs: full 1024-px syntheses ran 2–5× slower here under load (bench/interaction.py).
# Passive waiting avoids that. libgomp reads this once, when torch is first imported, so it
# must be set here, before any StyleStudio module imports torch; a user's own setting wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
