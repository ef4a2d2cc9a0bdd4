"""A transfer's fitted query as document data: fitted once by a job, only *used* by renders.

Fitting (:mod:`.fit`) takes seconds; a render must take milliseconds. So the job that fits
(``tasks.FitRegion``) returns a :class:`FittedQuery`, the GUI or CLI puts it into the transfer
edit, and a render uses it when it still belongs to the document: the transfer's own fit inputs
are unchanged (:attr:`FittedQuery.inputs`) and the face is the one it was fitted on. A render sees
the face only as styles, and a job thread (or another device) computes them with other float
rounding than the render thread, so the face is recognised by a small :func:`fingerprint` of its
styles compared within float noise, not by an exact digest. Otherwise the render draws the
region's unfitted query, which is what the user sees while a fit runs.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
from torch import Tensor

from ..document import FrozenArrays, as_array, as_mapping, as_text, at, construct, field_error, frozen_array

#: per style layer: mean, root mean square and a ramp-weighted mean of its style vector
FINGERPRINT_STATS = 3
_MAX_LAYERS = 1000
_MAX_CHANNELS = 1 << 16


def fingerprint(styles: Mapping[str, Tensor]) -> np.ndarray:
    """``[layers, 3]`` summary of a face's styles: equal within float noise for the same face and
    model on any thread or device, far apart for different faces (any changed layer moves its row)."""
    rows = []
    for v in styles.values():
        x = v.detach().reshape(-1).double().cpu().numpy()
        ramp = np.linspace(-1.0, 1.0, x.size)
        rows.append((x.mean(), np.sqrt(np.mean(x * x)), np.mean(x * ramp)))
    return np.asarray(rows, np.float64).reshape(-1, FINGERPRINT_STATS)


def same_face(a: np.ndarray, b: np.ndarray) -> bool:
    """Two fingerprints of one face (float noise of ~1e-6 is far inside the tolerance)."""
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-3, atol=1e-4))


def face_key(model: str, source: Any) -> str:
    """Which model and face a fit was made on, as the GUI and CLI know them (from the document)."""
    return hashlib.sha1(repr((model, source.key())).encode()).hexdigest()[:24]


@dataclass(frozen=True, eq=False)
class FittedQuery:
    """``q`` (per style layer, in [0, 1]) fitted for one face, reference and region."""

    inputs: str  #: the transfer's :meth:`~..edits.transfer.TransferEdit.fit_inputs` when fitted
    face_key: str  #: :func:`face_key` of the face it was fitted on
    face: np.ndarray  #: :func:`fingerprint` of that face's styles
    q: Mapping[str, np.ndarray]

    def __post_init__(self) -> None:
        face = as_array(self.face, "face")
        if face.ndim != 2 or face.shape[1] != FINGERPRINT_STATS or not 0 < face.shape[0] <= _MAX_LAYERS:
            raise field_error("face", f"expected a [layers, {FINGERPRINT_STATS}] fingerprint, "
                                             f"got shape {face.shape}")
        if not 0 < len(self.q) <= _MAX_LAYERS:
            raise field_error("q", f"expected 1…{_MAX_LAYERS} layers of channel weights, got {len(self.q)}")
        q = {}
        for name, v in self.q.items():
            arr = as_array(v, at("q", str(name))).astype(np.float32)
            if arr.ndim != 1 or not 0 < arr.size <= _MAX_CHANNELS or arr.min() < 0 or arr.max() > 1:
                raise field_error(at("q", str(name)), "channel weights must be one row of values in [0, 1]")
            q[str(name)] = arr
        object.__setattr__(self, "face", frozen_array(face.astype(np.float64)))
        object.__setattr__(self, "q", FrozenArrays(q))

    def fits(self, inputs: str, styles: Mapping[str, Tensor]) -> bool:
        """Made for these fit inputs and the face whose base styles are ``styles``?"""
        return self.inputs == inputs and same_face(self.face, fingerprint(styles)) and \
            all(n in styles and styles[n].shape[-1] == v.size for n, v in self.q.items())

    def to_json(self) -> dict[str, Any]:
        return {"inputs": self.inputs, "face_key": self.face_key, "face": self.face.tolist()}

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: np.asarray(v) for name, v in self.q.items()}

    @classmethod
    def from_json(cls, data: Any, arrays: Mapping[str, np.ndarray], where: str) -> "FittedQuery":
        data = as_mapping(data, where)
        face = data.get("face")
        if not isinstance(face, list) or len(face) > _MAX_LAYERS:
            raise field_error(at(where, "face"), "expected a list of per-layer numbers")
        try:
            face_arr = np.asarray(face, np.float64)
        except (TypeError, ValueError):
            raise field_error(at(where, "face"), "expected a list of per-layer numbers") from None
        return construct(cls, {"inputs": as_text(data.get("inputs"), at(where, "inputs"), 100),
                               "face_key": as_text(data.get("face_key"), at(where, "face_key"), 100),
                               "face": face_arr, "q": {k: arrays[k] for k in list(arrays)[: _MAX_LAYERS + 1]}}, where)
