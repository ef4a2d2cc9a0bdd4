"""``stylestudio train-encoder``: the photo encoder of a model, trained on its own generated faces."""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import bounded, output_path, progress_printer, seed_arg


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-encoder", help="train the encoder that gives photo inversion its first estimate",
                       description="Renders generated faces of the model with their W+ codes (style-mixed for a "
                                   "quarter of them, each also as a blurred copy), reads them with the frozen "
                                   "LPIPS VGG16 and fits a small head that predicts a w plus per-row offsets, "
                                   "starting from the model's ridge encoder. Renders are cached, so running it "
                                   "again resumes. Slow on a CPU: about 1 s a face to render, then minutes to fit.")
    p.add_argument("--model", default=None, help="model name (default: the built-in face model)")
    p.add_argument("--device", default="auto")
    p.add_argument("--faces", type=bounded(int, 1, 50_000, "--faces"), default=2000,
                   help="training faces (default 2000; ~0.6 MB each in the cache)")
    p.add_argument("--render-minutes", type=bounded(float, 0.01, 1e5, "--render-minutes"), default=None,
                   help="stop rendering new faces after this many minutes and train on those made (and cached)")
    p.add_argument("--epochs", type=bounded(int, 1, 1000, "--epochs"), default=40)
    p.add_argument("--minutes", type=bounded(float, 0.01, 1e5, "--minutes"), default=None,
                   help="stop the fit after this many minutes (keeping its best epoch)")
    p.add_argument("--seed", type=seed_arg, default=0)
    p.add_argument("--no-ridge", action="store_true", help="do not start from the model's ridge encoder")
    p.add_argument("--cache", type=Path, default=None, help="folder for the rendered faces (default: the user cache)")
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="encoder file (.pt; default: the user data folder, which photo inversion then uses)")
    p.set_defaults(func=cmd_train_encoder)


def cmd_train_encoder(args: argparse.Namespace) -> int:
    from ..engine import tasks
    from ..engine.tasks.encoder import TrainEncoder
    from .common import cli_session

    output_path(args.output)
    name, session = cli_session(args)
    request = TrainEncoder(name, args.faces, epochs=args.epochs, minutes=args.minutes,
                           render_minutes=args.render_minutes, seed=args.seed,
                           from_ridge=not args.no_ridge, cache=args.cache, output=args.output)
    enc, path = tasks.run(session, request, progress_printer)
    t = enc.meta["training"]
    print(f"encoder trained on {t['faces']} faces ({t['rows']} images), held-out loss {t['best_held_out_loss']} "
          f"→ {path}")
    return 0
