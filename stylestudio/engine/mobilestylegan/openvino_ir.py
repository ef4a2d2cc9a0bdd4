"""Reading MobileStyleGAN's OpenVINO IR v10 files as data (never with the OpenVINO runtime).

The published model ships as ``MappingNetwork.{xml,bin}`` and ``SynthesisNetwork.{xml,bin}``.
The ``.xml`` describes a graph whose ``Const`` layers point into the ``.bin`` (offset, size,
shape, element type). Only some constants keep their PyTorch names (modulation weights and
biases, ``weight_dw``, biases, the constant input, the last ``to_img``); the export folded the
rest (pointwise weights with the equalised-lr scale and the fixed demodulation multiplied in,
the fixed noise maps, the inverse-wavelet taps) into unnamed constants. This module walks the
graph along the activation path, checks every op is the one the architecture predicts, and
collects the constants into a state dict for :class:`~.network.MobileStyleGAN`. Anything
unexpected raises :class:`~stylestudio.errors.ModelFormatError`: a wrong file must never load
as a silently wrong model.
"""
from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import numpy as np
import torch

from ...errors import ModelFormatError

_DTYPES = {"f32": np.float32, "f16": np.float16, "i64": np.int64, "i32": np.int32, "u8": np.uint8}
_SHAPE_OPS = {"Reshape", "Squeeze", "Unsqueeze", "Broadcast", "Tile"}
LRELU_SLOPE = 0.2


@dataclass(eq=False)  # identity semantics: layers are graph nodes
class Layer:
    id: str
    type: str
    name: str
    attrs: dict[str, str]
    inputs: dict[int, tuple[str, int]] = field(default_factory=dict)  # port -> (layer, port)
    outputs: dict[int, list[tuple[str, int]]] = field(default_factory=dict)  # port -> consumers
    out_ports: list[int] = field(default_factory=list)  # output port ids in declaration order
    out_dims: list[tuple[int, ...]] = field(default_factory=list)  # static shape of each output


