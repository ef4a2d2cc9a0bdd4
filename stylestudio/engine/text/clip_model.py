"""CLIP (Radford et al. 2021) in plain PyTorch: a ViT image tower and a causal text transformer.

Parameter names are OpenAI's (``visual.transformer.resblocks.0.attn.in_proj_weight`` …), which
open_clip keeps for its ViT models, so either kind of state dict loads with ``strict=True`` and
nothing is renamed; a Hugging Face ``transformers`` CLIP is renamed into it (:func:`from_hf_layout`).
The architecture is not stored in a state dict; :func:`infer_config` reads it from the tensor
shapes, as OpenAI's own ``build_model`` does. ResNet image towers are refused.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...errors import ModelFormatError

#: OpenAI's image normalisation (RGB mean and std of their training images, inputs in 0..1)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
ACTIVATIONS = ("quickgelu", "gelu")
HEAD_WIDTH = 64  #: OpenAI and open_clip both use width // 64 attention heads
#: bounds a file's shapes must keep (ViT-bigG is 1664 wide, 48 deep): a 1-kB file cannot ask for terabytes
MAX_WIDTH, MAX_LAYERS, MAX_TOKENS, MAX_VOCAB = 8192, 128, 4096, 1_000_000


@dataclass(frozen=True)
class ClipConfig:
    embed_dim: int
    image_resolution: int
    vision_layers: int
    vision_width: int
    vision_patch_size: int
    context_length: int
    vocab_size: int
    transformer_width: int
    transformer_layers: int
    activation: str = "quickgelu"

    @property
    def vision_heads(self) -> int:
        return max(1, self.vision_width // HEAD_WIDTH)

    @property
    def transformer_heads(self) -> int:
        return max(1, self.transformer_width // HEAD_WIDTH)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ClipConfig":
        try:
            cfg = cls(**{k: (str(v) if k == "activation" else int(v)) for k, v in data.items()
                         if k in cls.__dataclass_fields__})
        except (TypeError, ValueError) as exc:
            raise ModelFormatError(f"bad CLIP configuration ({exc})") from None
        cfg.check()
        return cfg

    def check(self) -> None:
        limits = {"embed_dim": MAX_WIDTH, "image_resolution": MAX_TOKENS * 32, "vision_layers": MAX_LAYERS,
                  "vision_width": MAX_WIDTH, "vision_patch_size": 1024, "context_length": MAX_TOKENS,
                  "vocab_size": MAX_VOCAB, "transformer_width": MAX_WIDTH, "transformer_layers": MAX_LAYERS}
        for name, hi in limits.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= hi:
                raise ModelFormatError(f"CLIP {name} {v!r} is outside 1 … {hi}")
        if self.activation not in ACTIVATIONS:
            raise ModelFormatError(f"CLIP activation must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}")
        if (self.image_resolution // self.vision_patch_size) ** 2 > MAX_TOKENS:
            raise ModelFormatError("CLIP image grid is absurdly large")


def _shape(sd: Mapping[str, Tensor], key: str, dims: int) -> tuple[int, ...]:
    if key not in sd:
        raise ModelFormatError(f"not a CLIP state dict: no {key!r}")
    shape = tuple(int(s) for s in sd[key].shape)
    if len(shape) != dims:
        raise ModelFormatError(f"not a CLIP state dict: {key} has shape {list(shape)}")
    return shape


def _count_blocks(sd: Mapping[str, Tensor], prefix: str) -> int:
    found = {k[len(prefix):].split(".", 1)[0] for k in sd if k.startswith(prefix)}
    layers = sorted(int(i) for i in found if i.isdigit())
    if not layers or layers != list(range(len(layers))):
        raise ModelFormatError(f"not a CLIP state dict: the {prefix}N blocks are missing or not numbered 0…n")
    return len(layers)


_HF_BLOCK = {"self_attn.out_proj": "attn.out_proj", "layer_norm1": "ln_1", "layer_norm2": "ln_2",
             "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj"}
_HF_NAMES = {"text_model.embeddings.token_embedding.weight": "token_embedding.weight",
             "text_model.embeddings.position_embedding.weight": "positional_embedding",
             "text_model.final_layer_norm.weight": "ln_final.weight", "text_model.final_layer_norm.bias": "ln_final.bias",
             "vision_model.embeddings.class_embedding": "visual.class_embedding",
             "vision_model.embeddings.patch_embedding.weight": "visual.conv1.weight",
             "vision_model.embeddings.position_embedding.weight": "visual.positional_embedding",
             "vision_model.pre_layrnorm.weight": "visual.ln_pre.weight", "vision_model.pre_layrnorm.bias": "visual.ln_pre.bias",
             "vision_model.post_layernorm.weight": "visual.ln_post.weight",
             "vision_model.post_layernorm.bias": "visual.ln_post.bias", "logit_scale": "logit_scale"}


def from_hf_layout(sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A Hugging Face ``transformers`` CLIPModel state dict in OpenAI's layout (same numbers: q, k, v
    joined into ``in_proj``, projections transposed)."""
    out: dict[str, Tensor] = {}
    qkv: dict[tuple[str, str], dict[str, Tensor]] = {}
    for key, t in sd.items():
        if key.endswith("position_ids"):
            continue
        if key in _HF_NAMES:
            out[_HF_NAMES[key]] = t
        elif key == "text_projection.weight":
            out["text_projection"] = t.t()
        elif key == "visual_projection.weight":
            out["visual.proj"] = t.t()
        elif ".encoder.layers." in key:
            tower, rest = key.split(".encoder.layers.", 1)
            index, inner = rest.split(".", 1)
            prefix = f"{'visual.' if tower == 'vision_model' else ''}transformer.resblocks.{index}."
            for which in ("q", "k", "v"):
                if inner.startswith(f"self_attn.{which}_proj."):
                    qkv.setdefault((prefix, inner.rsplit(".", 1)[1]), {})[which] = t
                    break
            else:
                module, leaf = inner.rsplit(".", 1)
                if module not in _HF_BLOCK:
                    raise ModelFormatError(f"a Hugging Face CLIP with an unknown tensor {key!r}")
                out[f"{prefix}{_HF_BLOCK[module]}.{leaf}"] = t
        else:
            raise ModelFormatError(f"a Hugging Face CLIP with an unknown tensor {key!r}")
    for (prefix, leaf), parts in qkv.items():
        if set(parts) != {"q", "k", "v"}:
            raise ModelFormatError(f"a Hugging Face CLIP lacks some of {prefix}q/k/v_proj.{leaf}")
        out[f"{prefix}attn.in_proj_{leaf}"] = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)
    return out


