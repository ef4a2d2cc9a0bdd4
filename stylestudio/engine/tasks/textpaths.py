"""Train ContraCLIP text paths for a model (long: a job with progress, loss and cancel)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

from ..progress import Cancel, Progress, checking
from . import task


@dataclass(frozen=True)
class TrainTextPaths:
    """Turn each (name, positive sentence, negative sentence) into a path and save the library
    ``name`` in the user data folder (or ``output``). The result is ``(library, path)``.

    ``on_update(step, loss)`` (not part of the request's identity) is called in the task's thread
    after every training step (the panel's loss curve)."""

    model: str
    pairs: tuple[tuple[str, str, str], ...]
    name: str = "textpaths"
    encoder: str | None = None  #: an imported CLIP's name; None: the only one there is
    steps: int | None = None
    minutes: float | None = None
    method: str = "contraclip"
    loss: str = "contrastive"
    batch: int = 8
    lr: float = 1e-3
    psi: float = 0.7
    seed: int = 0
    stop_resolution: int | None = None
    output: Path | None = None
    rows: int | None = None  #: W+ rows 0…rows−1 the paths move (None: the first ~2/3)
    on_update: Callable[[int, float], None] | None = field(default=None, compare=False, repr=False)
    #: True once the person wants it to end now and keep the paths learnt so far (*Finish now*)
    finish: Callable[[], bool] | None = field(default=None, compare=False, repr=False)
    lane: ClassVar[str] = "long"

    def title(self) -> str:
        return f"Train text paths “{self.name}” ({', '.join(p[0] for p in self.pairs)})"

    def describe_result(self, result: tuple[Any, Path]) -> str:
        lib = result[0]
        return (f"{len(lib.paths)} paths, loss {lib.meta['eval_loss_start']:.3f} → {lib.meta['eval_loss_end']:.3f} "
                f"→ {result[1].name}")


@task(TrainTextPaths)
def train_text_paths(session: Any, req: TrainTextPaths, progress: Progress, cancel: Cancel) -> tuple[Any, Path]:
    from ..text.encoders import default_encoder_name, load_encoder
    from ..text.library import check_path_name, library_file
    from ..text.training import PathTrainer, TrainSettings, path_rows

    for name, _pos, _neg in req.pairs:
        check_path_name(name)
    out = Path(req.output) if req.output is not None else library_file(req.model, req.name)
    settings = TrainSettings(method=req.method, loss=req.loss, steps=req.steps, minutes=req.minutes, batch=req.batch,
                             lr=req.lr, psi=req.psi, seed=req.seed, stop_resolution=req.stop_resolution,
                             rows=req.rows)
    settings.check()
    m = session.model(req.model, progress=checking(progress, cancel))
    path_rows(m.generator, req.rows)  # a wrong row count is said before the encoder loads
    encoder_name = req.encoder or default_encoder_name()
    progress(f"Loading encoder {encoder_name}…", -1)
    encoder = load_encoder(encoder_name, m.generator.device)
    lib = PathTrainer(m.generator, encoder, req.pairs, settings).run(progress, cancel, req.on_update, req.finish)
    lib.model = req.model
    from ..distributed import barrier, current_world

    world = current_world()
    if world.is_main:  # under torchrun the ranks hold identical paths; one writes them
        lib.save(out)
    barrier(world)
    if req.output is None:
        session.install(req.model, "textpaths", req.name, lib)
    return lib, out


@dataclass(frozen=True)
class TextPathInfo:
    """What the Text paths panel lists (quick): the encoders, ``{library: [{name, label, positive,
    negative, former}]}`` of ``model``'s text path libraries, and the names of the shipped (read-only) ones
    among them (``"shipped"``) and of the user's that hide a shipped one (``"hiding"``)."""

    model: str
    lane: ClassVar[str] = "render"

    def title(self) -> str:
        return f"List text paths of {self.model}"


@task(TextPathInfo)
def text_path_info(session: Any, req: TextPathInfo, progress: Progress, cancel: Cancel) -> dict[str, Any]:
    from ...errors import InputError
    from ..text.encoders import list_encoders
    from ..text.library import TextPathLibrary, library_names, shipped_library

    libraries: dict[str, list[dict[str, str]]] = {}
    shipped, hiding = [], []
    for path in library_names(req.model):
        original = shipped_library(req.model, path.stem)
        if original is not None:
            (shipped if original == path else hiding).append(path.stem)
        try:
            lib = TextPathLibrary.load(path)
        except InputError:
            continue
        libraries[path.stem] = [{"name": p.name, "label": p.label, "positive": p.positive, "negative": p.negative,
                                 "former": lib.former_names(p.name)} for p in lib.paths]
    return {"encoders": [(e.name, e.kind) for e in list_encoders()], "libraries": libraries, "shipped": shipped,
            "hiding": hiding}


@dataclass(frozen=True)
class RenameTextPath:
    """Rename path ``old`` of text path library ``library`` to ``new`` (as typed: "Big smile" names
    it ``big_smile``); projects that named it ``old`` still find it. The result is one line."""

    model: str
    library: str
    old: str
    new: str
    lane: ClassVar[str] = "render"

    def title(self) -> str:
        return f"Rename {self.old} → {self.new}"


@task(RenameTextPath)
def rename_text_path(session: Any, req: RenameTextPath, progress: Progress, cancel: Cancel) -> str:
    from ..text.library import TextPathLibrary
    from ..text.store import rename_path

    path, key = rename_path(req.model, req.library, req.old, req.new)
    session.install(req.model, "textpaths", req.library, TextPathLibrary.load(path))
    return f"Renamed {req.old} → {key} in {path.stem}"


@dataclass(frozen=True)
class RemoveTextPath:
    """Remove path ``name`` of text path library ``library`` (None: delete the user's library file;
    a shipped library of that name is then used again). The result is one line saying what was done."""

    model: str
    library: str
    name: str | None = None
    lane: ClassVar[str] = "render"

    def title(self) -> str:
        return f"Remove {self.name or 'library'} from {self.library}"


@task(RemoveTextPath)
def remove_text_path(session: Any, req: RemoveTextPath, progress: Progress, cancel: Cancel) -> str:
    from ..text.store import remove_library, remove_path

    if req.name is None:
        _, shipped_again = remove_library(req.model, req.library)
        session.install(req.model, "textpaths", req.library, None)  # gone: every session forgets it
        return f"Deleted your text path library {req.library}" + (
            " (the shipped library of that name is used again)" if shipped_again else "")
    path, lib = remove_path(req.model, req.library, req.name)
    session.install(req.model, "textpaths", req.library, lib)
    return f"Removed {req.name} from {path.stem}"
