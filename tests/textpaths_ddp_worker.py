"""Run by tests/test_textpaths.py under ``torchrun --nproc_per_node 2`` (gloo on CPU): the text path
trainer unchanged; each rank saves its trained paths and its first step's gradients into ``sys.argv[1]``."""
from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist

from stylestudio.engine.stylegan2.network import StyleGAN2Generator
from stylestudio.engine.text.checkpoint import read_state_dict
from stylestudio.engine.text.clip_model import build_clip
from stylestudio.engine.text.encoders import ClipEncoder
from stylestudio.engine.text.training import PathTrainer, TrainSettings

PAIRS = [("smile", "a smiling face", "a neutral face"), ("old", "an old person", "a young person")]
SETTINGS = TrainSettings(steps=3, batch=2, lr=1e-2, seed=5)


def tiny() -> StyleGAN2Generator:
    torch.manual_seed(0)
    return StyleGAN2Generator(z_dim=32, w_dim=32, img_resolution=32, num_mapping_layers=2, channel_base=512,
                              channel_max=32).eval().requires_grad_(False)


def encoder(clip_file: Path) -> ClipEncoder:
    return ClipEncoder(build_clip(read_state_dict(clip_file)), "tiny")


def main(out: Path, clip_file: Path) -> None:
    torch.set_num_threads(1)
    trainer = PathTrainer(tiny(), encoder(clip_file), PAIRS, SETTINGS)
    rank = dist.get_rank()
    grads = {}
    original = trainer.optimizer.step

    def record() -> None:  # the averaged gradients of the first step, as the optimiser sees them
        if not grads:
            grads.update({n: p.grad.clone() for n, p in trainer.paths.named_parameters()})
        original()

    trainer.optimizer.step = record  # type: ignore[method-assign]
    trainer.run(lambda m, f: None, None)
    torch.save(grads, out / f"grads{rank}.pt")
    torch.save(trainer.paths.state_dict(), out / f"params{rank}.pt")
    dist.barrier()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
