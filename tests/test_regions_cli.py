"""``stylestudio catalog …`` and ``stylestudio transfer`` end to end.

Fast ones on the tiny StyleGAN2 imported into the test's private model store; the slow one on the
default model with its shipped, named catalog.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stylestudio.cli import main
from stylestudio.engine.imageio import read_recipe

TINY_PKL = Path(__file__).resolve().parents[1].parent / "shared" / "oracle" / "stylegan2_tiny" / "network-snapshot.pkl"
MODEL = "tiny-regions"


@pytest.fixture(scope="module")
def tiny_model(stylestudio_home: Path) -> str:
    if not TINY_PKL.is_file():
        pytest.skip("the tiny oracle model is not present")
    import torch

    torch.set_num_threads(1)
    from stylestudio.engine.model_store import ModelStore

    ModelStore().import_file(TINY_PKL, MODEL)
    rc = main(["catalog", "build", "--model", MODEL, "--k", "4", "--samples", "8", "--device", "cpu"])
    assert rc == 0
    return MODEL


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: ")
    assert not any("Traceback" in line for line in err)
    return err[-1]


def test_catalog_build_show_label(tiny_model: str, stylestudio_home: Path, capsys) -> None:
    path = stylestudio_home / "catalogs" / tiny_model / "default.json"
    assert path.is_file() and path.with_suffix(".npz").is_file()
    capsys.readouterr()
    assert main(["catalog", "label", "--model", tiny_model, "blob", "1", "2"]) == 0
    assert main(["catalog", "show", "--model", tiny_model]) == 0
    out = capsys.readouterr().out
    assert "4 clusters" in out and "blob = c1 + c2" in out


def test_transfer_named_region_and_mask(tiny_model: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "t.png"
    rc = main(["transfer", "--model", tiny_model, "--target", "seed:1", "--reference", "seed:2",
               "--region", "c0+c1", "--strength", "0.8", "--eps", "4", "-o", str(out),
               "--save-project", str(tmp_path / "t.stylestudio")])
    assert rc == 0, capsys.readouterr().err
    img = np.asarray(Image.open(out))
    assert img.shape == (32, 32, 3)
    recipe = read_recipe(out)
    edit = recipe["edits"][0]
    assert edit["kind"] == "transfer" and edit["region"] == ["c0", "c1"] and edit["strength"] == 0.8
    assert edit["reference"] == {"kind": "seed", "seed": 2, "psi": 0.7, "cutoff": None}
    # the untouched face, for comparison
    plain = tmp_path / "plain.png"
    assert main(["generate", "--model", tiny_model, "--seed", "1", "-o", str(plain)]) == 0
    assert np.abs(img.astype(int) - np.asarray(Image.open(plain)).astype(int)).mean() > 0

    # a painted mask (an RGBA file: its alpha is the region), project as target, bigger output
    mask = np.zeros((64, 64, 4), np.uint8)
    mask[20:40, 16:48, 3] = 255
    Image.fromarray(mask, "RGBA").save(tmp_path / "mask.png")
    out2 = tmp_path / "m.png"
    rc = main(["transfer", "--model", tiny_model, "--target", str(tmp_path / "t.stylestudio"),
               "--reference", "seed:3", "--mask", str(tmp_path / "mask.png"), "--mask-mode", "activations",
               "--size", "64", "-o", str(out2)])
    assert rc == 0, capsys.readouterr().err
    recipe = read_recipe(out2)
    assert [e["kind"] for e in recipe["edits"]] == ["transfer", "transfer"]
    assert recipe["edits"][1]["mask_mode"] == "activations"
    assert np.asarray(Image.open(out2)).shape == (64, 64, 3)


@pytest.mark.parametrize("argv, message", [
    (["--region", "beard"], "unknown region"),
    (["--region", "c0", "--strength", "9"], "strength"),
    (["--mask", "/nonexistent/mask.png"], "mask.png: no such file"),
    (["--region", "c0", "--catalog", "nothere"], "catalog build"),
    (["--region", "c0", "--reference", "seed:x"], "bad seed"),
])
def test_transfer_bad_input_is_one_line(tiny_model: str, tmp_path: Path, capsys, argv, message) -> None:
    base = ["transfer", "--model", tiny_model, "--target", "seed:1", "--reference", "seed:2", "-o", str(tmp_path / "x.png")]
    if "--reference" in argv:
        i = base.index("--reference")
        del base[i:i + 2]
    assert main(base + argv) == 2
    assert message in _one_error_line(capsys)
    assert not (tmp_path / "x.png").exists()


def test_transfer_empty_mask_is_refused(tiny_model: str, tmp_path: Path, capsys) -> None:
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "empty.png")
    rc = main(["transfer", "--model", tiny_model, "--target", "seed:1", "--reference", "seed:2",
               "--mask", str(tmp_path / "empty.png"), "-o", str(tmp_path / "x.png")])
    assert rc == 2 and "empty" in _one_error_line(capsys)


def test_catalog_bad_input(tiny_model: str, capsys) -> None:
    assert main(["catalog", "build", "--model", tiny_model, "--k", "1", "--samples", "4"]) == 2
    assert "k must be" in _one_error_line(capsys)
    assert main(["catalog", "build", "--model", tiny_model, "--layer", "nope", "--samples", "4"]) == 2
    assert "unknown layer" in _one_error_line(capsys)
    assert main(["catalog", "label", "--model", tiny_model, "c3", "1"]) == 2
    assert "cannot be a region name" in _one_error_line(capsys)
    assert main(["catalog", "show", "--model", tiny_model, "--name", "../x"]) == 2
    assert "invalid catalog name" in _one_error_line(capsys)


@pytest.mark.slow
def test_transfer_mouth_on_the_default_model(default_generator, tmp_path: Path, capsys) -> None:
    """The shipped catalog names a mouth; moving it changes the mouth far more than the rest."""
    import torch

    from stylestudio.engine.regions.catalog import Catalog, find_catalog
    from stylestudio.engine.document import SeedSource

    assert find_catalog("mobilestylegan-ffhq") is not None, "the default model ships a named catalog"
    out = tmp_path / "mouth.png"
    plain = tmp_path / "plain.png"
    assert main(["transfer", "--target", "seed:12", "--reference", "seed:34", "--region", "mouth",
                 "--size", "256", "-o", str(out)]) == 0, capsys.readouterr().err
    assert main(["generate", "--seed", "12", "--size", "256", "-o", str(plain)]) == 0
    edited = np.asarray(Image.open(out)).astype(np.float32)
    base = np.asarray(Image.open(plain)).astype(np.float32)
    cat = Catalog.load(find_catalog("mobilestylegan-ffhq"))
    gen = default_generator
    with torch.no_grad():
        labels = cat.cluster_map(gen, gen.styles(SeedSource(12).latent(gen)), 256)[0].numpy()
    region = np.isin(labels, cat.resolve("mouth"))
    from stylestudio.engine.regions.masks import dilate

    grown = dilate(region, 12)
    diff = np.abs(edited - base).mean(-1)
    assert region.any()
    assert diff[region].mean() > 4 * diff[~grown].mean()
    assert read_recipe(out)["edits"][0]["region"] == ["mouth"]


@pytest.mark.slow
def test_transfer_fitted_to_the_face_on_the_default_model(default_generator, tmp_path: Path, capsys) -> None:
    """``--fit`` (the full fit): the skin takes more of the reference's look than with the tuned
    query (``--no-fit``), and stays local."""
    import torch

    from stylestudio.engine.document import SeedSource
    from stylestudio.engine.regions.catalog import Catalog, find_catalog
    from stylestudio.engine.regions.masks import dilate

    gen = default_generator
    cat = Catalog.load(find_catalog("mobilestylegan-ffhq"))
    with torch.no_grad():
        labels = cat.cluster_map(gen, gen.styles(SeedSource(12).latent(gen)), 256)[0].numpy()
    region = np.isin(labels, cat.resolve("skin"))
    grown = dilate(region, 8)
    plain = tmp_path / "plain.png"
    assert main(["generate", "--seed", "12", "--size", "256", "-o", str(plain)]) == 0
    base = np.asarray(Image.open(plain)).astype(np.float32)
    change = {}
    for fit in (False, True):
        out = tmp_path / f"skin_{fit}.png"
        argv = ["transfer", "--target", "seed:12", "--reference", "seed:34", "--region", "skin", "--size", "256",
                "-o", str(out)] + (["--fit"] if fit else ["--no-fit"])
        assert main(argv) == 0, capsys.readouterr().err
        diff = np.abs(np.asarray(Image.open(out)).astype(np.float32) - base).mean(-1)
        change[fit] = (diff[region].mean(), diff[~grown].mean())
        assert read_recipe(out)["edits"][0].get("fit", False) is fit
    (in0, out0), (in1, out1) = change[False], change[True]
    print(f"skin: tuned query in {in0:.2f} out {out0:.2f}; fitted in {in1:.2f} out {out1:.2f}")
    assert in1 > 1.5 * in0
    assert out1 < 0.25 * in1


def test_transfer_starts_from_the_regions_tuned_query(tiny_model: str, stylestudio_home: Path, tmp_path: Path,
                                                      capsys) -> None:
    import dataclasses

    from stylestudio.engine.project import load_project
    from stylestudio.engine.regions.catalog import Catalog

    path = stylestudio_home / "catalogs" / tiny_model / "default.json"
    cat = Catalog.load(path).with_name("spot", [2])
    assert cat.effects, "catalog build measures the pixel effects by default"
    dataclasses.replace(cat, queries={"spot": {"kind": "effect", "tau": 0.55, "eps": 3.0, "rho": 0.3}}).save(path)
    capsys.readouterr()
    assert main(["catalog", "show", "--model", tiny_model]) == 0
    assert "spot: query kind=effect, tau=0.55" in capsys.readouterr().out

    def edit_of(*extra: str):
        proj = tmp_path / "p.stylestudio"
        rc = main(["transfer", "--model", tiny_model, "--target", "seed:1", "--reference", "seed:2", "--region", "spot",
                   "-o", str(tmp_path / "p.png"), "--save-project", str(proj), *extra])
        assert rc == 0, capsys.readouterr().err
        return load_project(proj).edits[0]

    e = edit_of()
    assert (e.query, e.tau, e.eps, e.rho) == ("effect", 0.55, 3.0, 0.3)
    e = edit_of("--tau", "0.8")  # what the user types wins
    assert (e.query, e.tau) == ("effect", 0.8)
    e = edit_of("--query", "sequential")
    assert e.query == "sequential" and e.eps == 3.0


def test_transfer_fit_runs_the_fit_job_and_keeps_its_result(tiny_model: str, tmp_path: Path, capsys) -> None:
    """``--fit`` runs the editor's FitRegion job (progress printed), draws its result, and the saved
    project carries the fit, so it opens with the fitted look without fitting again."""
    from stylestudio.engine.project import load_project

    outs = {}
    for fit in (False, True):
        outs[fit] = tmp_path / f"{fit}.png"
        argv = ["transfer", "--model", tiny_model, "--target", "seed:1", "--reference", "seed:2", "--region", "c0+c1",
                "--eps", "4", "-o", str(outs[fit]), "--save-project", str(tmp_path / f"{fit}.stylestudio")]
        capsys.readouterr()
        assert main(argv + (["--fit"] if fit else ["--no-fit"])) == 0, capsys.readouterr().err
        err = capsys.readouterr().err
        assert ("Fitting the transfer to this face" in err) is fit
    plain, fitted = (np.asarray(Image.open(outs[f])).astype(int) for f in (False, True))
    assert np.abs(plain - fitted).max() > 0
    e = load_project(tmp_path / "True.stylestudio").edits[0]
    assert e.fit and e.fitted is not None and e.is_fitted_for(e.fitted.face_key)
    assert load_project(tmp_path / "False.stylestudio").edits[0].fitted is None


def test_a_project_waiting_for_its_fit_is_fitted_when_rendered(tiny_model: str, tmp_path: Path, capsys) -> None:
    """A project saved with "fit to this face" on but no fit yet (saved while the fit job ran, or by
    an older version) is fitted by render-project and by edit, not drawn unfitted."""
    import dataclasses

    from stylestudio.engine.project import load_project, save_project

    common = ["--model", tiny_model, "--target", "seed:1", "--reference", "seed:2", "--region", "c0+c1", "--eps", "4"]
    assert main(["transfer", *common, "--fit", "-o", str(tmp_path / "fitted.png"),
                 "--save-project", str(tmp_path / "fitted.stylestudio")]) == 0
    assert main(["transfer", *common, "--no-fit", "-o", str(tmp_path / "plain.png")]) == 0
    doc = load_project(tmp_path / "fitted.stylestudio")
    waiting = dataclasses.replace(doc, edits=(dataclasses.replace(doc.edits[0], fitted=None),))
    save_project(tmp_path / "waiting.stylestudio", waiting)
    capsys.readouterr()
    assert main(["render-project", str(tmp_path / "waiting.stylestudio"), "-o", str(tmp_path / "rendered.png")]) == 0
    assert "Fitting the transfer to this face" in capsys.readouterr().err
    assert main(["edit", "--source", str(tmp_path / "waiting.stylestudio"), "--library", "sefa", "--set", "factor1=0",
                 "-o", str(tmp_path / "edited.png")]) == 0
    fitted, plain, rendered, edited = (np.asarray(Image.open(tmp_path / f"{n}.png")).astype(int)
                                       for n in ("fitted", "plain", "rendered", "edited"))
    assert np.abs(fitted - plain).max() > 0
    assert np.abs(rendered - fitted).max() <= 1 and np.abs(edited - fitted).max() <= 1


def _fit_of(session, model: str, edit, settings):
    """``edit`` fitted to face seed:1 with ``settings`` by the editor's own job."""
    from stylestudio.engine import tasks
    from stylestudio.engine.document import EditDocument, SeedSource

    doc = EditDocument(model=model, source=SeedSource(1))
    return tasks.run(session, tasks.FitRegion.of(doc, edit, settings))


