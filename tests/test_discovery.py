"""ContraFeat discovery: navigator, losses, training on a tiny generator, reproducibility, the
direction library with per-row weights, and the Discover task."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch

from stylestudio.engine.directions.library import Direction, DirectionLibrary
from stylestudio.engine.discovery import losses
from stylestudio.engine.discovery.navigator import Basis, Navigator, diversity_loss, live_rows, pca_basis
from stylestudio.engine.discovery.trainer import (DiscoverySettings, DiscoveryTrainer, baseline_library,
                                                  direction_strips)
from stylestudio.errors import Cancelled, InputError

from test_gui_support import TINY, ensure_test_model
from zip_json import edit_zip_json

FAST = dict(directions=4, size=32, sensor="generator", q=8, basis_samples=1000, minutes=None)


@pytest.fixture(scope="module")
def tiny():
    torch.set_num_threads(1)
    return ensure_test_model(TINY)


def _basis(q: int = 4, dim: int = 6) -> Basis:
    return Basis("pca", np.eye(q, dim, dtype=np.float32), np.diag(np.arange(1.0, q + 1)), np.zeros(dim, np.float32))


# ---- navigator -------------------------------------------------------------------------------------


def test_navigator_shapes_and_attention_on_live_rows_only():
    nav = Navigator(_basis(), num_ws=7, rows=[0, 2, 5], k=3, seed=1)
    a = nav.attention()
    assert a.shape == (3, 3) and torch.allclose(a.sum(1), torch.ones(3))
    w = nav.row_weights()
    assert w.shape == (3, 7)
    assert torch.all(w[:, [1, 3, 4, 6]] == 0) and torch.all(w[:, [0, 2, 5]] > 0)
    assert torch.allclose(w.sum(1), torch.full((3,), 3.0))  # attention × live rows
    delta = nav()
    assert delta.shape == (3, 7, 6)
    assert torch.all(delta[:, [1, 3, 4, 6]] == 0)
    # d_k lies in the span of the basis (the last two W dimensions are outside it)
    assert torch.all(delta[..., 4:] == 0)
    u = nav.unit_vectors()
    assert torch.allclose(u.norm(dim=1), torch.ones(3), atol=1e-5)
    # the step is W's natural spread along d_k: sqrt(cᵀCc / cᵀc)
    c = nav.coeffs.detach()
    expect = ((c.pow(2) * torch.arange(1.0, 5)).sum(1) / c.pow(2).sum(1)).sqrt()
    assert torch.allclose(nav.spread(), expect, atol=1e-5)


def test_smoothing_spreads_attention_to_neighbour_rows():
    nav = Navigator(_basis(), num_ws=5, rows=[0, 1, 2, 3, 4], k=1, smooth=True)
    with torch.no_grad():
        nav.logits.copy_(torch.tensor([[-30.0, -30.0, 30.0, -30.0, -30.0]]))
    a = nav.attention()[0].detach()
    assert torch.allclose(a.sum(), torch.tensor(1.0))
    assert a[2] == pytest.approx(0.5, abs=1e-4) and a[1] == pytest.approx(0.25, abs=1e-4) and a[0] < 1e-4


def test_training_step_bounds_a_one_row_direction_at_two_deviations(tiny):
    """By default s ~ U[−1, 1]·2/L (L live rows): a direction whose attention sits on one row moves
    that row by at most 2 natural standard deviations while training, as the authors' attention
    (summing to 1, no rescaling) does; an explicit scale still wins."""
    t = DiscoveryTrainer(tiny, DiscoverySettings(**FAST, steps=1))
    rows = live_rows(tiny)
    assert t.amount_scale == pytest.approx(2.0 / len(rows))
    with torch.no_grad():
        t.navigator.logits.fill_(-30.0)
        t.navigator.logits[:, 0] = 30.0  # every direction on the first live row
        delta = t.navigator()  # one natural standard deviation per slider unit
        per_row = delta.norm(dim=2) / (t.navigator.unit_vectors() * t.navigator.spread()[:, None]).norm(dim=1)[:, None]
    most = float(t._amounts(10_000).abs().max())
    assert most <= t.amount_scale and most * float(per_row.max()) == pytest.approx(2.0, rel=1e-3)
    assert DiscoveryTrainer(tiny, DiscoverySettings(**FAST, steps=1, scale=1.5)).amount_scale == 1.5


def test_live_rows_follow_the_style_layout(tiny):
    assert live_rows(tiny) == sorted({l.w_index for l in tiny.style_layout})


@pytest.mark.slow  # converts the default model when no earlier test has
def test_live_rows_of_the_default_model_skip_unused_rows(default_generator):
    rows = live_rows(default_generator)
    assert len(rows) < default_generator.num_ws  # MobileStyleGAN's to_img rows feed nothing but the last
    s = DiscoverySettings(**{**FAST, "steps": 1, "size": 32, "basis_samples": 500})
    t = DiscoveryTrainer(default_generator, s)
    t.step()
    dead = sorted(set(range(default_generator.num_ws)) - set(rows))
    assert np.all(t.row_weights()[:, dead] == 0) and np.all(t.row_weights()[:, rows] > 0)


def test_pca_basis_is_orthonormal_and_ordered(tiny):
    b = pca_basis(tiny, q=6, samples=800, seed=0)
    assert np.allclose(b.vectors @ b.vectors.T, np.eye(6), atol=1e-4)
    var = np.diag(b.covariance)
    assert np.all(np.diff(var) <= 1e-9)


# ---- losses ----------------------------------------------------------------------------------------


def test_norm_mask_is_min_max_normalised():
    d = torch.randn(3, 5, 4, 4)
    m = losses.norm_mask(d)
    assert m.shape == (3, 4, 4)
    assert torch.allclose(m.flatten(1).max(1).values, torch.ones(3), atol=1e-4)
    assert torch.allclose(m.flatten(1).min(1).values, torch.zeros(3), atol=1e-6)


def test_masked_cos2_by_hand():
    a = torch.tensor([[[[1.0, 1.0]], [[0.0, 0.0]]]])  # two positions, vectors (1,0) and (1,0)
    b = torch.tensor([[[[2.0, 0.0]], [[0.0, 3.0]]]])  # (2,0): cos 1; (0,3): cos 0
    mask = torch.tensor([[[0.5, 1.0]]])
    assert float(losses.masked_cos2(a, b, mask)) == pytest.approx(0.5 / 1.5, abs=1e-5)


def test_a_positive_pair_scores_lower_than_a_negative_one():
    g = torch.Generator().manual_seed(0)
    dq = torch.randn(2, 8, 5, 5, generator=g)
    same = 3.0 * dq  # the same change, larger
    other = torch.randn(2, 8, 5, 5, generator=g)
    good = losses.binary_layer_loss(dq, same, other)
    bad = losses.binary_layer_loss(dq, other, same)
    assert torch.all(good < bad)
    assert torch.all(good < -0.5) and torch.all(bad > 0.5)
    # sign does not matter: a direction may move features either way
    assert torch.allclose(losses.binary_layer_loss(dq, -same, other), good, atol=1e-5)
    # the five-part batch layout of binary_loss
    p1, p2 = torch.randn(2, 2, 8, 5, 5, generator=g)
    feats = [torch.cat([p1, p2, p1 + dq, p2 + same, p2 + other])]
    assert float(losses.binary_loss(feats)) == pytest.approx(float(good.mean()), abs=1e-5)


def test_prototype_loss_prefers_the_matching_prototype():
    g = torch.Generator().manual_seed(1)
    protos = torch.randn(3, 6, 4, 4, generator=g)
    before = torch.randn(3, 6, 4, 4, generator=g)
    after = before + 2.0 * protos  # sample i changes like prototype i
    feats = [torch.cat([before, after])]
    sim = losses.prototype_similarity(after - before, protos)
    assert torch.allclose(torch.diagonal(sim), torch.ones(3), atol=1e-4)
    right = losses.prototype_loss(feats, [protos], torch.tensor([0, 1, 2]))
    wrong = losses.prototype_loss(feats, [protos], torch.tensor([1, 2, 0]))
    assert float(right) < float(wrong)
    assert float(right) == pytest.approx(float(-1 + (sim.sum() - torch.diagonal(sim).sum()) / 6), abs=1e-4)


def test_diversity_is_zero_for_orthogonal_and_counts_pairs_when_equal():
    eye = torch.eye(3).view(3, 1, 3).repeat(1, 2, 1)
    assert float(diversity_loss(eye)) == pytest.approx(0.0, abs=1e-6)
    same = torch.ones(3, 2, 3)
    assert float(diversity_loss(same)) == pytest.approx(6.0, abs=1e-4)  # 3·2 ordered pairs, cos² = 1


# ---- training ---------------------------------------------------------------------------------------


def test_training_on_a_tiny_generator_lowers_the_loss(tiny):
    t = DiscoveryTrainer(tiny, DiscoverySettings(**FAST, steps=40, seed=1))
    with torch.no_grad():
        before = [float(t.loss()[1]) for _ in range(4)]  # the untrained contrast on fresh batches
    t.train()
    with torch.no_grad():
        after = [float(t.loss()[1]) for _ in range(4)]
    hist = np.array(t.history)
    assert len(hist) == 40 and np.all(np.isfinite(hist))
    assert np.mean(after) < np.mean(before) - 0.05, (before, after)
    assert hist[-5:, 2].mean() < hist[:5, 2].mean()  # the diversity term falls too


def test_prototype_variant_trains(tiny):
    s = DiscoverySettings(**{**FAST, "sensor": "vgg16-relu3_3"}, method="contrafeat-proto", steps=2, seed=2)
    t = DiscoveryTrainer(tiny, s)
    p0 = t.learned.prototypes.detach().clone()
    t.train()
    assert not torch.equal(p0, t.learned.prototypes.detach())
    assert t.learned.prototypes.shape == (4, 3, 32, 32)


def test_a_run_is_reproducible_from_its_seed(tiny):
    def run(seed: int):
        t = DiscoveryTrainer(tiny, DiscoverySettings(**FAST, steps=3, seed=seed))
        t.train()
        return t.navigator.logits.detach().clone(), t.navigator.coeffs.detach().clone(), t.history

    a, b, c = run(5), run(5), run(6)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and a[2] == b[2]
    assert not torch.equal(a[1], c[1])


def test_training_is_cancelled_between_steps(tiny):
    t = DiscoveryTrainer(tiny, DiscoverySettings(**FAST, steps=100))
    with pytest.raises(Cancelled):
        t.train(cancel=lambda: t.step_count >= 2)
    assert t.step_count == 2


def test_checkpoint_resumes_to_the_same_state(tiny, tmp_path):
    s = DiscoverySettings(**FAST, steps=4, seed=3)
    full = DiscoveryTrainer(tiny, s)
    full.train()
    half = DiscoveryTrainer(tiny, DiscoverySettings(**FAST, steps=2, seed=3))
    half.train()
    half.save_checkpoint(tmp_path / "ck.pt")
    resumed = DiscoveryTrainer(tiny, s)
    resumed.load_checkpoint(tmp_path / "ck.pt")
    resumed.train()
    assert torch.equal(resumed.navigator.coeffs, full.navigator.coeffs)
    assert resumed.history == full.history


# ---- the library ------------------------------------------------------------------------------------


def test_library_round_trip_with_row_weights(tiny, tmp_path):
    t = DiscoveryTrainer(tiny, DiscoverySettings(**FAST, steps=2))
    t.train()
    lib = t.library(TINY)
    assert lib.names() == ["direction_1", "direction_2", "direction_3", "direction_4"]
    lib.save(tmp_path / "d.ssdir")
    with zipfile.ZipFile(tmp_path / "d.ssdir") as zf:
        assert json.loads(zf.read("library.json"))["format_version"] == 2
    back = DirectionLibrary.load(tmp_path / "d.ssdir")
    for name in lib.names():
        a, b = lib[name], back[name]
        assert b.row_weights == pytest.approx(a.row_weights) and b.layers == a.layers and b.unit == pytest.approx(a.unit)
        assert torch.allclose(back.delta(name, 1.5, tiny.num_ws), lib.delta(name, 1.5, tiny.num_ws))
    # the library delta at ±1 unit is what training applied at s = ±1
    with torch.no_grad():
        trained = t.navigator()[0]
    assert torch.allclose(lib.delta("direction_1", 1.0, tiny.num_ws), trained, atol=1e-5)
    with pytest.raises(InputError, match="weights 8 W\\+ rows"):
        lib.delta("direction_1", 1.0, tiny.num_ws + 1)


def test_libraries_without_row_weights_still_load_and_act_on_their_layers(tmp_path):
    v = np.array([1.0, 0.0, 0.0], np.float32)
    old = DirectionLibrary("m", [Direction("age", "Age", v, (1, 2), 2.0)])
    old.save(tmp_path / "old.ssdir")
    with zipfile.ZipFile(tmp_path / "old.ssdir") as zf:
        meta = json.loads(zf.read("library.json"))
    assert meta["format_version"] == 1 and "row_weights" not in meta["directions"][0]
    d = DirectionLibrary.load(tmp_path / "old.ssdir").delta("age", 1.0, 4)
    assert torch.equal(d[:, 0], torch.tensor([0.0, 2.0, 2.0, 0.0]))


@pytest.mark.parametrize("weights", [[1.0, float("nan")], [-1.0, 1.0], [1.0] * 100, "abc", {"a": 1}])
def test_bad_row_weights_are_one_line(tmp_path, weights):
    lib = DirectionLibrary("m", [Direction("x", "X", np.ones(3, np.float32), (), 1.0, row_weights=(1.0, 1.0))])
    lib.save(tmp_path / "a.ssdir")
    edit_zip_json(tmp_path / "a.ssdir", tmp_path / "b.ssdir",
                  lambda meta: meta["directions"][0].update(row_weights=weights))
    with pytest.raises(InputError, match="b.ssdir: damaged direction library"):
        DirectionLibrary.load(tmp_path / "b.ssdir")


def test_baselines_and_strips(tiny):
    s = DiscoverySettings(method="pca", directions=3, q=5, basis_samples=1000)
    lib = baseline_library(tiny, TINY, s)
    vec = np.stack([lib[n].vector for n in lib.names()])
    assert np.allclose(vec @ vec.T, np.eye(3), atol=1e-4)  # principal components
    assert all(lib[n].row_weights == (1.0,) * tiny.num_ws for n in lib.names())
    sefa = baseline_library(tiny, TINY, DiscoverySettings(method="sefa", directions=3, q=5, basis_samples=1000))
    assert not np.allclose(np.abs(sefa["direction_1"].vector), np.abs(lib["direction_1"].vector), atol=1e-2)
    strips = direction_strips(tiny, lib, seed=7, size=16)
    assert strips.shape == (3, 5, 16, 16, 3) and strips.dtype == np.uint8
    assert np.array_equal(strips[0, 2], strips[1, 2])  # amount 0 is the same face
    assert not np.array_equal(strips[0, 0], strips[0, 4])


# ---- the task ---------------------------------------------------------------------------------------


def test_discover_task_saves_a_library_the_renderer_uses():
    from stylestudio.engine import tasks
    from stylestudio.engine.document import EditDocument, SeedSource
    from stylestudio.engine.edits.direction import DirectionEdit
    from stylestudio.engine.session import Session
    from stylestudio.engine.tasks.discover import Discover

    ensure_test_model(TINY)
    session = Session(device="cpu")
    seen, updates = [], []
    req = Discover(TINY, "found", DiscoverySettings(**FAST, steps=3), strip_seconds=0.0, on_update=updates.append)
    lib, path = tasks.run(session, req, lambda m, f: seen.append((m, f)))
    assert path.name == "found.ssdir" and path.is_file() and "directions" in str(path.parent)
    assert any("loss" in m for m, _ in seen) and seen[-1][1] == 1.0
    assert [u.step for u in updates] == [1, 2, 3, 3] and updates[-1].strips.shape[:2] == (4, 5)
    assert [u.final for u in updates] == [False, False, False, True]
    assert updates[0].row_weights.shape == (4, session.model(TINY).generator.num_ws)
    assert tasks.describe_result(req, (lib, path)).startswith("4 directions → found.ssdir")
    doc = EditDocument(model=TINY, source=SeedSource(seed=7, psi=0.7))
    moved = doc.with_edit(DirectionEdit(library="found", name="direction_2", amount=2.0))
    a, b = session.render(doc, "final", 32), session.render(moved, "final", 32)
    assert (a - b).abs().mean() > 1e-3
    with pytest.raises(InputError, match="taken by StyleStudio"):
        tasks.run(session, Discover(TINY, "attributes", DiscoverySettings(**FAST, steps=1)))


# ---- many processes ---------------------------------------------------------------------------------


@pytest.mark.slow  # two interpreters start and import torch: about a minute here
def test_two_processes_under_torchrun(tmp_path):
    """DDP with gloo on 127.0.0.1: averaged gradients equal the full batch's (the mean of the two
    ranks' batches computed here in one process), parameters agree on both ranks after k steps, and
    a checkpoint written by rank 0 resumes every rank to the same state."""
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path

    from discovery_ddp_worker import tiny as ddp_tiny

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    worker = Path(__file__).with_name("discovery_ddp_worker.py")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
                           "127.0.0.1", "--master_port", str(port), str(worker), str(tmp_path)],
                          capture_output=True, text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    load = lambda name: torch.load(tmp_path / name, weights_only=True)  # noqa: E731

    gen = ddp_tiny()
    basis = pca_basis(gen, q=6, samples=500, seed=0)
    s = DiscoverySettings(directions=3, size=32, sensor="generator", q=6, minutes=None, steps=4, seed=11)
    per_rank = []
    for rank in (0, 1):  # one process plays each rank's sampling stream
        t = DiscoveryTrainer(gen, s, basis=basis)
        t.rng.manual_seed(s.seed * 1000 + 17 + rank)
        t.optimizer.zero_grad()
        t.loss()[0].backward()
        per_rank.append({n: p.grad.clone() for n, p in t.learned.named_parameters()})
    for rank in (0, 1):
        got = load(f"grads{rank}.pt")
        for n, g in got.items():
            assert torch.allclose(g, (per_rank[0][n] + per_rank[1][n]) / 2, atol=1e-5, rtol=1e-4), n
    p0, p1 = load("params0.pt"), load("params1.pt")
    assert all(torch.equal(p0[n], p1[n]) for n in p0)
    assert not torch.equal(p0["navigator.coeffs"], DiscoveryTrainer(gen, s, basis=basis).navigator.coeffs)
    r0, r1 = load("resumed0.pt"), load("resumed1.pt")
    assert all(torch.allclose(r0[n], p0[n], atol=1e-6) and torch.allclose(r1[n], p1[n], atol=1e-6) for n in p0)
    f0, f1 = load("finished0.pt"), load("finished1.pt")
    assert f0["steps"] == f1["steps"] == 2 and all(torch.equal(f0[n], f1[n]) for n in p0)


def test_pca_with_learned_attention_keeps_the_components(tiny):
    s = DiscoverySettings(**FAST, steps=2, train_vectors=False)
    t = DiscoveryTrainer(tiny, s)
    logits = t.navigator.logits.detach().clone()
    t.train()
    u = t.navigator.unit_vectors().detach().numpy()
    assert np.allclose(np.abs(u), np.abs(t.basis.vectors[:4]), atol=1e-5)
    assert not torch.equal(logits, t.navigator.logits.detach())
    with pytest.raises(ValueError, match="q ≥ directions"):
        DiscoverySettings(**{**FAST, "q": 2}, steps=1, train_vectors=False)


def test_library_tasks_list_rename_and_remove():
    from stylestudio.engine import tasks
    from stylestudio.engine.session import Session
    from stylestudio.engine.tasks.discover import (DiscoveredLibraries, Discover, RemoveDirection,
                                                   RenameDirection)

    ensure_test_model(TINY)
    session = Session(device="cpu")
    tasks.run(session, Discover(TINY, "listed", DiscoverySettings(method="pca", directions=3, q=5, basis_samples=500)))
    libs = tasks.run(session, DiscoveredLibraries(TINY))
    assert [d["name"] for d in libs["listed"]] == ["direction_1", "direction_2", "direction_3"]
    assert len(libs["listed"][0]["row_weights"]) == 8 and "attributes" not in libs
    desc = tasks.run(session, RenameDirection(TINY, "listed", "direction_2", "Jaw line"))
    assert [d["name"] for d in desc] == ["direction_1", "jaw_line", "direction_3"] and desc[1]["label"] == "Jaw line"
    assert "jaw_line" in session.model(TINY).resources.get("directions", "listed")  # the renderer sees it
    desc = tasks.run(session, RemoveDirection(TINY, "listed", "direction_1"))
    assert [d["name"] for d in desc] == ["jaw_line", "direction_3"]
    assert tasks.run(session, RemoveDirection(TINY, "listed")) == []
    assert "listed" not in tasks.run(session, DiscoveredLibraries(TINY))
    with pytest.raises(InputError, match="no direction library 'listed'"):
        session.model(TINY).resources.get("directions", "listed")


def test_a_renamed_direction_keeps_answering_to_its_former_names(tmp_path):
    """Projects and recipes name a direction; renaming it (even twice, or back) must not break them."""
    rng = np.random.default_rng(0)
    lib = DirectionLibrary("m", [Direction(n, n, rng.normal(size=4).astype(np.float32), (), 1.0)
                                 for n in ("direction_1", "direction_2")], kind="discovered")
    v1 = lib["direction_1"].vector
    lib.rename("direction_1", "jaw", "Jaw")
    lib.rename("jaw", "jaw_line", "Jaw line")
    assert lib.names() == ["jaw_line", "direction_2"]
    for former in ("direction_1", "jaw", "jaw_line"):
        assert former in lib and lib.canonical(former) == "jaw_line" and np.array_equal(lib[former].vector, v1)
    assert sorted(lib.former_names("jaw_line")) == ["direction_1", "jaw"]
    assert torch.equal(lib.delta("direction_1", 1.5, 3, keep=("direction_2",)),
                       lib.delta("jaw_line", 1.5, 3, keep=("direction_2",)))
    with pytest.raises(InputError, match="already"):
        lib.rename("direction_2", "jaw_line")
    path = tmp_path / "l.ssdir"
    lib.save(path)
    back = DirectionLibrary.load(path)  # the former names are saved with the library
    assert back.canonical("direction_1") == "jaw_line" and back.meta["renamed"] == lib.meta["renamed"]
    back.rename("jaw_line", "direction_1")  # renamed back: no alias points at itself
    assert back.names() == ["direction_1", "direction_2"]
    assert back.renamed == {"jaw": "direction_1", "jaw_line": "direction_1"}
    back.remove("jaw")  # removing by a former name removes the direction and its former names
    assert back.names() == ["direction_2"] and back.renamed == {} and "jaw" not in back
    back.meta["renamed"] = {"a": "b", "b": "a"}  # a hand-edited cycle is not followed forever
    assert "a" not in back