def infer_config(sd: Mapping[str, Tensor], activation: str = "quickgelu") -> ClipConfig:
    """The architecture of a CLIP state dict, from its shapes alone (OpenAI's rule)."""
    if any(k.startswith("visual.layer1.") for k in sd):
        raise ModelFormatError("a CLIP with a ResNet image tower (RN50 …): only ViT image towers are supported")
    if any(k.startswith(("text_model.", "vision_model.")) for k in sd):
        raise ModelFormatError("a Hugging Face transformers CLIP: convert it with from_hf_layout first")
    width, _c, patch, patch2 = _shape(sd, "visual.conv1.weight", 4)
    if patch != patch2 or _c != 3:
        raise ModelFormatError(f"not a CLIP state dict: visual.conv1.weight has shape {[width, _c, patch, patch2]}")
    tokens = _shape(sd, "visual.positional_embedding", 2)[0]
    grid = math.isqrt(max(tokens - 1, 0))
    if grid * grid + 1 != tokens:
        raise ModelFormatError(f"not a ViT CLIP: {tokens} image positions is not a square grid plus one")
    ctx, text_width = _shape(sd, "positional_embedding", 2)
    vocab = _shape(sd, "token_embedding.weight", 2)[0]
    embed = _shape(sd, "text_projection", 2)[1]
    cfg = ClipConfig(embed_dim=embed, image_resolution=grid * patch, vision_layers=_count_blocks(sd, "visual.transformer.resblocks."),
                     vision_width=width, vision_patch_size=patch, context_length=ctx, vocab_size=vocab,
                     transformer_width=text_width, transformer_layers=_count_blocks(sd, "transformer.resblocks."),
                     activation=activation)
    cfg.check()
    return cfg


class QuickGELU(nn.Module):
    """OpenAI's approximation ``x·σ(1.702x)``, used by every OpenAI checkpoint."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(1.702 * x)


class LayerNorm(nn.LayerNorm):
    """Normalises in float32 whatever the weights' type (OpenAI's fp16 checkpoints need it)."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.float()).to(x.dtype) if x.dtype != self.weight.dtype else super().forward(x)


class ResidualBlock(nn.Module):
    def __init__(self, width: int, heads: int, activation: str) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_1 = LayerNorm(width)
        self.mlp = nn.Sequential()
        self.mlp.add_module("c_fc", nn.Linear(width, width * 4))
        self.mlp.add_module("gelu", QuickGELU() if activation == "quickgelu" else nn.GELU())
        self.mlp.add_module("c_proj", nn.Linear(width * 4, width))
        self.ln_2 = LayerNorm(width)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=mask)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int, activation: str) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList(ResidualBlock(width, heads, activation) for _ in range(layers))

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        for block in self.resblocks:
            x = block(x, mask)
        return x