class IRGraph:
    """An OpenVINO IR graph: layers, edges and constant reading. Parsing only, no execution."""

    def __init__(self, xml_bytes: bytes, bin_bytes: bytes, label: str = "IR") -> None:
        self.label = label
        self.blob = memoryview(bin_bytes)
        try:
            root = ET.fromstring(xml_bytes)
        except ET.ParseError as exc:
            raise ModelFormatError(f"{label}: not valid XML ({exc})") from exc
        if root.tag != "net" or root.get("version") not in {"10", "11"}:
            raise ModelFormatError(f"{label}: not an OpenVINO IR v10 network")
        layers_el, edges_el = root.find("layers"), root.find("edges")
        if layers_el is None or edges_el is None:
            raise ModelFormatError(f"{label}: the IR has no layers or edges section")
        self.layers: dict[str, Layer] = {}
        for el in layers_el:
            data = el.find("data")
            out_el = el.find("output")
            port_els = out_el.findall("port") if out_el is not None else []
            ports = [int(p.get("id", "-1")) for p in port_els]
            dims = [tuple(int(d.text or -1) for d in p.findall("dim")) for p in port_els]
            layer = Layer(el.get("id", ""), el.get("type", ""), el.get("name", ""),
                          dict(data.attrib) if data is not None else {}, out_ports=ports, out_dims=dims)
            self.layers[layer.id] = layer
        for e in edges_el:
            src, sport = e.get("from-layer", ""), int(e.get("from-port", "-1"))
            dst, dport = e.get("to-layer", ""), int(e.get("to-port", "-1"))
            if src not in self.layers or dst not in self.layers:
                raise ModelFormatError(f"{label}: an edge refers to a missing layer")
            self.layers[dst].inputs[dport] = (src, sport)
            self.layers[src].outputs.setdefault(sport, []).append((dst, dport))
        self.by_name = {l.name: l for l in self.layers.values()}

    # ---- lookups --------------------------------------------------------------------------
    def fail(self, msg: str) -> ModelFormatError:
        return ModelFormatError(f"{self.label}: unexpected graph structure: {msg}")

    def only(self, type_: str) -> Layer:
        found = [l for l in self.layers.values() if l.type == type_]
        if len(found) != 1:
            raise self.fail(f"expected one {type_} layer, found {len(found)}")
        return found[0]

    def input_layer(self, layer: Layer, port_index: int) -> tuple[Layer, int]:
        """The producer feeding ``layer``'s ``port_index``-th input (in port order)."""
        ports = sorted(layer.inputs)
        if port_index >= len(ports):
            raise self.fail(f"{layer.type} {layer.name!r} has no input {port_index}")
        src, sport = layer.inputs[ports[port_index]]
        return self.layers[src], sport

    def inputs_of(self, layer: Layer) -> list[Layer]:
        return [self.layers[layer.inputs[p][0]] for p in sorted(layer.inputs)]

    def consumers(self, layer: Layer, out_index: int = 0) -> list[Layer]:
        if out_index >= len(layer.out_ports):
            return []
        return [self.layers[d] for d, _ in layer.outputs.get(layer.out_ports[out_index], [])]

    def next_op(self, layer: Layer, type_: str, out_index: int = 0) -> Layer:
        """The single consumer of ``layer`` of type ``type_`` (shape bookkeeping ignored)."""
        found = [c for c in self.consumers(layer, out_index) if c.type == type_]
        if len(found) != 1:
            raise self.fail(f"after {layer.type} {layer.name!r} expected one {type_}, found {len(found)}")
        return found[0]

    def other_input(self, layer: Layer, known: Layer) -> Layer:
        ins = self.inputs_of(layer)
        if len(ins) != 2 or known not in ins or ins[0] is ins[1]:
            raise self.fail(f"{layer.type} {layer.name!r} is not a binary op on {known.name!r}")
        return ins[1] if ins[0] is known else ins[0]

    # ---- constants ------------------------------------------------------------------------
    def const(self, layer: Layer) -> np.ndarray:
        """The value of a ``Const`` layer, read from the .bin (a copy)."""
        if layer.type != "Const":
            raise self.fail(f"{layer.name!r} is a {layer.type}, expected a constant")
        a = layer.attrs
        try:
            dtype = np.dtype(_DTYPES[a["element_type"]]).newbyteorder("<")
            offset, size = int(a["offset"]), int(a["size"])
            shape = tuple(int(s) for s in a.get("shape", "").split(",") if s.strip())
        except (KeyError, ValueError) as exc:
            raise self.fail(f"constant {layer.name!r} has unreadable attributes ({exc})") from exc
        count = math.prod(shape)
        if offset < 0 or size != count * dtype.itemsize or offset + size > len(self.blob):
            raise ModelFormatError(f"{self.label}: constant {layer.name!r} lies outside the .bin (truncated file?)")
        return np.frombuffer(self.blob[offset:offset + size], dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))

    def const_through_shape_ops(self, layer: Layer) -> np.ndarray:
        """Resolve a value that is a constant behind reshape/broadcast bookkeeping."""
        for _ in range(8):
            if layer.type not in _SHAPE_OPS:
                break
            layer, _ = self.input_layer(layer, 0)
        return self.const(layer)

    def scalar(self, layer: Layer) -> float:
        v = self.const(layer)
        if v.size != 1:
            raise self.fail(f"{layer.name!r} should be a scalar constant, has shape {v.shape}")
        return float(v.reshape(()))


