"""The built-in face-text encoder's image side (engine/text/face_head.py, face_captions.py)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stylestudio.engine.text import face_head
from stylestudio.engine.text.face_captions import FACTS, caption_table, fact_masks, prompt
from stylestudio.errors import InputError

REPO = Path(__file__).resolve().parents[1]

#: two held-out faces of the default model (scripts/train_face_text_head.py: chunk seed, index, psi)
#: whose predictor labels differ on age, gender and smile; the head never trained on them
#: (chosen by their labels alone: age 53, gender logit −9, smile −3.3; age 22, +9, +7.2)
OLD_MAN_NEUTRAL = (7004, 66, 0.85)
YOUNG_WOMAN_SMILING = (7004, 20, 0.85)


@pytest.fixture(scope="module")
def encoder():
    from stylestudio.engine.text.encoders import load_encoder

    return load_encoder("minilm")


def test_head_ships_as_package_data_and_loads():
    from stylestudio import paths

    path = face_head.head_file()
    assert path.parent.parent == Path(paths.resources_dir()) and path.is_file()
    assert path.stat().st_size < 5_000_000
    # setup.py ships every file under resources/ (package_data "**/*"): the head must not be git-ignored
    ignored = subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=REPO).returncode == 0
    assert not ignored
    head, template, meta = face_head.read_head(path)
    assert template.shape == (68, 2) and meta["faces"] >= 1000
    assert head.mlp[-1].out_features == 384


def test_damaged_or_foreign_head_is_refused(tmp_path):
    bad = tmp_path / "head.pt"
    bad.write_bytes(b"not a torch file at all")
    with pytest.raises(InputError, match="not a face-text head"):
        face_head.read_head(bad)
    torch.save({"format": "something-else"}, bad)
    with pytest.raises(InputError, match="not a face-text head"):
        face_head.read_head(bad)


def test_encode_image_is_differentiable_and_384_wide(encoder):
    x = (torch.rand(2, 3, 128, 128) * 2 - 1).requires_grad_(True)
    y = encoder.encode_image(x)
    assert y.shape == (2, 384)
    y[:, :8].sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert encoder.encode_text(["a smiling face"]).shape == (1, 384)


def _render(gen, spec):
    from stylestudio.engine.directions.labels import preview_stop, render_small, sample_w

    seed, index, psi = spec
    w = torch.from_numpy(sample_w(gen, index + 1, seed, psi)[index:index + 1])
    return render_small(gen, w, preview_stop(gen, 256))


def test_zero_shot_on_two_held_out_faces(default_generator, encoder):
    from stylestudio.engine.attributes import AttributePredictor

    images = torch.cat([_render(default_generator, OLD_MAN_NEUTRAL), _render(default_generator, YOUNG_WOMAN_SMILING)])
    labels = AttributePredictor().measure(images)
    # the premise: the predictors (which wrote the captions) see an old man not smiling, then a young smiling woman
    assert labels["age"][0] > labels["age"][1] + 15
    assert labels["gender"][0] < -1.5 < 1.5 < labels["gender"][1]
    assert labels["smile"][0] < -1 < 1 < labels["smile"][1]
    with torch.no_grad():
        img = F.normalize(encoder.encode_image(images), dim=-1)
        for first, second in (("old", "young"), ("male", "female"), ("neutral", "smiling")):
            t = F.normalize(encoder.encode_text([prompt(first), prompt(second)]), dim=-1)
            sims = img @ t.T  # [face, prompt]
            assert sims[0, 0] > sims[0, 1] and sims[1, 1] > sims[1, 0], (first, second, sims)


def _fake_faces(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.RandomState(seed)
    data = {"age": rng.uniform(5, 60, n), "gender": rng.uniform(-9, 9, n), "smile": rng.uniform(-9, 9, n),
            "yaw": rng.uniform(-30, 30, n), "pitch": rng.uniform(-10, 10, n), "mouth_open": rng.uniform(0, .3, n),
            "eyes_open": rng.uniform(.1, .4, n), "hair_lightness": rng.uniform(10, 80, n),
            "skin_tone": rng.uniform(35, 80, n), "lighting": rng.uniform(-20, 20, n),
            "emotion": rng.dirichlet(np.ones(7), n)}
    return data


def test_captions_say_only_the_labelled_facts_in_varied_wordings():
    data = _fake_faces(200)
    texts, caps = caption_table(data, per_face=4, seed=0)
    assert caps.shape == (200, 4) and len(texts) > 200
    masks, _ = fact_masks(data)
    old = np.flatnonzero(masks["old"])[0]
    young = np.flatnonzero(masks["young"])[0]
    said_old = " ".join(texts[c] for c in caps[old])
    assert not any(w in " ".join(texts[c] for c in caps[young]) for w in FACTS["old"].words)
    assert said_old  # something is said of every face
    # held-out wordings never appear in training captions
    joined = " || ".join(texts)
    for fact in FACTS.values():
        assert f" {fact.words[-1]} " not in f" {joined} ".replace(",", " ")
    assert "an image showing" not in joined and "a headshot of" not in joined and " human" not in joined
    assert prompt("old") == "a photo of an old person" and "senior" in prompt("old", heldout=True)


def test_info_nce_prefers_matched_pairs_and_counts_equal_captions_as_positives():
    g = torch.Generator().manual_seed(0)
    txt = F.normalize(torch.randn(6, 16, generator=g), dim=-1)
    ids = torch.arange(6)
    scale = torch.tensor(np.log(1 / 0.07), dtype=torch.float32)
    matched = face_head.info_nce(txt + 0.05 * torch.randn(6, 16, generator=g), txt, ids, scale)
    shuffled = face_head.info_nce(txt[torch.tensor([1, 2, 3, 4, 5, 0])], txt, ids, scale)
    assert matched < 0.1 < shuffled
    # two faces with the same caption: matching either copy is right, so the loss stays low
    twin = torch.tensor([0, 0, 2, 3, 4, 5])
    t2 = txt[twin]
    img = t2.clone()
    img[1] = txt[0] * 0.9 + txt[2] * 0.1
    assert face_head.info_nce(img, t2, twin, scale) < 0.01 < face_head.info_nce(img, t2, torch.arange(6), scale)


def test_training_on_cached_features_lowers_the_loss():
    from stylestudio.engine.text.minilm import minilm_text

    data = _fake_faces(64, seed=1)
    labels = np.stack([data[k] for k in ("age", "gender", "smile", "yaw", "hair_lightness", "skin_tone")], 1)
    proj = np.random.RandomState(2).randn(labels.shape[1], 64)
    feats = torch.from_numpy((labels - labels.mean(0)) / labels.std(0) @ proj).float()
    texts, caps = caption_table(data, per_face=2, seed=0)
    text_emb = minilm_text().encode_text(texts)
    head = face_head.FaceHead(64, 384, hidden=64, dropout=0.0)
    head.set_standardisation(feats)
    torch.manual_seed(0)
    losses = face_head.train_head(head, feats, torch.from_numpy(caps), text_emb, epochs=15, batch=32, lr=3e-3)
    assert losses[-1] < 0.8 * losses[0]


@pytest.mark.slow
def test_cli_trains_with_the_builtin_encoder_when_no_clip_is_imported(oracle_dir, tmp_path, monkeypatch, capsys):
    from stylestudio.cli import main
    from stylestudio.engine.text import encoders

    monkeypatch.setattr(encoders, "store_dir", lambda: tmp_path / "no-clips-here")
    assert encoders.default_encoder_name() == "minilm"
    assert main(["encoders", "list"]) == 0
    assert "built-in face-text encoder" in capsys.readouterr().out
    assert main(["models", "import", str(oracle_dir / "stylegan2_tiny" / "network-snapshot.pkl"), "--name", "ftmodel"]) == 0
    capsys.readouterr()
    assert main(["textpaths", "train", "--model", "ftmodel", "--pair", "a smiling face|a face with a neutral expression",
                 "--steps", "2", "--batch", "2", "--name", "ftwords"]) == 0
    assert "1 path (smiling)" in capsys.readouterr().out
    assert main(["textpaths", "show", "ftwords", "--model", "ftmodel"]) == 0
    assert "encoder minilm" in capsys.readouterr().out