def test_new_transfers_get_the_quick_fit_and_no_fit_opts_out(tiny_model: str, tmp_path: Path, capsys) -> None:
    """With no fit option a transfer is fitted with the quick preset (``regions.fit.QUICK``: progress
    printed, the fit saved in the project and the picture's recipe); ``--no-fit`` leaves the region's
    own query; ``--fit`` alone (as before the presets) and ``--fit full`` ask for the full fit."""
    from stylestudio.engine.project import load_project
    from stylestudio.engine.regions.fit import QUICK, FitSettings
    from stylestudio.engine.session import Session

    common = ["transfer", "--model", tiny_model, "--target", "seed:1", "--reference", "seed:2", "--region", "c0+c1",
              "--eps", "4"]
    runs = {"default": [], "no-fit": ["--no-fit"], "bare": ["--fit"], "full": ["--fit", "full"]}
    edits, pictures, printed = {}, {}, {}
    for name, extra in runs.items():
        out, proj = tmp_path / f"{name}.png", tmp_path / f"{name}.stylestudio"
        capsys.readouterr()
        assert main(common + extra + ["-o", str(out), "--save-project", str(proj)]) == 0, capsys.readouterr().err
        printed[name] = "Fitting the transfer to this face" in capsys.readouterr().err
        edits[name] = load_project(proj).edits[0]
        pictures[name] = np.asarray(Image.open(out)).astype(int)
        assert read_recipe(out)["edits"][0]["fit"] is (name != "no-fit")
    d = edits["default"]
    assert printed == {"default": True, "no-fit": False, "bare": True, "full": True}
    assert d.fit and d.fit_preset == "quick" and d.fitted is not None and d.is_fitted_for(d.fitted.face_key)
    assert not edits["no-fit"].fit and edits["no-fit"].fitted is None
    assert edits["bare"].fit_preset == edits["full"].fit_preset == "full"
    assert np.abs(pictures["default"] - pictures["no-fit"]).max() > 0
    assert np.array_equal(pictures["bare"], pictures["full"])
    # the default's fit is the quick preset's, and that is not the full fit's
    session = Session(device="cpu")
    quick, full = (_fit_of(session, tiny_model, d, s).q for s in (QUICK, FitSettings()))
    assert all(np.allclose(d.fitted.q[k], quick[k], atol=1e-5) for k in quick)
    assert max(float(np.abs(quick[k] - full[k]).max()) for k in quick) > 1e-3
    assert not np.array_equal(pictures["default"], pictures["full"])
    assert main(common + ["--fit", "--no-fit", "-o", str(tmp_path / "x.png")]) == 2  # one or the other
    assert main(common + ["--fit", "slow", "-o", str(tmp_path / "x.png")]) == 2


