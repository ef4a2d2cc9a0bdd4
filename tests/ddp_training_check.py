"""Run by test_training under ``torchrun --nproc_per_node 2``: each rank's half-batch gradients,
averaged across ranks, must equal the full-batch gradient, and a whole step must leave identical
parameters on both ranks. Writes rank{r}.pt (and full.pt on rank 0) into the folder argv[1]."""
from __future__ import annotations

import copy
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from stylestudio.engine.distributed import current_world
from stylestudio.engine.training.discriminator import Discriminator
from stylestudio.engine.training.trainer import TrainConfig, Trainer

sys.path.insert(0, str(Path(__file__).parent))
from test_training import TINY, tiny_images  # noqa: E402


def grads_of(trainer: Trainer, real: torch.Tensor, ws: torch.Tensor) -> dict[str, torch.Tensor]:
    G, D = trainer.G, trainer.D
    G.zero_grad(set_to_none=True)
    D.zero_grad(set_to_none=True)
    fake = G.synthesize(G.styles(ws), noise_mode="const").image
    loss = F.softplus(-D(fake)).mean() + F.softplus(-D(real)).mean()
    loss.backward()
    return {f"{n}.{k}": torch.zeros_like(p) if p.grad is None else p.grad.clone()  # e.g. the mapping: ws are given
            for n, net in (("G", G), ("D", D)) for k, p in net.named_parameters()}


def main(out: Path) -> None:
    torch.set_num_threads(1)
    world = current_world("cpu")
    cfg = TrainConfig(16, batch=4, r1_interval=1, pl_interval=1, **TINY)
    images = tiny_images()
    # minibatch-std groups would differ between a half and the whole batch; groups of 1 keep D per-sample
    D = Discriminator(16, channel_base=TINY["channel_base"], channel_max=TINY["channel_max"], mbstd_group=1)
    trainer = Trainer(cfg, images, "cpu", world, D=D)
    gen = torch.Generator().manual_seed(11)
    real = torch.from_numpy(images[:4]).permute(0, 3, 1, 2).float() / 127.5 - 1
    ws = trainer.G.map_z(torch.randn(4, cfg.z_dim, generator=gen)).detach().unsqueeze(1).repeat(1, trainer.G.num_ws, 1)
    if world.rank == 0:
        full = copy.deepcopy(trainer)
        torch.save({"grads": grads_of(full, real, ws)}, out / "full.pt")
    half = slice(2 * world.rank, 2 * world.rank + 2)
    grads = grads_of(trainer, real[half], ws[half])
    trainer._sync_grads(list(trainer.G.parameters()))
    trainer._sync_grads(list(trainer.D.parameters()))
    grads = {f"{n}.{k}": p.grad.clone() for n, net in (("G", trainer.G), ("D", trainer.D))
             for k, p in net.named_parameters()}
    for _ in range(2):
        trainer.step()  # both lazy regularisers run (intervals 1)
    params = {f"{n}.{k}": v for n, net in (("G", trainer.G), ("D", trainer.D), ("E", trainer.G_ema))
              for k, v in net.state_dict().items()}
    params["pl_mean"] = trainer.pl_mean
    torch.save({"grads": grads, "params": params}, out / f"rank{world.rank}.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