class VisionTransformer(nn.Module):
    def __init__(self, cfg: ClipConfig) -> None:
        super().__init__()
        w, p = cfg.vision_width, cfg.vision_patch_size
        self.conv1 = nn.Conv2d(3, w, kernel_size=p, stride=p, bias=False)
        self.class_embedding = nn.Parameter(torch.zeros(w))
        self.positional_embedding = nn.Parameter(torch.zeros((cfg.image_resolution // p) ** 2 + 1, w))
        self.ln_pre = LayerNorm(w)
        self.transformer = Transformer(w, cfg.vision_layers, cfg.vision_heads, cfg.activation)
        self.ln_post = LayerNorm(w)
        self.proj = nn.Parameter(torch.zeros(w, cfg.embed_dim))

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(x).flatten(2).transpose(1, 2)  # [N, grid², width]
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.transformer(self.ln_pre(x))
        return self.ln_post(x[:, 0]) @ self.proj


class CLIP(nn.Module):
    """``encode_image`` takes CLIP-normalised images at ``image_resolution``; ``encode_text`` token ids."""

    def __init__(self, cfg: ClipConfig) -> None:
        super().__init__()
        cfg.check()
        self.config = cfg
        self.visual = VisionTransformer(cfg)
        w = cfg.transformer_width
        self.transformer = Transformer(w, cfg.transformer_layers, cfg.transformer_heads, cfg.activation)
        self.token_embedding = nn.Embedding(cfg.vocab_size, w)
        self.positional_embedding = nn.Parameter(torch.zeros(cfg.context_length, w))
        self.ln_final = LayerNorm(w)
        self.text_projection = nn.Parameter(torch.zeros(w, cfg.embed_dim))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        causal = torch.full((cfg.context_length, cfg.context_length), float("-inf")).triu(1)
        self.register_buffer("attn_mask", causal, persistent=False)

    def encode_image(self, images: Tensor) -> Tensor:
        return self.visual(images.to(self.visual.conv1.weight.dtype))

    def encode_text(self, tokens: Tensor) -> Tensor:
        n = tokens.shape[1]
        x = self.token_embedding(tokens) + self.positional_embedding[:n]
        x = self.transformer(x, self.attn_mask[:n, :n].to(x.dtype))
        x = self.ln_final(x)
        end = tokens.argmax(dim=-1)  # the end-of-text token has the largest id
        return x[torch.arange(x.shape[0]), end] @ self.text_projection

    def forward(self, images: Tensor, tokens: Tensor) -> tuple[Tensor, Tensor]:
        return self.encode_image(images), self.encode_text(tokens)


#: keys of OpenAI's state dicts that are not parameters (their ``build_model`` drops them; a
#: TorchScript archive also holds each block's causal ``attn_mask``, rebuilt here)
IGNORED_KEYS = ("input_resolution", "context_length", "vocab_size")


def build_clip(sd: Mapping[str, Tensor], activation: str = "quickgelu", dtype: torch.dtype = torch.float32) -> CLIP:
    """A CLIP with the architecture the shapes say, loaded strictly (every tensor used, none missing)."""
    cfg = infer_config(sd, activation)
    weights = {k: v for k, v in sd.items() if k not in IGNORED_KEYS and not k.endswith("attn_mask")}
    with torch.device("meta"):
        model = CLIP(cfg)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    if missing or extra:
        what = (f"missing {', '.join(missing[:3])}" if missing else "") + \
               ("; " if missing and extra else "") + (f"unexpected {', '.join(extra[:3])}" if extra else "")
        raise ModelFormatError(f"not a CLIP of a supported layout ({what})")
    for k, t in expected.items():
        if tuple(weights[k].shape) != tuple(t.shape):
            raise ModelFormatError(f"CLIP tensor {k} has shape {list(weights[k].shape)}, the architecture its other "
                                   f"tensors describe needs {list(t.shape)}")
        if not weights[k].is_floating_point():
            raise ModelFormatError(f"CLIP tensor {k} is not floating point ({weights[k].dtype})")
    model = CLIP(cfg)
    model.load_state_dict({k: v.to(dtype) for k, v in weights.items()}, strict=True)
    return model.to(dtype).eval().requires_grad_(False)


def preprocess(images: Tensor, resolution: int) -> Tensor:
    """Generator images (RGB, −1…1, any square size) → CLIP input, differentiably.

    OpenAI resizes the short side (bicubic) and centre-crops; a generator's faces are square, so
    this is a resize, antialiased when shrinking like PIL's."""
    x = (images.float().clamp(-1, 1) + 1) / 2
    if x.shape[-1] != resolution or x.shape[-2] != resolution:
        x = F.interpolate(x, size=(resolution, resolution), mode="bicubic", align_corners=False,
                          antialias=x.shape[-1] > resolution)
    mean = torch.tensor(CLIP_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std
