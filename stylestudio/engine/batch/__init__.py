"""Apply one look to a whole folder of portraits (see :mod:`.run`)."""
from .folder import find_photos, output_names, share
from .process import DONE, FAILED, NO_FACE, RESUMED, BatchJob, PhotoRecord, process_photo
from .recipe import Recipe
from .run import BatchResult, run_batch, world_from_env

__all__ = ["DONE", "FAILED", "NO_FACE", "RESUMED", "BatchJob", "BatchResult", "PhotoRecord", "Recipe",
           "find_photos", "output_names", "process_photo", "run_batch", "share", "world_from_env"]
