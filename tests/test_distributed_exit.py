"""A process of a torchrun world leaves its process group while the interpreter is whole.

Left to interpreter shutdown, gloo's worker threads can still hold work objects whose tensors then
need the GIL as it is torn down: once in CI a rank aborted at exit ("terminate called without an
active exception") after writing all its results. ``current_world`` destroys the group at exit."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import pytest

WORKER = textwrap.dedent('''
    import atexit, os, sys
    from pathlib import Path
    import torch
    import torch.distributed as dist
    out = Path(sys.argv[1])

    def check():  # registered first, so it runs after current_world's own exit handler
        out.joinpath(f"left{os.environ['RANK']}-initialized-{dist.is_initialized()}").touch()

    atexit.register(check)
    from stylestudio.engine.distributed import current_world
    world = current_world("cpu")
    out.joinpath(f"joined{world.rank}").touch()
    t = torch.ones(3) * (world.rank + 1)
    dist.all_reduce(t)
    assert t.tolist() == [3.0, 3.0, 3.0]
''')


@pytest.mark.slow  # two interpreters import torch: ≈15 s
def test_a_torchrun_process_destroys_its_group_before_the_interpreter_goes(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
                           "127.0.0.1", "--master_port", str(port), str(script), str(tmp_path)],
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    made = sorted(p.name for p in tmp_path.iterdir() if p.name != "worker.py")
    assert made == ["joined0", "joined1", "left0-initialized-False", "left1-initialized-False"], made
