"""The StyleGAN2 trainer with HSR (engine/training) and ``stylestudio train``, on tiny 16 px networks."""
from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stylestudio.engine.distributed import World
from stylestudio.engine.training.dataset import load_dataset, prepare_dataset
from stylestudio.engine.training.discriminator import Discriminator
from stylestudio.engine.training.hsr import HSRHeads
from stylestudio.engine.training.trainer import TrainConfig, Trainer
from stylestudio.errors import InputError

ONE = World(0, 1, 0)
TINY = dict(z_dim=16, w_dim=16, mapping_layers=2, channel_base=256, channel_max=16)


def tiny_images(n: int = 24, side: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.zeros((n, side, side, 3), np.uint8)
    img[:] = rng.integers(0, 255, (n, 1, 1, 3), dtype=np.uint8)
    img[:, side // 4: 3 * side // 4, side // 4: 3 * side // 4] = rng.integers(0, 255, (n, 1, 1, 3), dtype=np.uint8)
    return img


def make_trainer(hsr: str = "none", **kw) -> Trainer:
    cfg = TrainConfig(16, batch=4, hsr=hsr, r1_interval=2, pl_interval=2, **{**TINY, **kw})
    return Trainer(cfg, tiny_images(), "cpu", ONE)


def params(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_r1_penalty_equals_the_squared_input_gradient_from_autograd():
    t = make_trainer()
    real = torch.randn(3, 3, 16, 16)
    jac = torch.autograd.functional.jacobian(lambda x: t.D(x).sum(), real)  # d(sum of logits)/d(images)
    expected = jac.square().sum(dim=[1, 2, 3]).mean()
    assert float(t.r1_penalty(real).detach()) == pytest.approx(float(expected), rel=1e-4)


def test_path_length_mean_follows_the_lengths():
    t = make_trainer(pl_decay=1.0)  # the running mean becomes this batch's mean length at once
    rng = torch.Generator().manual_seed(0)
    penalty = t.path_length_penalty(rng)
    assert float(t.pl_mean) > 0 and torch.isfinite(penalty)
    t2 = make_trainer(pl_decay=0.01)
    t2.path_length_penalty(torch.Generator().manual_seed(0))
    assert float(t2.pl_mean) == pytest.approx(0.01 * float(t.pl_mean), rel=1e-4)  # same lengths, 1 % of the way


def test_a_few_steps_give_finite_losses_and_change_the_weights():
    t = make_trainer("vgg16")
    g0, d0, e0 = params(t.G), params(t.D), params(t.G_ema)
    logs = [t.step() for _ in range(3)]
    for entry in logs:
        assert all(np.isfinite(v) for v in entry.values())
    assert {"loss_G", "loss_D", "loss_hsr", "pl_penalty", "r1_penalty"} <= set(logs[0])
    assert any(not torch.equal(g0[k], v) for k, v in params(t.G).items())
    assert any(not torch.equal(d0[k], v) for k, v in params(t.D).items())
    assert any(not torch.equal(e0[k], v) for k, v in params(t.G_ema).items())
    assert not torch.equal(t.G.w_avg, torch.zeros_like(t.G.w_avg))  # w_avg follows the mapping
    assert t.step_count == 3 and t.images_seen == 12


def test_resume_from_a_checkpoint_is_bit_identical_to_an_uninterrupted_run():
    straight = make_trainer()
    for _ in range(4):
        straight.step()
    first = make_trainer()
    for _ in range(2):
        first.step()
    buf = io.BytesIO()
    torch.save(first.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    resumed = Trainer.from_state(state, tiny_images(), "cpu", ONE)
    assert resumed.step_count == 2
    for _ in range(2):
        resumed.step()
    assert resumed.step_count == straight.step_count == 4
    for net in ("G", "D", "G_ema"):
        a, b = params(getattr(straight, net)), params(getattr(resumed, net))
        assert all(torch.equal(a[k], b[k]) for k in a), net
    assert torch.equal(straight.pl_mean, resumed.pl_mean)


@pytest.mark.parametrize("res,blocks", [(16, (8, 16)), (32, (8, 16, 32)), (64, (8, 16, 32, 64)), (128, (8, 16, 32, 64))])
def test_hsr_heads_match_the_blocks_a_model_has(res, blocks):
    from stylestudio.engine.stylegan2.network import StyleGAN2Generator

    gen = StyleGAN2Generator(z_dim=8, w_dim=8, img_resolution=res, num_mapping_layers=1, channel_base=res * 8,
                             channel_max=16)
    heads = HSRHeads(gen)
    assert heads.resolutions == blocks
    assert heads.taps == tuple(f"b{r}.conv1" for r in blocks)
    # coarsest block ↔ deepest VGG16 layer (relu5_3: 512 channels), finer blocks ↔ shallower layers
    outs = [heads.heads[f"b{r}"].out_channels for r in blocks]
    assert outs == [512, 512, 256, 128][: len(blocks)]
    assert all(heads.heads[f"b{r}"].in_channels == gen.layer(f"b{r}.conv1").channels for r in blocks)


def test_hsr_loss_decreases_on_a_fixed_batch():
    t = make_trainer("vgg16")
    rng = torch.Generator().manual_seed(1)
    ws = t._mapping(4, rng).detach()
    opt = torch.optim.Adam(list(t.G.parameters()) + list(t.heads.parameters()), lr=0.01)
    losses = []
    for _ in range(8):
        torch.manual_seed(0)
        loss = t.hsr_loss(t._synth(ws, t.heads.taps))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert all(np.isfinite(losses)) and 0 < losses[-1] < 0.8 * losses[0]


def write_folder(folder: Path, n: int = 10) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(tiny_images(n, 24, seed=3)):
        Image.fromarray(img[:, :20]).save(folder / f"face{i:02d}.png")  # 24×20: cut to a square
    Image.fromarray(tiny_images(n, 24, seed=3)[0][:, :20]).save(folder / "again.png")  # a duplicate
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    return folder


def test_dataset_preparation_skips_corrupt_pictures_and_duplicates(tmp_path):
    folder = write_folder(tmp_path / "pics")
    out = tmp_path / "data.npz"
    report = prepare_dataset(folder, out, 16)
    assert report.count == 10
    assert len(report.skipped) == 1 and "broken.jpg" in report.skipped[0] and "\n" not in report.skipped[0]
    assert len(report.duplicates) == 1 and "face00.png" in report.duplicates[0]
    images = load_dataset(out)
    assert images.shape == (10, 16, 16, 3) and images.dtype == np.uint8
    assert report.smallest == (20, 24)
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 nope")
    with pytest.raises(InputError, match="bad.npz"):
        load_dataset(tmp_path / "bad.npz")
    (tmp_path / "notes.txt").write_text("root:x:0:0")  # not an archive at all: no word of numpy's pickles
    with pytest.raises(InputError, match=r"notes.txt: not a prepared dataset") as info:
        load_dataset(tmp_path / "notes.txt")
    assert "pickle" not in str(info.value)


def _train_args(folder: Path, name: str, *extra: str) -> list[str]:
    return ["train", "--data", str(folder), "--resolution", "16", "--batch", "4", "--name", name, "--latent-dim",
            "16", "--channels", "16", "--mapping-layers", "2", *extra]


@pytest.mark.slow  # several short training runs: ≈35 s on the shared 2-core machine
def test_cli_trains_resumes_and_installs_a_model(tmp_path, capsys):
    from stylestudio.cli import main
    from stylestudio.engine.model_store import ModelStore
    from stylestudio.engine.training.run import run_folder

    folder = write_folder(tmp_path / "pics")
    assert main(_train_args(folder, "cli-tiny", "--kimg", "0.008", "--hsr", "vgg16")) == 0
    captured = capsys.readouterr()
    assert "model 'cli-tiny': 2 steps" in captured.out
    assert "broken.jpg" in captured.err and "duplicate" in captured.err
    gen = ModelStore().load("cli-tiny")
    assert gen.resolution == 16 and torch.isfinite(gen.generate(torch.randn(2, gen.z_dim))).all()
    assert (run_folder("cli-tiny") / "fakes.png").is_file()
    assert main(["models", "list"]) == 0
    assert "cli-tiny" in capsys.readouterr().out
    # the same command with a longer target resumes at step 2 (and a time limit too: the images come first)
    assert main(["train", "--name", "cli-tiny", "--kimg", "0.016", "--minutes", "60", "--batch", "4"]) == 0
    out = capsys.readouterr().out
    assert "4 steps" in out and "resumed at step 2" in out
    state = torch.load(run_folder("cli-tiny") / "checkpoint.pt", weights_only=True)
    assert state["step"] == 4 and state["images_seen"] == 16
    # it carries its discriminator now, so --from uses it; a model without one gets a clear note
    assert main(_train_args(folder, "cli-ft", "--from", "cli-tiny", "--kimg", "0.004", "--hsr", "none")) == 0
    assert "no discriminator" not in capsys.readouterr().err
    store = ModelStore()
    store.add(ModelStore().load("cli-tiny"), "cli-imported", {"format": "test"})
    assert main(_train_args(folder, "cli-ft2", "--from", "cli-imported", "--kimg", "0.004", "--hsr", "none")) == 0
    assert "'cli-imported' carries no discriminator" in capsys.readouterr().err


def test_ctrl_c_finishes_the_training_and_installs_the_model(tmp_path, capsys, press_ctrl_c):
    """The CLI's first Ctrl+C is the Jobs panel's Finish now: the run stops after its step, is
    checkpointed and its model installed, well before its kimg."""
    from stylestudio.cli import main
    from stylestudio.commands import train
    from stylestudio.engine.model_store import ModelStore
    from stylestudio.engine.training.run import run_folder

    pressed = press_ctrl_c(train, "step 2,")
    rc = main(_train_args(write_folder(tmp_path / "pics"), "cli-ctrlc", "--kimg", "10", "--hsr", "none"))
    out, err = capsys.readouterr()
    assert pressed and rc == 0, err
    assert "finishing the training after the current step" in err
    assert "model 'cli-ctrlc': 2 steps" in out and "finished early" in out
    assert ModelStore().load("cli-ctrlc").resolution == 16
    assert torch.load(run_folder("cli-ctrlc") / "checkpoint.pt", weights_only=True)["step"] == 2


def test_a_warm_started_run_continues_its_source_and_draws_from_its_own_seed(tmp_path):
    """HSR's protocol: arms start from one baseline's checkpoint. An arm with the baseline's seed and
    settings is that baseline continued, step for step; another seed is another draw of the same
    continuation (what training noise alone does to a metric)."""
    from stylestudio.engine.model_store import ModelStore
    from stylestudio.engine.training.dataset import FORMAT
    from stylestudio.engine.training.run import TrainSettings, run_folder, train

    store, cpu = ModelStore(), torch.device("cpu")
    data = tmp_path / "data.npz"
    np.savez(data, images=tiny_images(12), names=np.asarray([f"f{i}" for i in range(12)]), format=np.asarray(FORMAT))
    tiny = dict(batch=4, latent_dim=16, channel_max=16, mapping_layers=2, hsr="none")

    def params(name: str) -> list[torch.Tensor]:
        return list(torch.load(run_folder(name) / "checkpoint.pt", weights_only=True)["G"].values())

    assert train(TrainSettings(data, "ws-base", resolution=16, kimg=0.008, **tiny), store, cpu, ONE).steps == 2
    assert train(TrainSettings(None, "ws-same", kimg=0.016, warm_start="ws-base", **tiny), store, cpu, ONE).steps == 4
    assert train(TrainSettings(None, "ws-other", kimg=0.016, warm_start="ws-base", seed=1, **tiny),
                 store, cpu, ONE).steps == 4
    assert train(TrainSettings(None, "ws-base", kimg=0.016, **tiny), store, cpu, ONE).resumed_at_step == 2
    base, same, other = params("ws-base"), params("ws-same"), params("ws-other")
    assert all(torch.equal(a, b) for a, b in zip(base, same))
    assert not all(torch.equal(a, b) for a, b in zip(base, other))


def test_mixed_precision_runs_the_adversarial_passes_in_bf16_and_keeps_fp32_weights():
    """--precision bf16 (a GPU feature; bf16 autocast also runs on the CPU, which is what a test can
    check here): the G and D passes are autocast, the weights and the regularisers stay fp32."""
    from stylestudio.engine.training.trainer import check_precision

    cfg = TrainConfig(16, batch=4, hsr="none", r1_interval=2, pl_interval=2, **TINY)
    t = Trainer(cfg, tiny_images(), "cpu", ONE, precision="bf16")
    seen: list = []
    hook = t.D.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    g0 = params(t.G)
    logs = [t.step() for _ in range(2)]
    hook.remove()
    assert all(np.isfinite(v) for entry in logs for v in entry.values())
    assert torch.bfloat16 in seen and torch.float32 in seen  # adversarial passes bf16; R1 in fp32
    assert all(p.dtype == torch.float32 for p in t.G.parameters())
    assert any(not torch.equal(g0[k], v) for k, v in params(t.G).items())
    ref = Trainer(cfg, tiny_images(), "cpu", ONE)  # fp32 from the same start: close, not equal
    assert float(ref.step()["loss_G"]) == pytest.approx(logs[0]["loss_G"], rel=0.05)
    with pytest.raises(InputError, match="fp16 needs a CUDA GPU"):
        check_precision("fp16", "cpu")
    with pytest.raises(InputError, match="--precision must be one of"):
        check_precision("int8", "cpu")


def test_cli_refuses_what_it_cannot_train(tmp_path, capsys):
    from stylestudio.cli import main

    folder = write_folder(tmp_path / "pics", 3)
    assert main(_train_args(folder, "nope", "--from", "mobilestylegan-ffhq", "--kimg", "1")) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "mobilestylegan" in err and "no discriminator" in err
    assert main(_train_args(folder, "nope2")) == 2  # no length
    assert "--kimg" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(_train_args(empty, "nope3", "--kimg", "1")) == 2
    assert "no pictures" in capsys.readouterr().err
    assert main(_train_args(folder, "nope4", "--kimg", "1", "--precision", "fp16", "--device", "cpu")) == 2
    assert "error: --precision fp16 needs a CUDA GPU" in capsys.readouterr().err


@pytest.mark.slow  # ≈25 s on the shared machine
def test_cancel_writes_a_checkpoint_and_the_run_resumes_there(tmp_path):
    from stylestudio.engine import tasks
    from stylestudio.engine.session import Session
    from stylestudio.engine.tasks.train import TrainModel
    from stylestudio.engine.training.run import run_folder
    from stylestudio.errors import Cancelled

    folder = write_folder(tmp_path / "pics")
    req = TrainModel("cancel-tiny", folder, 16, hsr="none", kimg=1.0, batch=4, latent_dim=16, channel_max=16,
                     mapping_layers=2)
    seen = []

    def progress(message: str, fraction: float) -> None:
        if message.startswith("step 3,"):
            raise Cancelled("stop")  # the GUI's job context raises from progress
        seen.append(message)

    with pytest.raises(Cancelled):
        tasks.run(Session(device="cpu"), req, progress)
    state = torch.load(run_folder("cancel-tiny") / "checkpoint.pt", weights_only=True)
    assert state["step"] == 3
    done = tasks.run(Session(device="cpu"), TrainModel("cancel-tiny", None, kimg=0.02, batch=4))
    assert done.resumed_at_step == 3 and done.steps == 5


def test_finish_now_installs_the_model_as_it_is(tmp_path):
    """*Finish now* (the request's ``finish``, set by the Jobs panel): the run ends after the step it
    is in, keeps its checkpoint and installs the model, marked as finished early."""
    from stylestudio.engine import tasks
    from stylestudio.engine.model_store import ModelStore
    from stylestudio.engine.session import Session
    from stylestudio.engine.tasks.train import TrainModel

    folder = write_folder(tmp_path / "pics")
    steps: list[str] = []
    req = TrainModel("finish-tiny", folder, 16, hsr="none", kimg=1000.0, batch=4, latent_dim=16, channel_max=16,
                     mapping_layers=2, finish=lambda: len(steps) >= 3)
    done = tasks.run(Session(device="cpu"), req, lambda m, f: steps.append(m) if m.startswith("step ") else None)
    assert done.steps == 3 and done.finished_early and "finished early" in done.summary()
    store = ModelStore()
    assert store.has("finish-tiny") and store.info("finish-tiny").source["finished_early"] is True


def test_with_images_and_a_time_limit_the_run_ends_and_reports_by_the_nearer_limit(tmp_path):
    """Train dialog / CLI: kimg 1000 (hours here) and 0.05 min: the run stops on the clock, and its
    progress and ETA follow the clock, not the far-off image count."""
    from stylestudio.engine import tasks
    from stylestudio.engine.session import Session
    from stylestudio.engine.tasks.train import TrainModel

    folder = write_folder(tmp_path / "pics")
    req = TrainModel("clock-tiny", folder, 16, hsr="none", kimg=1000.0, minutes=0.05, batch=4, latent_dim=16,
                     channel_max=16, mapping_layers=2)
    steps = []
    done = tasks.run(Session(device="cpu"), req, lambda m, f: steps.append((m, f)) if m.startswith("step ") else None)
    assert done.steps == len(steps) >= 1
    message, fraction = steps[-1]
    assert fraction > 0.1, steps  # the images would put it at 0.0000x
    assert float(message.split("ETA ")[1].split(" min")[0]) <= 0.05


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # two processes importing torch: ≈20 s
def test_two_processes_average_to_the_full_batch_gradient_and_stay_identical(tmp_path):
    script = Path(__file__).with_name("ddp_training_check.py")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
                           "127.0.0.1", "--master_port", str(_free_port()), str(script), str(tmp_path)],
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    full = torch.load(tmp_path / "full.pt", weights_only=True)
    for k in full["grads"]:
        assert torch.allclose(r0["grads"][k], full["grads"][k], rtol=1e-4, atol=1e-6), k
        assert torch.equal(r0["grads"][k], r1["grads"][k]), k
    for k in r0["params"]:
        assert torch.equal(r0["params"][k], r1["params"][k]), k


def test_baseline_then_hsr_resumes_a_baseline_checkpoint_with_new_heads():
    base = make_trainer()
    for _ in range(2):
        base.step()
    buf = io.BytesIO()
    torch.save(base.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    arm = Trainer.from_state(state, tiny_images(), "cpu", ONE, hsr="vgg16", hsr_weight=0.5)
    assert arm.step_count == 2 and arm.heads is not None and arm.config.hsr_weight == 0.5
    assert all(torch.equal(v, base.G.state_dict()[k]) for k, v in arm.G.state_dict().items())
    logs = arm.step()
    assert np.isfinite(logs["loss_hsr"]) and len(arm.opt_G.param_groups) == 2
    buf = io.BytesIO()
    torch.save(arm.state_dict(), buf)
    buf.seek(0)
    back = Trainer.from_state(torch.load(buf, weights_only=True), tiny_images(), "cpu", ONE, hsr="none")
    assert back.heads is None and "loss_hsr" not in back.step()


@pytest.mark.slow  # two tiny runs: ≈30 s of CPU on the shared machine
def test_the_grid_of_fakes_is_refreshed_as_it_learns_and_written_for_the_cli_user(tmp_path, capsys):
    from stylestudio.cli import main
    from stylestudio.engine import tasks
    from stylestudio.engine.session import Session
    from stylestudio.engine.tasks.train import TrainModel
    from stylestudio.engine.training.run import run_folder

    folder = write_folder(tmp_path / "pics")
    assert main(_train_args(folder, "fakes-cli", "--kimg", "0.004", "--hsr", "none", "--fakes-seconds", "0")) == 0
    err = capsys.readouterr().err
    fakes = run_folder("fakes-cli") / "fakes.png"
    assert f"{fakes} (every 0 s)" in err
    assert np.asarray(Image.open(fakes)).shape == (64, 64, 3)  # 4 × 4 faces at 16 px

    grids = []
    req = TrainModel("fakes-task", folder, 16, hsr="none", kimg=0.008, batch=4, latent_dim=16, channel_max=16,
                     mapping_layers=2, fakes_seconds=0.0, on_fakes=grids.append)
    tasks.run(Session(device="cpu"), req)
    # at the start, after each step (every 0 s) and at the final checkpoint
    assert [g.step for g in grids] == [0, 1, 2, 2] and grids[-1].kimg == pytest.approx(0.008)
    assert grids[0].image.shape == (64, 64, 3) and grids[0].image.dtype == np.uint8
    assert not np.array_equal(grids[0].image, grids[-1].image)  # the faces change as the model learns
    assert np.array_equal(np.asarray(Image.open(grids[-1].path)), grids[-1].image)
    assert grids[-1].path == run_folder("fakes-task") / "fakes.png" and "step 2" in grids[-1].caption()


@pytest.mark.slow  # face detection on three photos and one training step: ≈20 s on the shared machine
def test_cli_align_faces_cuts_faces_as_the_photo_import_does_and_lists_pictures_without_one(tmp_path, capsys):
    skdata = pytest.importorskip("skimage.data")
    from stylestudio.cli import main
    from stylestudio.engine.face.landmarks import detect_faces
    from stylestudio.engine.photo import photo_source_from_file
    from stylestudio.engine.training.run import run_folder

    folder = tmp_path / "portraits"
    folder.mkdir()
    astronaut = skdata.astronaut()
    Image.fromarray(astronaut).save(folder / "astro.png")
    Image.fromarray(astronaut[:, ::-1]).save(folder / "astro-mirrored.png")
    Image.fromarray(skdata.coffee()).save(folder / "coffee.png")  # a cup, no face
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    assert main(["train", "--data", str(folder), "--align-faces", "--resolution", "16", "--batch", "2", "--name",
                 "aligned", "--latent-dim", "16", "--channels", "16", "--mapping-layers", "2", "--kimg", "0.002",
                 "--hsr", "none"]) == 0
    err = capsys.readouterr().err
    assert f"{folder / 'coffee.png'}: no face found" in err and "broken.jpg" in err
    assert "2 images at 16 px" in err and "2 skipped" in err
    images = load_dataset(run_folder("aligned") / "dataset.npz")
    assert images.shape == (2, 16, 16, 3)
    for img, name in zip(images, ("astro-mirrored.png", "astro.png")):  # sorted names
        face = detect_faces(np.asarray(Image.open(folder / name)))[0]
        expected = photo_source_from_file(folder / name, face.landmarks).aligned(16)  # the photo import's crop
        assert np.array_equal(img, expected), name
    centre = np.asarray(Image.fromarray(astronaut).resize((16, 16), Image.LANCZOS))
    assert np.abs(images[1].astype(int) - centre).mean() > 20  # not the whole picture: the face


SNAPSHOT = Path(__file__).resolve().parents[1].parent / "shared" / "oracle" / "stylegan2_tiny" / "network-snapshot.pkl"


@pytest.mark.slow  # an import and two trainer set-ups: ≈25 s on the shared machine
@pytest.mark.skipif(not SNAPSHOT.is_file(), reason="the NVlabs oracle snapshot is not here")
def test_an_imported_nvlabs_snapshot_brings_its_discriminator_to_fine_tuning(tmp_path, capsys):
    import pickle

    from stylestudio.cli import main
    from stylestudio.engine.model_store import ModelStore
    from stylestudio.engine.stylegan2.nvlabs_pickle import flatten_state, read_snapshot
    from stylestudio.engine.training.nvlabs_discriminator import discriminator_from_snapshot
    from stylestudio.engine.training.run import TrainSettings, _start, load_discriminator

    assert main(["models", "import", str(SNAPSHOT), "--name", "snap"]) == 0
    D = load_discriminator(ModelStore().info("snap").path)
    assert D is not None and D.config["channel_base"] == 1024 and D.config["channel_max"] == 64
    nv = flatten_state(read_snapshot(SNAPSHOT)["D"])
    ours = D.state_dict()
    pairs = {"from_rgb.weight": "b32.fromrgb.weight", "from_rgb.bias": "b32.fromrgb.bias", "conv.weight": "b4.conv.weight",
             "fc.weight": "b4.fc.weight", "out.bias": "b4.out.bias"}
    pairs.update({f"blocks.b{r}.{layer}.{p}": f"b{r}.{layer}.{p}" for r in (8, 16, 32) for layer in ("conv0", "conv1")
                  for p in ("weight", "bias")})
    pairs.update({f"blocks.b{r}.skip.weight": f"b{r}.skip.weight" for r in (8, 16, 32)})
    for mine, theirs in pairs.items():
        assert torch.equal(ours[mine], nv[theirs]), mine
    assert torch.isfinite(D(torch.zeros(4, 3, 32, 32))).all()

    # fine-tuning finds it; a model without one says so in one line, and why
    folder = write_folder(tmp_path / "pics", 4)
    store = ModelStore()
    (tmp_path / "run").mkdir()
    settings = TrainSettings(folder, "snap-ft", from_model="snap", hsr="none", kimg=0.004, batch=4)
    trainer, notes, _ = _start(settings, store, tmp_path / "run", torch.device("cpu"), ONE, lambda *a: None, None)
    assert not any("no discriminator" in n for n in notes)
    assert all(torch.equal(a, b) for a, b in zip(trainer.D.state_dict().values(), D.state_dict().values()))
    (store.info("snap").path / "discriminator.pt").unlink()  # as imported before discriminators were converted
    _, notes, _ = _start(settings, store, tmp_path / "run", torch.device("cpu"), ONE, lambda *a: None, None)
    said = [n for n in notes if "no discriminator" in n]
    assert len(said) == 1 and "'snap'" in said[0] and "import the .pkl again" in said[0] and "\n" not in said[0]

    empty = tmp_path / "no-d.pkl"
    empty.write_bytes(pickle.dumps({"training_set_kwargs": {}}))
    assert discriminator_from_snapshot(empty) == (None, "no-d.pkl holds no discriminator (D)")
