"""CLIP from the user's own file: OpenAI's tokenizer and the model against the tiny oracle, the
architecture read from shapes (ViT-B/32), every accepted file kind, hostile files refused in one line,
and ``stylestudio encoders import | list``."""
from __future__ import annotations

import json
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from stylestudio.cli import main
from stylestudio.engine.text.bpe import clip_tokenizer
from stylestudio.engine.text.checkpoint import read_state_dict
from stylestudio.engine.text.clip_model import CLIP, build_clip, infer_config
from stylestudio.errors import ModelFormatError

pytestmark = pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")


@pytest.fixture(scope="module")
def tiny(oracle_dir: Path):
    folder = oracle_dir / "clip_tiny"
    return folder / "clip-tiny-openai-format.pt", np.load(folder / "golden.npz", allow_pickle=False)


def embeddings(model: CLIP, golden) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        return (model.encode_image(torch.from_numpy(golden["images"])).numpy(),
                model.encode_text(torch.from_numpy(golden["tokens"])).numpy())


def assert_golden(model: CLIP, golden) -> None:
    img, txt = embeddings(model, golden)
    assert np.abs(img - golden["image_embeddings"]).max() <= 1e-4
    assert np.abs(txt - golden["text_embeddings"]).max() <= 1e-4


def test_tokenizer_matches_openai_exactly(tiny):
    _, golden = tiny
    tokens = clip_tokenizer().tokenize([str(t) for t in golden["texts"]])
    assert tokens.dtype == torch.long and tokens.shape == (3, 77)
    np.testing.assert_array_equal(tokens.numpy(), golden["tokens"])


def test_tokenizer_too_long_text_is_one_line():
    from stylestudio.errors import InputError

    with pytest.raises(InputError, match="too long for CLIP"):
        clip_tokenizer().tokenize("face " * 100)
    assert clip_tokenizer().tokenize("face " * 100, truncate=True)[0, -1] == 49407


def test_clip_reproduces_the_oracle(tiny):
    path, golden = tiny
    model = build_clip(read_state_dict(path))
    assert model.config.vision_heads == 2 and model.config.vision_layers == 2
    assert_golden(model, golden)
    assert abs(float(model.logit_scale.exp()) - float(golden["logit_scale"])) < 0.05  # stored in fp16


def test_architecture_inferred_from_vit_b_32_shapes(oracle_dir: Path):
    shapes = json.loads((oracle_dir / "clip_tiny" / "vit-b-32-state-dict-shapes.json").read_text())
    sd = {k: torch.empty(v, device="meta") for k, v in shapes.items()}
    cfg = infer_config(sd)
    assert (cfg.embed_dim, cfg.image_resolution, cfg.vision_patch_size, cfg.vision_width, cfg.vision_layers,
            cfg.vision_heads) == (512, 224, 32, 768, 12, 12)
    assert (cfg.context_length, cfg.vocab_size, cfg.transformer_width, cfg.transformer_layers,
            cfg.transformer_heads) == (77, 49408, 512, 12, 8)
    with torch.device("meta"):
        model = CLIP(cfg)
    built = {k: list(v.shape) for k, v in model.state_dict().items()}
    expected = {k: v for k, v in shapes.items() if k not in ("input_resolution", "context_length", "vocab_size")}
    assert built == expected


def test_shapes_that_disagree_are_refused(tiny):
    path, _ = tiny
    sd = read_state_dict(path)
    sd["visual.proj"] = torch.zeros(128, 16)  # the text side says 32-d
    with pytest.raises(ModelFormatError, match="visual.proj has shape"):
        build_clip(sd)
    resnet = {"visual.layer1.0.conv1.weight": torch.zeros(1)}  # a ResNet tower's first tensor alone
    with pytest.raises(ModelFormatError, match="visual.layer2"):
        infer_config(resnet)


def _traced_clip(path: Path, out: Path) -> None:
    model = build_clip(read_state_dict(path))
    torch.jit.trace(model, (torch.zeros(1, 3, 64, 64), torch.zeros(1, 77, dtype=torch.long))).save(str(out))