# ---- mapping network ------------------------------------------------------------------------
def read_mapping(g: IRGraph, n_layers: int = 8, dim: int = 512) -> dict[str, torch.Tensor]:
    """Pixel norm → ``n_layers`` × (linear, leaky ReLU 0.2, ×√2): weights with the lr scale folded."""
    x = g.only("Parameter")
    p2 = g.next_op(x, "Power")
    mean = g.next_op(p2, "ReduceMean")
    eps = g.next_op(mean, "Add")
    if not 0 < g.scalar(g.other_input(eps, mean)) < 1e-4 or abs(g.scalar(g.other_input(p2, x)) - 2) > 0:
        raise g.fail("the input is not pixel-normalised")
    x = g.next_op(x, "Multiply")  # x * rsqrt(mean(x²) + eps)
    state: dict[str, torch.Tensor] = {}
    for i in range(n_layers):
        mm = g.next_op(x, "MatMul")
        if mm.attrs.get("transpose_b") != "true":
            raise g.fail(f"mapping layer {i}: MatMul without transposed weight")
        weight = g.const(g.other_input(mm, x))
        add = g.next_op(mm, "Add")
        bias = g.const_through_shape_ops(g.other_input(add, mm))
        act = g.next_op(add, "PReLU")
        slope = g.scalar(g.other_input(act, add))
        gain_op = g.next_op(act, "Multiply")
        gain = g.scalar(g.other_input(gain_op, act))
        if weight.shape != (dim, dim) or bias.size != dim:
            raise g.fail(f"mapping layer {i}: weight {weight.shape}, bias {bias.shape}")
        if abs(slope - LRELU_SLOPE) > 1e-6 or abs(gain - math.sqrt(2)) > 1e-5:
            raise g.fail(f"mapping layer {i}: activation slope {slope}, gain {gain}")
        state[f"mapping_network.fc.{i}.weight"] = torch.from_numpy(weight)
        state[f"mapping_network.fc.{i}.bias"] = torch.from_numpy(bias.reshape(dim))
        x = gain_op
    if not any(c.type == "Result" for c in g.consumers(x)):
        raise g.fail("the mapping network has more layers than expected")
    return state


# ---- synthesis network ----------------------------------------------------------------------
@dataclass
class _Style:
    weight: np.ndarray
    bias: np.ndarray
    gain: float


