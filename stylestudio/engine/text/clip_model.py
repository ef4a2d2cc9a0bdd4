"""CLIP (Radford et al. 2021) in plain PyTorch: a ViT or ResNet image tower and a causal text transformer.

Parameter names are OpenAI's (``visual.transformer.resblocks.0.attn.in_proj_weight`` …), which
open_clip keeps for its ViT models, so either kind of state dict loads with ``strict=True`` and
nothing is renamed; a Hugging Face ``transformers`` CLIP is renamed into it (:func:`from_hf_layout`).
The architecture is not stored in a state dict; :func:`infer_config` reads it from the tensor
shapes, as OpenAI's own ``build_model`` does. The ResNet towers (RN50, RN101, RN50x4 …) are
OpenAI's "modified ResNet": a three-convolution stem, bottleneck blocks that downsample by average
pooling rather than strided convolutions, and an attention pool (the mean of the grid as the query
over the grid) in place of global average pooling; open_clip keeps the same names.
"""
from __future__ import annotations

import math
from collections import OrderedDict
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
    #: a ResNet image tower's bottleneck blocks per stage (4 numbers); empty for a ViT. Then
    #: ``vision_layers`` is their sum, ``vision_width`` the first stage's width and
    #: ``vision_patch_size`` the tower's total stride, 32.
    vision_blocks: tuple[int, ...] = ()

    @property
    def is_resnet(self) -> bool:
        return bool(self.vision_blocks)

    @property
    def vision_heads(self) -> int:
        if self.is_resnet:  # the attention pool works at the last stage's width, 32 × the first
            return max(1, self.vision_width * 32 // HEAD_WIDTH)
        return max(1, self.vision_width // HEAD_WIDTH)

    @property
    def transformer_heads(self) -> int:
        return max(1, self.transformer_width // HEAD_WIDTH)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["vision_blocks"] = list(self.vision_blocks)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ClipConfig":
        def value(k: str, v: Any) -> Any:
            if k == "activation":
                return str(v)
            if k == "vision_blocks":
                if not isinstance(v, (list, tuple)):
                    raise TypeError("vision_blocks must be a list")
                return tuple(int(b) for b in v)
            return int(v)

        try:
            cfg = cls(**{k: value(k, v) for k, v in data.items() if k in cls.__dataclass_fields__})
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
        if self.is_resnet and (len(self.vision_blocks) != 4 or not all(1 <= b <= MAX_LAYERS for b in self.vision_blocks)
                               or self.vision_patch_size != 32 or self.image_resolution % 32
                               or self.vision_width * 32 > MAX_WIDTH):
            raise ModelFormatError(f"a ResNet CLIP needs 4 stages of 1 … {MAX_LAYERS} blocks, a resolution that "
                                   f"is a multiple of 32 and a width of at most {MAX_WIDTH // 32}, "
                                   f"got {list(self.vision_blocks)} at {self.image_resolution} px, width "
                                   f"{self.vision_width}")
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


def _text_config(sd: Mapping[str, Tensor]) -> dict[str, int]:
    ctx, text_width = _shape(sd, "positional_embedding", 2)
    return dict(embed_dim=_shape(sd, "text_projection", 2)[1], context_length=ctx,
                vocab_size=_shape(sd, "token_embedding.weight", 2)[0], transformer_width=text_width,
                transformer_layers=_count_blocks(sd, "transformer.resblocks."))


def _resnet_config(sd: Mapping[str, Tensor], activation: str) -> ClipConfig:
    """A ResNet tower's shapes: blocks per stage counted, width from the first block, resolution
    from the attention pool's positions (a grid of resolution/32 squared, plus the mean's)."""
    blocks = tuple(_count_blocks(sd, f"visual.layer{stage}.") for stage in (1, 2, 3, 4))
    width = _shape(sd, "visual.layer1.0.conv1.weight", 4)[0]
    positions = _shape(sd, "visual.attnpool.positional_embedding", 2)[0]
    grid = math.isqrt(max(positions - 1, 0))
    if grid * grid + 1 != positions:
        raise ModelFormatError(f"not a ResNet CLIP: {positions} attention-pool positions is not a square grid plus one")
    cfg = ClipConfig(image_resolution=grid * 32, vision_layers=sum(blocks), vision_width=width, vision_patch_size=32,
                     activation=activation, vision_blocks=blocks, **_text_config(sd))
    cfg.check()
    return cfg


def infer_config(sd: Mapping[str, Tensor], activation: str = "quickgelu") -> ClipConfig:
    """The architecture of a CLIP state dict, from its shapes alone (OpenAI's rule)."""
    if any(k.startswith(("text_model.", "vision_model.")) for k in sd):
        raise ModelFormatError("a Hugging Face transformers CLIP: convert it with from_hf_layout first")
    if any(k.startswith("visual.layer1.") for k in sd):
        return _resnet_config(sd, activation)
    width, _c, patch, patch2 = _shape(sd, "visual.conv1.weight", 4)
    if patch != patch2 or _c != 3:
        raise ModelFormatError(f"not a CLIP state dict: visual.conv1.weight has shape {[width, _c, patch, patch2]}")
    tokens = _shape(sd, "visual.positional_embedding", 2)[0]
    grid = math.isqrt(max(tokens - 1, 0))
    if grid * grid + 1 != tokens:
        raise ModelFormatError(f"not a ViT CLIP: {tokens} image positions is not a square grid plus one")
    cfg = ClipConfig(image_resolution=grid * patch, vision_layers=_count_blocks(sd, "visual.transformer.resblocks."),
                     vision_width=width, vision_patch_size=patch, activation=activation, **_text_config(sd))
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


class Bottleneck(nn.Module):
    """1×1 → 3×3 → 1×1 (×4 channels), with the stride done by a 2×2 average pool before the last
    convolution, and on the shortcut by an average pool before its 1×1 projection."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.pool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.downsample: nn.Module | None = None
        if stride > 1 or inplanes != planes * self.expansion:
            # the names "-1", "0", "1" are those of OpenAI's checkpoints (only "0" and "1" hold tensors)
            self.downsample = nn.Sequential(OrderedDict([
                ("-1", nn.AvgPool2d(stride) if stride > 1 else nn.Identity()),
                ("0", nn.Conv2d(inplanes, planes * self.expansion, 1, bias=False)),
                ("1", nn.BatchNorm2d(planes * self.expansion))]))

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(self.pool(out)))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class AttentionPool(nn.Module):
    """Pools the last feature grid by one attention query: the grid's mean (with its own position)
    attends over itself and the grid; separate q/k/v projections, then ``c_proj`` to the embedding."""

    def __init__(self, grid: int, width: int, heads: int, out_dim: int) -> None:
        super().__init__()
        self.positional_embedding = nn.Parameter(torch.zeros(grid * grid + 1, width))
        self.q_proj, self.k_proj, self.v_proj = (nn.Linear(width, width) for _ in range(3))
        self.c_proj = nn.Linear(width, out_dim)
        self.heads = heads

    def forward(self, x: Tensor) -> Tensor:
        x = x.flatten(2).transpose(1, 2)  # [N, grid², width]
        x = torch.cat([x.mean(1, keepdim=True), x], 1) + self.positional_embedding.to(x.dtype)
        n, t, w = x.shape
        split = lambda y: y.view(n, -1, self.heads, w // self.heads).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.q_proj(x[:, :1])), split(self.k_proj(x)), split(self.v_proj(x))
        out = F.scaled_dot_product_attention(q, k, v)  # [N, heads, 1, head width]
        return self.c_proj(out.transpose(1, 2).reshape(n, w))


class ModifiedResNet(nn.Module):
    """OpenAI's ResNet image tower: stem of three 3×3 convolutions (the first strided) and a 2×2
    average pool, four bottleneck stages (the last three halve the grid), the attention pool."""

    def __init__(self, cfg: ClipConfig) -> None:
        super().__init__()
        w = cfg.vision_width
        self.conv1 = nn.Conv2d(3, w // 2, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(w // 2)
        self.conv2 = nn.Conv2d(w // 2, w // 2, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(w // 2)
        self.conv3 = nn.Conv2d(w // 2, w, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(w)
        self.avgpool = nn.AvgPool2d(2)
        inplanes = w
        for stage, blocks in enumerate(cfg.vision_blocks):
            planes = w * 2 ** stage
            layer = []
            for i in range(blocks):
                layer.append(Bottleneck(inplanes, planes, 2 if stage > 0 and i == 0 else 1))
                inplanes = planes * Bottleneck.expansion
            self.add_module(f"layer{stage + 1}", nn.Sequential(*layer))
        self.attnpool = AttentionPool(cfg.image_resolution // 32, w * 32, cfg.vision_heads, cfg.embed_dim)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = self.avgpool(F.relu(self.bn3(self.conv3(x))))
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = stage(x)
        return self.attnpool(x)


class CLIP(nn.Module):
    """``encode_image`` takes CLIP-normalised images at ``image_resolution``; ``encode_text`` token ids."""

    def __init__(self, cfg: ClipConfig) -> None:
        super().__init__()
        cfg.check()
        self.config = cfg
        self.visual = ModifiedResNet(cfg) if cfg.is_resnet else VisionTransformer(cfg)
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
        return self.visual(images.to(self.visual.conv1.weight.dtype))  # both towers start with conv1

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
    for k in expected:  # batch-norm counters are bookkeeping: a file may leave them out
        if k.endswith("num_batches_tracked") and k not in weights:
            weights[k] = torch.zeros((), dtype=torch.long)
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
        if k.endswith("num_batches_tracked"):  # a ResNet's batch-norm counters: integers, unused in eval
            continue
        if not weights[k].is_floating_point():
            raise ModelFormatError(f"CLIP tensor {k} is not floating point ({weights[k].dtype})")
    model = CLIP(cfg)
    model.load_state_dict({k: (v if k.endswith("num_batches_tracked") else v.to(dtype)) for k, v in weights.items()},
                          strict=True)
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