@pytest.mark.parametrize("kind", ["torchscript", "safetensors", "open_clip", "legacy_bin"])
def test_every_accepted_file_kind(tiny, tmp_path: Path, kind: str):
    from safetensors.torch import save_file

    path, golden = tiny
    sd = read_state_dict(path)
    out = tmp_path / f"clip.{kind}"
    if kind == "torchscript":
        _traced_clip(path, out)
        assert zipfile.ZipFile(out).namelist() and any("/code/" in n for n in zipfile.ZipFile(out).namelist())
    elif kind == "safetensors":
        save_file({k: v.contiguous() for k, v in sd.items()}, str(out))
    elif kind == "open_clip":
        torch.save({"epoch": 3, "name": "run", "state_dict": {f"module.{k}": v for k, v in sd.items()},
                    "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4}]}}, out)
    else:
        torch.save(sd, out, _use_new_zipfile_serialization=False)
    assert_golden(build_clip(read_state_dict(out)), golden)


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_without_running(tmp_path: Path, capsys):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"visual.conv1.weight": torch.zeros(1), "payload": _Evil(marker)}, evil)
    assert main(["encoders", "import", str(evil)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "evil.pt" in err and "refused" in err and len(err.splitlines()) == 1
    assert not marker.exists()


def test_malicious_torchscript_is_refused_without_running(tmp_path: Path, tiny, capsys):
    """A TorchScript archive whose data.pkl calls os.system: only tensors and inert records are rebuilt."""
    path, _ = tiny
    good = tmp_path / "good.pt"
    _traced_clip(path, good)
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil_ts.pt"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(evil, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("/data.pkl"):
                data = pickle.dumps(_Evil(marker), protocol=2)
            dst.writestr(info, data)
    assert main(["encoders", "import", str(evil)]) == 2
    err = capsys.readouterr().err.strip()
    assert "evil_ts.pt" in err and "refusing posix.system" in err and len(err.splitlines()) == 1
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"hello, not a model\n", b"", b"PK\x03\x04broken zip"])
def test_wrong_files_are_one_line(tmp_path: Path, capsys, content: bytes):
    bad = tmp_path / "wrong.pt"
    bad.write_bytes(content)
    assert main(["encoders", "import", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "wrong.pt" in err and len(err.splitlines()) == 1


def test_truncated_and_non_clip_files(tmp_path: Path, tiny, capsys):
    path, _ = tiny
    cut = tmp_path / "cut.pt"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    other = tmp_path / "other.pt"
    torch.save({"weight": torch.zeros(3)}, other)
    for f, reason in ((cut, "cut.pt"), (other, "not a CLIP state dict")):
        assert main(["encoders", "import", str(f)]) == 2
        err = capsys.readouterr().err.strip()
        assert reason in err and len(err.splitlines()) == 1


def test_cli_import_list_and_load(tiny, capsys):
    from stylestudio import paths
    from stylestudio.engine.text.encoders import load_encoder

    path, golden = tiny
    assert main(["encoders", "import", str(path), "--name", "tinyclip"]) == 0
    assert "CLIP ViT 2×128/16 @64px" in capsys.readouterr().out
    assert main(["encoders", "list"]) == 0
    listed = capsys.readouterr().out
    assert "tinyclip" in listed and "minilm" in listed
    folder = paths.data_home() / "text_encoders" / "tinyclip"
    assert sorted(p.name for p in folder.iterdir()) == ["encoder.json", "weights.safetensors"]
    enc = load_encoder("tinyclip")
    with torch.no_grad():
        txt = enc.encode_text([str(t) for t in golden["texts"]]).numpy()
    assert np.abs(txt - golden["text_embeddings"]).max() <= 1e-4
    # a failed re-import leaves the stored encoder whole
    bad = folder.parent / "x.pt"
    bad.write_bytes(b"junk")
    assert main(["encoders", "import", str(bad), "--name", "tinyclip"]) == 2
    bad.unlink()
    assert load_encoder("tinyclip").embed_dim == 32
    # the same file again changes nothing; another one (here: another activation) replaces it only when asked
    weights = folder / "weights.safetensors"
    stamp = weights.stat().st_mtime_ns
    assert main(["encoders", "import", str(path), "--name", "tinyclip"]) == 0
    assert "already imported from this file; nothing changed" in capsys.readouterr().out
    assert main(["encoders", "import", str(path), "--name", "tinyclip", "--activation", "gelu"]) == 2
    err = capsys.readouterr().err.strip()
    assert "an encoder named 'tinyclip' is already imported" in err and "--replace" in err and len(err.splitlines()) == 1
    assert weights.stat().st_mtime_ns == stamp and load_encoder("tinyclip").model.config.activation == "quickgelu"
    assert main(["encoders", "import", str(path), "--name", "tinyclip", "--activation", "gelu", "--replace"]) == 0
    assert "note: replaces the encoder 'tinyclip'" in capsys.readouterr().out
    assert load_encoder("tinyclip").model.config.activation == "gelu"
    assert main(["encoders", "import", str(path), "--name", "tinyclip", "--replace"]) == 0  # as the tests after expect


def test_hugging_face_layout_is_read(tiny, tmp_path: Path):
    """The tiny CLIP put into a transformers CLIPModel (checked against the oracle through transformers'
    own forward), saved with save_pretrained, reads back through the same import path."""
    transformers = pytest.importorskip("transformers")
    path, golden = tiny
    sd = {k: v.float() for k, v in read_state_dict(path).items()}
    tower = dict(hidden_size=128, intermediate_size=512, num_attention_heads=2, num_hidden_layers=2,
                 hidden_act="quick_gelu")
    cfg = transformers.CLIPConfig(text_config=dict(vocab_size=49408, max_position_embeddings=77, eos_token_id=49407,
                                                   **tower),
                                  vision_config=dict(image_size=64, patch_size=16, **tower), projection_dim=32)
    hf = transformers.CLIPModel(cfg).eval()
    state = {"logit_scale": sd["logit_scale"], "text_projection.weight": sd["text_projection"].t(),
             "visual_projection.weight": sd["visual.proj"].t(),
             "text_model.embeddings.token_embedding.weight": sd["token_embedding.weight"],
             "text_model.embeddings.position_embedding.weight": sd["positional_embedding"],
             "text_model.final_layer_norm.weight": sd["ln_final.weight"],
             "text_model.final_layer_norm.bias": sd["ln_final.bias"],
             "vision_model.embeddings.class_embedding": sd["visual.class_embedding"],
             "vision_model.embeddings.patch_embedding.weight": sd["visual.conv1.weight"],
             "vision_model.embeddings.position_embedding.weight": sd["visual.positional_embedding"],
             "vision_model.pre_layrnorm.weight": sd["visual.ln_pre.weight"],
             "vision_model.pre_layrnorm.bias": sd["visual.ln_pre.bias"],
             "vision_model.post_layernorm.weight": sd["visual.ln_post.weight"],
             "vision_model.post_layernorm.bias": sd["visual.ln_post.bias"]}
    names = {"attn.out_proj": "self_attn.out_proj", "ln_1": "layer_norm1", "ln_2": "layer_norm2",
             "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2"}
    for ours, theirs in (("transformer", "text_model"), ("visual.transformer", "vision_model")):
        for i in range(2):
            a, b = f"{ours}.resblocks.{i}.", f"{theirs}.encoder.layers.{i}."
            for leaf in ("weight", "bias"):
                for q, part in zip("qkv", sd[f"{a}attn.in_proj_{leaf}"].chunk(3)):
                    state[f"{b}self_attn.{q}_proj.{leaf}"] = part
                for o, t in names.items():
                    state[f"{b}{t}.{leaf}"] = sd[f"{a}{o}.{leaf}"]
    missing, unexpected = hf.load_state_dict(state, strict=False)
    assert not unexpected and all(k.endswith("position_ids") for k in missing)
    with torch.no_grad():
        txt = hf.get_text_features(input_ids=torch.from_numpy(golden["tokens"]))
        txt = getattr(txt, "pooler_output", txt)
    assert np.abs(txt.numpy() - golden["text_embeddings"]).max() <= 1e-4  # the layout above is transformers' own
    hf.save_pretrained(tmp_path / "hf", safe_serialization=True)
    assert_golden(build_clip(read_state_dict(tmp_path / "hf" / "model.safetensors")), golden)