class _SynthesisWalker:
    """Follows the activation path of the synthesis graph, checking each op on the way."""

    def __init__(self, g: IRGraph, channels: list[int], style_dim: int) -> None:
        self.g, self.channels, self.style_dim = g, channels, style_dim
        self.style_input = g.only("Parameter")
        self.taps: list[np.ndarray] | None = None
        self.state: dict[str, torch.Tensor] = {}

    def put(self, key: str, value: np.ndarray) -> None:
        """Store under the module's key: stage parameters live in ``stages.<stage>``."""
        key = key if key == "wavelet_taps" else f"stages.{key}"
        self.state[key] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))

    # style path: style → MatMul(modulation.weight) → Add(modulation.bias) → Reshape [→ × gain]
    def style_path(self, node: Layer, prefix: str, channels: int, scaled: bool) -> _Style:
        g = self.g
        gain = 1.0
        if scaled:
            if node.type != "Multiply":
                raise g.fail(f"{prefix}: modulation is not scaled")
            a, b = g.inputs_of(node)
            const_side, node = (a, b) if a.type == "Const" else (b, a)
            gain = g.scalar(const_side)
        while node.type in _SHAPE_OPS:
            node, _ = g.input_layer(node, 0)
        if node.type != "Add":
            raise g.fail(f"{prefix}: style path reaches {node.type}, expected the modulation Add")
        mm, bias_l = g.inputs_of(node)
        if mm.type != "MatMul":
            mm, bias_l = bias_l, mm
        src, w_l = g.inputs_of(mm)
        if src is not self.style_input or mm.attrs.get("transpose_b") != "true":
            raise g.fail(f"{prefix}: the modulation does not read the style input")
        if w_l.name != f"{prefix}.modulation.weight" or bias_l.name != f"{prefix}.modulation.bias":
            raise g.fail(f"{prefix}: modulation constants are named {w_l.name!r}, {bias_l.name!r}")
        w, b = g.const(w_l), g.const(bias_l).reshape(-1)
        if w.shape != (channels, self.style_dim) or b.shape != (channels,):
            raise g.fail(f"{prefix}: modulation has shape {w.shape}, expected ({channels}, {self.style_dim})")
        return _Style(w, b, gain)

    def modulate(self, x: Layer, prefix: str, channels: int, scaled: bool) -> tuple[Layer, _Style]:
        mul = self.g.next_op(x, "Multiply")
        return mul, self.style_path(self.g.other_input(mul, x), prefix, channels, scaled)

    def put_style(self, key: str, s: _Style, expected_gain: float | None) -> None:
        if expected_gain is not None and abs(s.gain - expected_gain) > 1e-6 * expected_gain:
            raise self.g.fail(f"{key}: modulation gain {s.gain}, expected {expected_gain}")
        self.put(f"{key}.affine.weight", s.weight)
        self.put(f"{key}.affine.bias", s.bias)

    def conv_tail(self, conv: Layer, key: str, prefix: str, c_out: int, res: int) -> Layer:
        """conv → + noise map → + bias → leaky ReLU; returns the activation."""
        g = self.g
        add_noise = g.next_op(conv, "Add")
        noise = g.const_through_shape_ops(g.other_input(add_noise, conv))
        add_bias = g.next_op(add_noise, "Add")
        bias_l = g.other_input(add_bias, add_noise)
        if bias_l.name != f"{prefix}.bias":
            raise g.fail(f"{prefix}: bias constant is {bias_l.name!r}")
        bias = g.const(bias_l)
        act = g.next_op(add_bias, "PReLU")
        if abs(g.scalar(g.other_input(act, add_bias)) - LRELU_SLOPE) > 1e-6:
            raise g.fail(f"{prefix}: activation is not a leaky ReLU 0.2")
        if noise.shape != (1, 1, res, res) or bias.size != c_out:
            raise g.fail(f"{prefix}: noise {noise.shape} / bias {bias.shape} do not fit {c_out}×{res}²")
        self.put(f"{key}.noise", noise)
        self.put(f"{key}.bias", bias.reshape(c_out))
        return act

    def conv_weight(self, conv: Layer, x: Layer, type_: str, shape: tuple[int, ...], pad: int) -> np.ndarray:
        g = self.g
        if conv.type != type_:
            raise g.fail(f"expected {type_}, found {conv.type} {conv.name!r}")
        a = conv.attrs
        if a.get("strides") != "1, 1" or a.get("pads_begin") != f"{pad}, {pad}" or a.get("pads_end") != f"{pad}, {pad}" \
                or a.get("dilations", "1, 1") != "1, 1":
            raise g.fail(f"{conv.name!r}: unexpected stride/padding {a}")
        w_l = g.other_input(conv, x)
        w = g.const(w_l)
        if w.shape != shape:
            raise g.fail(f"{conv.name!r}: weight shape {w.shape}, expected {shape}")
        return w

    # ---- inverse Haar wavelet transform (pytorch_wavelets' SFB2D as transposed convs) --------
    def idwt(self, x: Layer, channels: int) -> Layer:
        """Check one inverse DWT subgraph on ``x`` (low C | high 3C), record its taps."""
        g = self.g
        split = g.next_op(x, "VariadicSplit")
        if g.scalar(g.input_layer(split, 1)[0]) != 1 \
                or g.const(g.input_layer(split, 2)[0]).tolist() != [channels, 3 * channels]:
            raise g.fail(f"{split.name!r}: wavelet split is not [{channels}, {3 * channels}] channels")
        ll_up = g.next_op(split, "GroupConvolutionBackpropData", 0)
        bands = g.next_op(split, "Reshape", 1)  # [N, C, 3, h, w]: band index varies fastest
        if len(bands.out_dims[0]) != 5 or bands.out_dims[0][1:3] != (channels, 3):
            raise g.fail(f"{bands.name!r}: high-pass bands are not laid out as [N, {channels}, 3, h, w]")
        bands_split = g.next_op(bands, "VariadicSplit")
        if g.scalar(g.input_layer(bands_split, 1)[0]) != 2:
            raise g.fail(f"{bands_split.name!r}: bands are not split along axis 2")
        band_ops: list[Layer] = []
        for k in range(3):  # lh, hl, hh in pytorch_wavelets' order
            sq = g.next_op(bands_split, "Squeeze", k)
            band_ops.append(g.next_op(sq, "GroupConvolutionBackpropData"))

        def taps(op: Layer, vertical: bool) -> np.ndarray:
            strides = "2, 1" if vertical else "1, 2"
            if op.attrs.get("strides") != strides or op.attrs.get("pads_begin") != "0, 0" \
                    or op.attrs.get("pads_end") != "0, 0":
                raise g.fail(f"{op.name!r}: not a 2-tap wavelet synthesis filter")
            k = g.const(g.input_layer(op, 1)[0])
            if k.shape[1:3] != (1, 1) or k.size != k.shape[0] * 2:
                raise g.fail(f"{op.name!r}: wavelet filter has shape {k.shape}")
            k = k.reshape(k.shape[0], 2)
            if not np.all(k == k[:1]):
                raise g.fail(f"{op.name!r}: wavelet filter differs across channels")
            return k[0]

        lo = g.next_op(ll_up, "Add")
        hi = g.next_op(band_ops[1], "Add")
        if set(g.inputs_of(lo)) != {ll_up, band_ops[0]} or set(g.inputs_of(hi)) != {band_ops[1], band_ops[2]}:
            raise g.fail(f"{split.name!r}: wavelet bands are combined in an unexpected order")
        lo_up = g.next_op(lo, "GroupConvolutionBackpropData")
        hi_up = g.next_op(hi, "GroupConvolutionBackpropData")
        out = g.next_op(lo_up, "Add")
        if set(g.inputs_of(out)) != {lo_up, hi_up}:
            raise g.fail(f"{split.name!r}: wavelet rows are combined in an unexpected order")
        col = np.stack([taps(ll_up, True), taps(band_ops[0], True)])
        if not (np.array_equal(taps(band_ops[1], True), col[0]) and np.array_equal(taps(band_ops[2], True), col[1])):
            raise g.fail(f"{split.name!r}: inconsistent vertical wavelet filters")
        both = np.stack([col, np.stack([taps(lo_up, False), taps(hi_up, False)])])  # [col/row, lo/hi, tap]
        if self.taps is None:
            self.taps = both
        elif not np.array_equal(self.taps, both):
            raise g.fail("the wavelet filters differ between layers")
        return out

    # ---- the network ------------------------------------------------------------------------
    def walk(self) -> dict[str, torch.Tensor]:
        g, ch = self.g, self.channels
        c0 = ch[0]
        const_l = g.by_name.get("m.input.input")
        if const_l is None:
            raise g.fail("the constant input 'm.input.input' is missing")
        const = g.const(const_l)
        if const.shape != (1, c0, 4, 4):
            raise g.fail(f"constant input has shape {const.shape}")
        self.put("b4.const", const)
        x = const_l
        while True:  # broadcast / tile of the constant over the batch
            nxt = [c for c in g.consumers(x) if c.type in _SHAPE_OPS]
            if not nxt:
                break
            x = nxt[0]
        mul, s = self.modulate(x, "m.conv1.conv", c0, scaled=True)
        self.put_style("b4.conv1", s, 1 / math.sqrt(c0 * 9))
        conv = g.next_op(mul, "Convolution")
        self.put("b4.conv1.weight", self.conv_weight(conv, mul, "Convolution", (c0, c0, 3, 3), 1))
        x = self.conv_tail(conv, "b4.conv1", "m.conv1", c0, 4)
        res = 4
        for i, c_out in enumerate(ch[1:]):
            c_in, res = ch[i], res * 2
            key, prefix = f"b{res}", f"m.layers.{i}"
            mul, s = self.modulate(x, f"{prefix}.up", c_in, scaled=False)
            self.put_style(f"{key}.up", s, None)
            x = self.idwt(mul, c_in // 4)
            for j, (ci, co) in enumerate(((c_in // 4, c_out), (c_out, c_out)), start=1):
                name, pre = f"{key}.conv{j}", f"{prefix}.conv{j}"
                mul, s = self.modulate(x, f"{pre}.conv", ci, scaled=True)
                self.put_style(name, s, 1 / math.sqrt(ci * 9))
                dw = g.next_op(mul, "GroupConvolution")
                dw_l = g.other_input(dw, mul)
                if dw_l.name != f"{pre}.conv.weight_dw":
                    raise g.fail(f"{pre}: depthwise weight is {dw_l.name!r}")
                self.put(f"{name}.weight_dw", self.conv_weight(dw, mul, "GroupConvolution", (ci, 1, 1, 3, 3), 1)
                         .reshape(ci, 1, 3, 3))
                pw = g.next_op(dw, "Convolution")
                self.put(f"{name}.weight_pw", self.conv_weight(pw, dw, "Convolution", (co, ci, 1, 1), 0))
                x = self.conv_tail(pw, name, pre, co, res)
        c_last = ch[-1]
        prefix = f"m.layers.{len(ch) - 2}.to_img"
        mul, s = self.modulate(x, f"{prefix}.conv", c_last, scaled=True)
        self.put_style(f"b{res}.to_img", s, 1 / math.sqrt(c_last))
        conv = g.next_op(mul, "Convolution")
        w_l = g.other_input(conv, mul)
        if w_l.name != f"{prefix}.conv.weight":
            raise g.fail(f"{prefix}: weight constant is {w_l.name!r}")
        self.put(f"b{res}.to_img.weight", self.conv_weight(conv, mul, "Convolution", (12, c_last, 1, 1), 0))
        add = g.next_op(conv, "Add")
        bias_l = g.other_input(add, conv)
        if bias_l.name != f"{prefix}.bias":
            raise g.fail(f"{prefix}: bias constant is {bias_l.name!r}")
        self.put(f"b{res}.to_img.bias", g.const(bias_l).reshape(12))
        img = self.idwt(add, 3)
        if not any(c.type == "Result" for c in g.consumers(img)):
            raise g.fail("the synthesis network continues after the image")
        assert self.taps is not None
        self.put("wavelet_taps", self.taps)
        self.group_wavelet_bands()
        return self.state

    def group_wavelet_bands(self) -> None:
        """Reorder every wavelet input from the export's ``[LL c…, (LH HL HH) c…]`` to band-grouped
        ``[c: LL LH HL HH]`` (the module's convention): rows of the producing conv, the ``up``
        modulation, and the final ``to_img``."""
        ch, s = self.channels, self.state
        producers = ["b4.conv1.weight"] + [f"b{8 * 2 ** i}.conv2.weight_pw" for i in range(len(ch) - 2)]
        for i, prod in enumerate(producers):
            perm = band_grouped_order(ch[i] // 4)
            layer, up = prod.rsplit(".", 1)[0], f"b{8 * 2 ** i}.up.affine"
            for key in (prod, f"{layer}.bias", f"{up}.weight", f"{up}.bias"):
                s[f"stages.{key}"] = s[f"stages.{key}"][perm].contiguous()
        last = f"stages.b{4 * 2 ** (len(ch) - 1)}.to_img"
        for key in (f"{last}.weight", f"{last}.bias"):
            s[key] = s[key][band_grouped_order(3)].contiguous()


def band_grouped_order(groups: int) -> torch.Tensor:
    """Index list taking pytorch_wavelets' ``[low (C), high (C×3)]`` layout to ``[C × 4]``."""
    order = [c if k == 0 else groups + 3 * c + k - 1 for c in range(groups) for k in range(4)]
    return torch.tensor(order, dtype=torch.long)


def read_synthesis(g: IRGraph, channels: list[int], style_dim: int = 512) -> dict[str, torch.Tensor]:
    """The synthesis constants keyed by :class:`~.network.MobileStyleGAN`'s own state-dict names."""
    return _SynthesisWalker(g, channels, style_dim).walk()


def read_ir_pair(mapping: tuple[bytes, bytes], synthesis: tuple[bytes, bytes], channels: list[int],
                 n_mapping: int = 8, style_dim: int = 512) -> dict[str, torch.Tensor]:
    """Both networks' constants as one state dict (everything except ``w_avg`` and preview heads)."""
    state = read_mapping(IRGraph(*mapping, label="MappingNetwork"), n_mapping, style_dim)
    state.update(read_synthesis(IRGraph(*synthesis, label="SynthesisNetwork"), channels, style_dim))
    return state