#: projects and pictures written by ``stylestudio transfer`` as it was before fit presets (commit
#: e178d4c, tiny-regions, seed:1 ← seed:2, c0+c1, --eps 4; with and without --fit), by that code
BEFORE = Path(__file__).resolve().parent / "data"


def test_projects_saved_before_the_quick_fit_render_as_before(tiny_model: str, tmp_path: Path, capsys) -> None:
    """A transfer saved unfitted stays unfitted on load (render-project and edit fit nothing and draw
    the picture it was saved with); one saved with the (then only, full) fit opens as a full fit that
    still holds its own fit, drawn without fitting again."""
    from stylestudio.engine.project import load_project

    for name in ("unfitted", "fitted"):
        old = BEFORE / f"transfer_{name}_before_presets.stylestudio"
        e = load_project(old).edits[0]
        assert e.fit is (name == "fitted") and e.fit_preset == "full"
        if name == "fitted":  # its saved fit still belongs to it: nothing to fit again
            assert e.fitted is not None and e.is_fitted_for(e.fitted.face_key)
        else:
            assert e.fitted is None
        capsys.readouterr()
        assert main(["render-project", str(old), "-o", str(tmp_path / f"{name}-rendered.png")]) == 0
        assert main(["edit", "--source", str(old), "--library", "sefa", "--set", "factor1=0",
                     "-o", str(tmp_path / f"{name}-edited.png")]) == 0
        assert "Fitting the transfer" not in capsys.readouterr().err
        then = np.asarray(Image.open(BEFORE / f"transfer_{name}_before_presets.png")).astype(int)
        for after in ("rendered", "edited"):
            now = np.asarray(Image.open(tmp_path / f"{name}-{after}.png")).astype(int)
            assert np.abs(now - then).max() <= 1, f"{name} project, {after}: not the picture it was saved with"
    # the two pictures differ, so the comparison above could fail
    assert np.abs(np.asarray(Image.open(BEFORE / "transfer_fitted_before_presets.png")).astype(int)
                  - np.asarray(Image.open(BEFORE / "transfer_unfitted_before_presets.png")).astype(int)).max() > 0
