"""Run by tests/test_discovery.py under ``torchrun --nproc_per_node 2`` (gloo on CPU): the
discovery trainer unchanged, with DistributedDataParallel. Each rank saves what the test compares
into ``sys.argv[1]``."""
from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import torch
import torch.distributed as dist

from stylestudio.engine.discovery.navigator import pca_basis
from stylestudio.engine.discovery.trainer import DiscoverySettings, DiscoveryTrainer
from stylestudio.engine.distributed import current_world
from stylestudio.engine.stylegan2.network import StyleGAN2Generator


def tiny() -> StyleGAN2Generator:
    torch.manual_seed(1234)
    gen = StyleGAN2Generator(z_dim=64, w_dim=64, img_resolution=32, num_mapping_layers=2, channel_base=1024,
                             channel_max=64)
    return gen.eval()


def main(out: Path) -> None:
    torch.set_num_threads(1)
    rank = current_world("cpu").rank  # joins the gloo group, and leaves it at exit
    gen = tiny()
    basis = pca_basis(gen, q=6, samples=500, seed=0)
    s = DiscoverySettings(directions=3, size=32, sensor="generator", q=6, minutes=None, steps=4, seed=11)

    # 1. one step's gradients (DDP has averaged them by the end of backward)
    t = DiscoveryTrainer(gen, s, basis=basis)
    t.optimizer.zero_grad()
    t.loss()[0].backward()
    grads = {n: p.grad.clone() for n, p in t.learned.named_parameters()}
    torch.save(grads, out / f"grads{rank}.pt")

    # 2. parameters after k steps, with a checkpoint written by rank 0 half way
    t = DiscoveryTrainer(gen, s, basis=basis)
    t.step()
    t.step()
    t.save_checkpoint(out / "half.pt")
    dist.barrier()
    t.train()
    torch.save({n: p.detach().clone() for n, p in t.learned.named_parameters()}, out / f"params{rank}.pt")

    # 3. a fresh trainer resumed from the checkpoint reaches the same state
    r = DiscoveryTrainer(gen, s, basis=basis)
    r.load_checkpoint(out / "half.pt")
    r.train()
    torch.save({n: p.detach().clone() for n, p in r.learned.named_parameters()}, out / f"resumed{rank}.pt")

    # 4. a stop one rank decides alone (its clock, its Finish now) ends every rank at the same step
    f = DiscoveryTrainer(gen, replace(s, steps=50), basis=basis)
    f.train(finish=lambda: rank == 0 and f.step_count >= 2)
    torch.save({"steps": f.step_count, **{n: p.detach().clone() for n, p in f.learned.named_parameters()}},
               out / f"finished{rank}.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
