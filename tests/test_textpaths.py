"""ContraCLIP text paths: the RBF text directions, the latent warping paths, the InfoNCE loss, a
short training on a tiny generator with the tiny CLIP oracle, the PathEdit document kind and the
CLI (encoders import → textpaths train/list/show → edit --library)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stylestudio.cli import main
from stylestudio.engine.text.contraclip import (LatentPaths, dipole_gammas, follow, path_loss, rbf_pair,
                                                text_directions)
from test_gui_support import TINY

TINY_MODEL = "stylegan2_tiny/network-snapshot.pkl"
PAIRS = [("smile", "a smiling face", "a neutral face"), ("old", "an old person", "a young person"),
         ("woman", "a woman", "a man")]


def test_rbf_text_direction_matches_autograd_and_finite_difference():
    g = torch.Generator().manual_seed(1)
    pos, neg = F.normalize(torch.randn(3, 8, generator=g, dtype=torch.float64), dim=-1), \
        F.normalize(torch.randn(3, 8, generator=g, dtype=torch.float64), dim=-1)
    gamma = dipole_gammas(pos, neg)
    assert torch.allclose(torch.exp(-gamma * (pos - neg).pow(2).sum(-1)), torch.full((3,), 0.5, dtype=torch.float64))
    phi = torch.randn(4, 8, generator=g, dtype=torch.float64).requires_grad_(True)
    u = text_directions(phi, pos, neg, gamma)
    for k in range(3):
        (grad,) = torch.autograd.grad(rbf_pair(phi, pos, neg, gamma)[:, k].sum(), phi)
        assert torch.allclose(u[:, k], F.normalize(grad, dim=-1), atol=1e-10)
        h, e = 1e-6, torch.zeros(8, dtype=torch.float64)
        fd = []
        for j in range(8):
            e.zero_()
            e[j] = h
            fd.append((rbf_pair(phi + e, pos, neg, gamma)[:, k] - rbf_pair(phi - e, pos, neg, gamma)[:, k]) / (2 * h))
        assert torch.allclose(u[:, k], F.normalize(torch.stack(fd, 1), dim=-1), atol=1e-6)


def test_latent_path_step_is_the_normalised_rbf_gradient():
    torch.manual_seed(0)
    paths = LatentPaths(2, 6, radius=2.0, dipoles=3).double()
    x = torch.randn(5, 6, dtype=torch.float64, requires_grad=True)
    k = torch.tensor([0, 1, 1, 0, 1])
    sv, alpha, gamma = paths.support[k], paths.alpha[k], paths.log_gamma[k].exp()
    g = (alpha * torch.exp(-gamma[:, None] * (x[:, None] - sv).pow(2).sum(-1))).sum()
    (grad,) = torch.autograd.grad(g, x)
    assert torch.allclose(paths.direction_at(x, k), F.normalize(grad, dim=-1), atol=1e-10)
    # the step is ε long and the path bends: following it in 8 small steps ≠ one straight jump
    moved = paths.step(x.detach(), k, torch.full((5,), 0.3, dtype=torch.float64))
    assert torch.allclose((moved - x).norm(dim=1), torch.full((5,), 0.3, dtype=torch.float64))
    far = follow(paths, x.detach()[:1], 0, 2.0, 1.0)
    straight = paths.step(x.detach()[:1], k[:1], torch.tensor([2.0], dtype=torch.float64))
    assert (far - straight).norm() > 1e-3


def test_infonce_on_hand_made_embeddings():
    e = torch.eye(3)
    target = e[None].expand(2, 3, 3)  # dipole k's direction is axis k, for both images
    k = torch.tensor([0, 2])
    aligned = path_loss(torch.stack([e[0] * 5, e[2] * 0.1]), target, k, tau=0.5)
    expected = -math.log(math.exp(1 / 0.5) / (math.exp(1 / 0.5) + 2))
    assert aligned.item() == pytest.approx(expected, rel=1e-5)
    wrong = path_loss(torch.stack([e[1], e[0]]), target, k, tau=0.5)
    assert wrong.item() == pytest.approx(-math.log(1 / (2 + math.exp(1 / 0.5))), rel=1e-5)
    assert path_loss(torch.stack([e[0], e[2]]), target, k) < 1e-5 < path_loss(torch.stack([e[1], e[0]]), target, k)
    # cossim: 1 − cosine with the own direction only
    assert path_loss(torch.stack([e[0] + e[1], e[2]]), target, k, "cossim").item() == \
        pytest.approx((1 - 1 / math.sqrt(2)) / 2, rel=1e-6)


@pytest.fixture(scope="module")
def tiny_clip(oracle_dir: Path):
    from stylestudio.engine.text.checkpoint import read_state_dict
    from stylestudio.engine.text.clip_model import build_clip
    from stylestudio.engine.text.encoders import ClipEncoder

    return ClipEncoder(build_clip(read_state_dict(oracle_dir / "clip_tiny" / "clip-tiny-openai-format.pt")), "tiny")


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: one thread is fastest, and far faster than two on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_gen():
    from stylestudio.engine.stylegan2.network import StyleGAN2Generator

    torch.manual_seed(0)
    return StyleGAN2Generator(z_dim=32, w_dim=32, img_resolution=32, num_mapping_layers=2, channel_base=512,
                              channel_max=32).eval().requires_grad_(False)


@pytest.mark.parametrize("method", ["contraclip", "linear", "styleclip"])
def test_a_short_training_lowers_the_loss(tiny_gen, tiny_clip, method):
    from stylestudio.engine.text.training import PathTrainer, TrainSettings

    seen = []
    trainer = PathTrainer(tiny_gen, tiny_clip, PAIRS, TrainSettings(method=method, steps=8, batch=4, lr=1e-2))
    lib = trainer.run(lambda message, fraction: seen.append((message, fraction)), None)
    assert lib.meta["eval_loss_end"] < lib.meta["eval_loss_start"] - 0.05
    assert lib.meta["steps"] == 8 and len(lib.meta["loss_curve"]) == 8
    assert "loss" in seen[0][0] and seen[-1][1] == 1.0
    assert trainer.rows == round(tiny_gen.num_ws * 2 / 3)


def test_training_is_cancelled(tiny_gen, tiny_clip):
    from stylestudio.engine.progress import CancelToken
    from stylestudio.engine.text.training import PathTrainer, TrainSettings
    from stylestudio.errors import Cancelled

    token = CancelToken()
    trainer = PathTrainer(tiny_gen, tiny_clip, PAIRS[:2], TrainSettings(steps=1000, batch=2))

    def progress(message: str, fraction: float) -> None:
        if "step 2," in message:
            token.cancel()

    with pytest.raises(Cancelled):
        trainer.run(progress, token)
    assert len(trainer.losses) == 2


def test_a_pair_without_two_sides_is_refused_by_name(tiny_gen, tiny_clip):
    """The same sentence twice (even in other case or spacing), a pair given twice, or two sentences
    the encoder reads as one point: one line naming the pair, before any training (a path between
    one point and itself has an infinite γ and a constant loss: it would train and do nothing)."""
    from stylestudio.engine.text.library import parse_pairs
    from stylestudio.engine.text.training import PathTrainer, TrainSettings
    from stylestudio.errors import InputError

    with pytest.raises(InputError, match="'a face\\|A  Face ': both sentences say the same"):
        parse_pairs(["a face|A  Face "])
    with pytest.raises(InputError, match="pair 2 .* repeats pair 1"):
        parse_pairs(["a smiling face|a sad face", "A smiling face | a sad face"], ["smile", "grin"])
    assert len(parse_pairs(["a smiling face|a sad face", "a sad face|a smiling face"])) == 2  # reversed: allowed

    class Deaf:  # reads every sentence as the same point
        def __getattr__(self, name):
            return getattr(tiny_clip, name)

        def encode_text(self, texts):
            return torch.ones(len(texts), 8)

    with pytest.raises(InputError, match="pair 'smile': the encoder reads 'a smiling face' and 'a sad face' as the same"):
        PathTrainer(tiny_gen, Deaf(), [("smile", "a smiling face", "a sad face")], TrainSettings(steps=1, batch=2))


def test_path_edit_round_trip_and_reproducible(tiny_gen, tiny_clip, tmp_path, monkeypatch):
    from stylestudio.engine.document import EditDocument, SeedSource
    from stylestudio.engine.edits.path import PathEdit
    from stylestudio.engine.project import load_project, save_project
    from stylestudio.engine.render import Renderer
    from stylestudio.engine.text.library import TextPathLibrary, library_file
    from stylestudio.engine.text.training import PathTrainer, TrainSettings

    lib = PathTrainer(tiny_gen, tiny_clip, PAIRS, TrainSettings(steps=2, batch=2)).run(lambda m, f: None, None)
    lib.model = "tinygen"
    path = lib.save(library_file("tinygen", "mine"))
    again = TextPathLibrary.load(path)
    for k, v in lib.latent.state_dict().items():
        assert torch.equal(v, again.latent.state_dict()[k])

    doc = EditDocument(model="tinygen", source=SeedSource(seed=7))
    edited = doc.with_edit(PathEdit(library="mine", name="smile", amount=2.0))
    project = tmp_path / "p.stylestudio"
    save_project(project, edited)
    reopened = load_project(project)
    assert reopened.edits[0] == edited.edits[0]

    renderer = Renderer(tiny_gen, "tinygen")
    base = renderer.render(doc)
    first, second = renderer.render(edited), Renderer(tiny_gen, "tinygen").render(reopened)
    assert torch.equal(first, second)  # reproducible across renderers and a save/load
    assert (first - base).abs().mean() > 1e-3
    ws = torch.cat([SeedSource(seed=s).latent(tiny_gen) for s in (7, 8)])
    moved = again.move("smile", ws, 2.0, tiny_gen.w_avg)
    delta = (moved - ws)[:, 0]
    assert not torch.allclose(F.normalize(delta[0], dim=0), F.normalize(delta[1], dim=0), atol=1e-3)  # face-dependent


def test_a_path_trained_on_fewer_rows_joins_a_library_and_moves_only_its_rows(tiny_gen, tiny_clip, tmp_path):
    """The shipped library mixes paths of 2/3 of the rows with an age path kept off the fine rows."""
    from zip_json import edit_zip_json

    from stylestudio.engine.document import SeedSource
    from stylestudio.engine.text.library import TextPathLibrary
    from stylestudio.engine.text.training import PathTrainer, TrainSettings
    from stylestudio.errors import InputError

    full = PathTrainer(tiny_gen, tiny_clip, PAIRS[:2], TrainSettings(steps=1, batch=2)).run(lambda m, f: None, None)
    short = PathTrainer(tiny_gen, tiny_clip, PAIRS, TrainSettings(steps=1, batch=2, rows=2)).run(lambda m, f: None, None)
    assert full.rows > 2 and short.rows == 2
    with pytest.raises(InputError, match="already has a path 'smile'"):
        full.adopt(short, ["smile"])
    with pytest.raises(InputError, match="cannot join"):
        short.adopt(full, ["old"])
    short.model = "another"
    with pytest.raises(InputError, match="model 'another' cannot join"):
        full.adopt(short, ["woman"])
    short.model = full.model
    full.adopt(short, ["woman"])
    assert full.names() == ["smile", "old", "woman"] and [p.rows for p in full.paths] == [None, None, 2]
    again = TextPathLibrary.load(full.save(tmp_path / "mixed.sstp"))
    ws = torch.cat([SeedSource(seed=s).latent(tiny_gen) for s in (7, 8)])
    for lib in (full, again):
        moved = lib.move("woman", ws, 2.0, tiny_gen.w_avg)
        assert torch.equal(moved, short.move("woman", ws, 2.0, tiny_gen.w_avg))
        assert torch.equal(moved[:, 2:], ws[:, 2:]) and (moved[:, :2] - ws[:, :2]).abs().amax() > 0
        assert torch.equal(lib.move("smile", ws, 1.0, tiny_gen.w_avg),
                           full.subset(["smile"]).move("smile", ws, 1.0, tiny_gen.w_avg))
    # a hand-edited file whose path claims more rows than its library has: one line, nothing loaded
    edit_zip_json(tmp_path / "mixed.sstp", tmp_path / "edited.sstp",
                  lambda meta: meta["paths"][2].update(rows=full.rows + 1))
    with pytest.raises(InputError, match="edited.sstp: damaged text path library.*rows"):
        TextPathLibrary.load(tmp_path / "edited.sstp")


def test_damaged_library_is_one_line(tmp_path):
    from stylestudio.engine.text.library import TextPathLibrary
    from stylestudio.errors import InputError

    bad = tmp_path / "bad.sstp"
    bad.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(InputError, match="bad.sstp: damaged text path library"):
        TextPathLibrary.load(bad)


def test_cli_ctrl_c_finishes_the_training_and_keeps_its_paths(oracle_dir: Path, capsys, press_ctrl_c):
    """The CLI's first Ctrl+C is the panel's Finish now: the paths learnt so far are saved."""
    from stylestudio.commands import textpaths
    from stylestudio.engine.text.library import TextPathLibrary, find_library

    assert main(["models", "import", str(oracle_dir / TINY_MODEL), "--name", "tpmodel_c"]) == 0
    assert main(["encoders", "import", str(oracle_dir / "clip_tiny" / "clip-tiny-openai-format.pt"),
                 "--name", "tinyclip_c"]) == 0
    capsys.readouterr()
    pressed = press_ctrl_c(textpaths, "step 2,")
    rc = main(["textpaths", "train", "--model", "tpmodel_c", "--encoder", "tinyclip_c", "--pair", "a smiling face|a face",
               "--steps", "50", "--batch", "2", "--name", "early", "--rows", "3"])
    out = capsys.readouterr()
    assert pressed and rc == 0, out.err
    assert "finishing the training after the current step" in out.err
    assert "1 path (smiling), 2 steps (finished early)" in out.out
    lib = TextPathLibrary.load(find_library("tpmodel_c", "early"))
    assert lib.meta["finished_early"] and lib.meta["steps"] == 2


def test_cli_end_to_end(oracle_dir: Path, tmp_path: Path, capsys):
    assert main(["models", "import", str(oracle_dir / TINY_MODEL), "--name", "tpmodel"]) == 0
    assert main(["encoders", "import", str(oracle_dir / "clip_tiny" / "clip-tiny-openai-format.pt"),
                 "--name", "tinyclip"]) == 0
    capsys.readouterr()
    argv = ["textpaths", "train", "--model", "tpmodel", "--encoder", "tinyclip", "--pair", "a smiling face|a face",
            "--pair", "an old person|a young person", "--as", "happy", "--steps", "3", "--batch", "2",
            "--name", "words", "--rows", "3"]
    assert main(argv) == 0
    out = capsys.readouterr()
    assert "2 paths (happy, old)" in out.out and "step 3, loss" in out.err
    assert main(["textpaths", "list", "--model", "tpmodel"]) == 0
    assert "words" in capsys.readouterr().out
    assert main(["textpaths", "show", "words", "--model", "tpmodel"]) == 0
    out = capsys.readouterr().out
    assert "'an old person'" in out and "W+ rows 0–2" in out
    from stylestudio.engine.text.library import TextPathLibrary, find_library

    lib = TextPathLibrary.load(find_library("tpmodel", "words"))
    ws = torch.zeros(2, 6, lib.w_dim) + torch.randn(2, 1, lib.w_dim)
    moved = lib.move("old", ws, 2.0, torch.zeros(lib.w_dim))
    changed = (moved - ws).abs().amax(dim=(0, 2))
    assert lib.rows == 3 and bool((changed[:3] > 0).all()) and bool((changed[3:] == 0).all())
    out_png, project = tmp_path / "old.png", tmp_path / "old.stylestudio"
    assert main(["edit", "--model", "tpmodel", "--source", "seed:7", "--library", "words", "--set", "old=+2",
                 "-o", str(out_png), "--save-project", str(project)]) == 0
    assert out_png.is_file() and project.is_file()
    plain = tmp_path / "plain.png"
    assert main(["generate", "--model", "tpmodel", "--seed", "7", "-o", str(plain)]) == 0
    from PIL import Image

    assert np.abs(np.asarray(Image.open(out_png), float) - np.asarray(Image.open(plain), float)).mean() > 0.5
    # wrong input: one line each
    for bad in (["textpaths", "train", "--model", "tpmodel", "--pair", "no bar", "--steps", "1", "--name", "x"],
                ["edit", "--model", "tpmodel", "--source", "seed:7", "--library", "words", "--set", "nope=1",
                 "-o", str(tmp_path / "n.png")],
                ["textpaths", "show", "missing", "--model", "tpmodel"],
                ["textpaths", "train", "--model", "tpmodel", "--pair", "a|b", "--steps", "1", "--name", "x",
                 "--encoder", "nosuch"],
                ["textpaths", "train", "--model", "tpmodel", "--pair", "a|b", "--steps", "1", "--name", "x",
                 "--encoder", "tinyclip", "--rows", "40"]):
        assert main(bad) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and len(err.splitlines()) == 1
    # training again under the same name says, before the job, what it replaces
    again = list(argv)
    again[again.index("--steps") + 1] = "1"
    assert main(again) == 0
    assert capsys.readouterr().out.startswith("note: replaces your text path library 'words' (2 paths: happy, old);")


@pytest.mark.slow  # two interpreters start and import torch
def test_two_processes_under_torchrun(tmp_path: Path, oracle_dir: Path):
    """gloo on 127.0.0.1: each rank draws its own faces, the gradients are averaged (= the mean of the
    two ranks' gradients computed here in one process) and both ranks end with identical paths."""
    import os
    import socket
    import subprocess
    import sys

    from textpaths_ddp_worker import PAIRS as DDP_PAIRS
    from textpaths_ddp_worker import SETTINGS, encoder, tiny

    from stylestudio.engine.text.training import PathTrainer

    clip_file = oracle_dir / "clip_tiny" / "clip-tiny-openai-format.pt"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    worker = Path(__file__).with_name("textpaths_ddp_worker.py")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
                           "127.0.0.1", "--master_port", str(port), str(worker), str(tmp_path), str(clip_file)],
                          capture_output=True, text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    load = lambda name: torch.load(tmp_path / name, weights_only=True)  # noqa: E731
    p0, p1 = load("params0.pt"), load("params1.pt")
    assert all(torch.equal(p0[n], p1[n]) for n in p0)
    gen, enc = tiny(), encoder(clip_file)
    per_rank = []
    for rank in (0, 1):  # one process plays each rank's sampling stream
        t = PathTrainer(gen, enc, DDP_PAIRS, SETTINGS)
        t.rng.manual_seed(SETTINGS.seed * 1000 + 17 + rank)
        with gen.whole_stages():
            t.loss_of(*t.sample(SETTINGS.batch)).backward()
        per_rank.append({n: p.grad.clone() for n, p in t.paths.named_parameters()})
        assert not torch.equal(p0["support"], t.paths.support)
    for rank in (0, 1):
        for n, g in load(f"grads{rank}.pt").items():
            assert torch.allclose(g, (per_rank[0][n] + per_rank[1][n]) / 2, atol=1e-6, rtol=1e-4), n


