"""``stylestudio train``: a StyleGAN2 of your own pictures, with HSR; resumes where it stopped.

Under ``torchrun --nproc_per_node N -m stylestudio.cli train …`` every process runs this same
command; the batch is split across them (gloo on CPU, nccl on GPUs) and rank 0 writes.
"""
from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from .common import bounded, finish_on_ctrl_c, progress_printer, seed_arg


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a StyleGAN2 generator on a folder of pictures (HSR on by default)",
                       description="Prepares the pictures once into a dataset, trains with checkpoints every few "
                                   "minutes (running the same command again resumes), and installs the result as "
                                   "the model NAME.")
    p.add_argument("--data", type=Path, default=None,
                   help="a folder of pictures or a prepared dataset .npz (not needed to resume)")
    p.add_argument("--align-faces", action="store_true",
                   help="cut every face found in each picture the way photos are imported (FFHQ alignment, "
                        "dlib landmarks) instead of the central square; pictures without a face are listed "
                        "and skipped")
    p.add_argument("--name", required=True, help="the model to make (and the run's folder)")
    p.add_argument("--resolution", type=int, choices=(16, 32, 64, 128, 256, 512, 1024), default=None,
                   help="training resolution (default: the --from model's, or the dataset's)")
    p.add_argument("--from", dest="from_model", default=None, help="fine-tune this StyleGAN2 model")
    p.add_argument("--hsr", choices=("vgg16", "none"), default=None,
                   help="HSR feature network: VGG16 from the LPIPS weights (DINO is not available offline); "
                        "default vgg16 for a new run, the run's own when resuming")
    p.add_argument("--hsr-weight", type=bounded(float, 0.0, 1000.0, "--hsr-weight"), default=None,
                   help="weight of the HSR loss (default 1)")
    p.add_argument("--warm-start", default=None, metavar="RUN",
                   help="start from another run's checkpoint (HSR protocol: a baseline run, then --hsr vgg16)")
    length = p.add_argument_group("how long (one or both: whichever comes first ends the run)")
    length.add_argument("--kimg", type=bounded(float, 0.001, 1e6, "--kimg"), default=None,
                        help="train until this many thousand images have been shown (in total)")
    length.add_argument("--minutes", type=bounded(float, 0.01, 1e6, "--minutes"), default=None,
                        help="train for this many minutes (of this invocation)")
    p.add_argument("--batch", type=bounded(int, 1, 4096, "--batch"), default=16, help="images per step, all processes")
    p.add_argument("--gamma", type=bounded(float, 0.0, 1e4, "--gamma"), default=None,
                   help="R1 weight γ (default 0.0002·resolution²/batch)")
    p.add_argument("--seed", type=seed_arg, default=0)
    p.add_argument("--fresh", action="store_true", help="start over instead of resuming the run's checkpoint")
    p.add_argument("--checkpoint-minutes", type=bounded(float, 0.01, 1e4, "--checkpoint-minutes"), default=5.0)
    p.add_argument("--fakes-seconds", type=bounded(float, 0.0, 1e6, "--fakes-seconds"), default=30.0,
                   help="refresh fakes.png (16 faces of the EMA generator, in the run's folder) this often "
                        "(default 30; also at each checkpoint)")
    p.add_argument("--latent-dim", type=bounded(int, 8, 1024, "--latent-dim"), default=256,
                   help="z and w width of a new model")
    p.add_argument("--channels", type=bounded(int, 8, 1024, "--channels"), default=256,
                   help="most feature channels of a layer of a new model")
    p.add_argument("--mapping-layers", type=bounded(int, 1, 8, "--mapping-layers"), default=4)
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32",
                   help="mixed precision on a GPU: bf16 (Ampere and newer) or fp16 (with loss scaling) for the "
                        "adversarial passes; R1, path length and the weights stay fp32 (default fp32)")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from ..engine import tasks
    from ..engine.distributed import current_world, process_device
    from ..engine.session import Session
    from ..engine.tasks.train import TrainModel

    world = current_world("cuda" if args.device in ("auto", "cuda") and torch.cuda.is_available() else "cpu")
    session = Session(device=process_device(args.device, world) or "auto")
    request = TrainModel(args.name, args.data, args.resolution, args.from_model, args.hsr, args.hsr_weight,
                         args.kimg, args.minutes, args.batch, args.gamma, args.seed, args.fresh,
                         args.warm_start, args.checkpoint_minutes, latent_dim=args.latent_dim, channel_max=args.channels,
                         mapping_layers=args.mapping_layers, fakes_seconds=args.fakes_seconds,
                         align_faces=args.align_faces, precision=args.precision)
    with finish_on_ctrl_c("the training") as finish:  # the model is installed as it is then
        outcome = tasks.run(session, replace(request, finish=finish), progress_printer if world.is_main else None)
    if world.is_main:
        print(outcome.summary())
        print(f"run folder: {outcome.folder}")
    return 0