@pytest.fixture
def shipped_textpaths(tmp_path: Path, monkeypatch) -> Path:
    """A resources folder like the installed one, plus a shipped text path library ``tpship`` of the
    test model (paths warm, wide): the real shipped ones are for the default model only."""
    from stylestudio import paths
    from test_kept_libraries import _user_textpaths

    real = paths.resources_dir()
    root = tmp_path / "resources"
    root.mkdir()
    for entry in real.iterdir():
        if entry.name != "textpaths":
            (root / entry.name).symlink_to(entry)
    made = _user_textpaths("tpship_src")
    (root / "textpaths" / TINY).mkdir(parents=True)
    made.rename(root / "textpaths" / TINY / "tpship.sstp")
    monkeypatch.setattr(paths, "resources_dir", lambda: root)
    return root / "textpaths" / TINY / "tpship.sstp"


def test_cli_removes_paths_and_libraries_and_never_a_shipped_one(shipped_textpaths: Path, capsys):
    from stylestudio.engine.text.library import TextPathLibrary, library_file
    from test_kept_libraries import _user_textpaths

    mine = _user_textpaths("tpcli")
    try:
        assert main(["textpaths", "remove", "tpcli", "Wide", "--model", TINY]) == 0  # its label, as shown
        assert capsys.readouterr().out.strip() == f"removed Wide from {mine} (1 paths left: warm)"
        assert TextPathLibrary.load(mine).names() == ["warm"]
        for bad, why in ((["tpcli", "warm"], "'warm' is the only path of text path library 'tpcli': remove the "
                                             "library instead"),
                         (["tpcli", "cold"], "no text path 'cold' (have: warm)"),
                         (["tpship"], "text path library 'tpship' ships with StyleStudio and cannot be removed"),
                         (["nosuch"], f"no text path library 'nosuch' for model {TINY!r}")):
            assert main(["textpaths", "remove", *bad, "--model", TINY]) == 2
            assert capsys.readouterr().err.strip() == f"error: {why}"
        assert main(["textpaths", "remove", "tpcli", "--model", TINY]) == 0
        assert not mine.exists() and capsys.readouterr().out.strip() == f"removed {mine}"
        # a path of the shipped library: saved as the user's copy, which hides the shipped one until deleted
        assert main(["textpaths", "remove", "tpship", "warm", "--model", TINY]) == 0
        capsys.readouterr()
        assert TextPathLibrary.load(library_file(TINY, "tpship")).names() == ["wide"]
        assert TextPathLibrary.load(shipped_textpaths).names() == ["warm", "wide"]
        assert main(["textpaths", "list", "--model", TINY]) == 0
        assert "hides the shipped library" in capsys.readouterr().out
        assert main(["textpaths", "remove", "tpship", "--model", TINY]) == 0
        assert capsys.readouterr().out.strip().endswith("; the shipped library of that name is used again")
        assert not library_file(TINY, "tpship").exists() and shipped_textpaths.exists()
    finally:
        mine.unlink(missing_ok=True)
        library_file(TINY, "tpship").unlink(missing_ok=True)


def test_cli_renames_a_path_and_what_named_it_still_draws(shipped_textpaths: Path, tmp_path: Path, capsys):
    from PIL import Image

    from stylestudio.engine.text.library import TextPathLibrary, library_file
    from test_kept_libraries import _user_textpaths

    mine = _user_textpaths("tpren")
    try:
        before, project = tmp_path / "before.png", tmp_path / "p.stylestudio"
        assert main(["edit", "--model", TINY, "--source", "seed:7", "--library", "tpren", "--set", "warm=+2",
                     "-o", str(before), "--save-project", str(project)]) == 0
        capsys.readouterr()
        assert main(["textpaths", "rename", "tpren", "Warm", "Warm glow", "--model", TINY]) == 0
        assert capsys.readouterr().out.strip() == f"Warm → warm_glow ({mine})"
        lib = TextPathLibrary.load(mine)
        assert lib.names() == ["warm_glow", "wide"] and lib.former_names("warm_glow") == ["warm"]
        assert lib.index("warm") == 0  # what named it still finds it
        assert main(["textpaths", "show", "tpren", "--model", TINY]) == 0
        (line,) = [ln for ln in capsys.readouterr().out.splitlines() if "warm_glow" in ln]
        assert line.endswith("(formerly warm)")
        # a project that named it draws the same, with no note (its copy and the installed path agree)
        after = tmp_path / "after.png"
        assert main(["render-project", str(project), "-o", str(after)]) == 0
        assert capsys.readouterr().err == ""
        assert np.array_equal(np.asarray(Image.open(before)), np.asarray(Image.open(after)))
        assert main(["edit", "--model", TINY, "--source", "seed:7", "--library", "tpren", "--set", "warm_glow=+2",
                     "-o", str(after)]) == 0
        assert np.array_equal(np.asarray(Image.open(before)), np.asarray(Image.open(after)))
        # renamed twice: the first name still finds it; a taken or empty name is one line
        assert main(["textpaths", "rename", "tpren", "warm_glow", "glow", "--model", TINY]) == 0
        assert TextPathLibrary.load(mine).index("warm") == 0
        capsys.readouterr()
        for bad, why in ((["glow", "wide"], "there is already a text path 'wide'"),
                         (["glow", "!!"], "'!!' cannot name a text path: use letters or digits"),
                         (["nope", "x"], "no text path 'nope' (have: glow, wide)")):
            assert main(["textpaths", "rename", "tpren", *bad, "--model", TINY]) == 2
            assert capsys.readouterr().err.strip() == f"error: {why}"
        # removing a renamed path forgets its earlier names too
        assert main(["textpaths", "remove", "tpren", "glow", "--model", TINY]) == 0
        assert TextPathLibrary.load(mine).meta.get("renamed") == {}
        capsys.readouterr()
        # a shipped library's path "renamed" to its own name: said, and no user copy is written
        assert main(["textpaths", "rename", "tpship", "wide", "Wide", "--model", TINY]) == 0
        assert capsys.readouterr().out.startswith("wide already has that name; nothing changed")
        assert not library_file(TINY, "tpship").exists()
        # a shipped library's path renamed: the user's copy, the shipped file untouched
        assert main(["textpaths", "rename", "tpship", "wide", "broad", "--model", TINY]) == 0
        assert TextPathLibrary.load(library_file(TINY, "tpship")).names() == ["warm", "broad"]
        assert TextPathLibrary.load(shipped_textpaths).names() == ["warm", "wide"]
    finally:
        mine.unlink(missing_ok=True)
        library_file(TINY, "tpship").unlink(missing_ok=True)
