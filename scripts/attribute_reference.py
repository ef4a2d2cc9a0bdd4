"""Make tests/data/attribute_reference.npz: the predictors' outputs from their reference runtimes.

The attribute networks run in StyleStudio's own PyTorch rebuild (stylestudio/engine/attributes/
graphs.py). Their tests compare against outputs computed here with the reference runtimes, on
fixed pseudo-random inputs the tests regenerate: OpenVINO for the ONNX graphs (it reads ONNX as
is) and TensorFlow.js (the npm packages @tensorflow/tfjs-core, -converter and -backend-cpu, pure
JavaScript, run by node) for the TF.js graph models. Needs both; run once:

    python scripts/attribute_reference.py --tfjs-node-modules DIR   # DIR holds those npm packages
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stylestudio.engine.attributes import assets  # noqa: E402

#: name → (input shape, RandomState seed, scale, shift): inputs are rand(shape) * scale + shift
INPUTS = {
    "age": ((2, 3, 64, 64), 10, 1.0, -0.5),
    "gender": ((2, 3, 32, 32), 11, 1.0, -0.5),
    "emotion": ((2, 64, 64, 1), 12, 2.0, -1.0),
    "mobilefacenet": ((2, 112, 112, 3), 13, 1.0, 0.0),
}

JS = r"""
const tf = require('@tensorflow/tfjs-core'); require('@tensorflow/tfjs-backend-cpu');
const tfc = require('@tensorflow/tfjs-converter'); const fs = require('fs'); const path = require('path');
(async () => {
  await tf.setBackend('cpu');
  const [modelJson, inFile, shape, outFile] = process.argv.slice(2);
  const json = JSON.parse(fs.readFileSync(modelJson)); const dir = path.dirname(modelJson);
  const buf = Buffer.concat(json.weightsManifest.flatMap(g => g.paths.map(p => fs.readFileSync(path.join(dir, p)))));
  const model = await tfc.loadGraphModel({ load: async () => ({ modelTopology: json.modelTopology,
      weightSpecs: json.weightsManifest.flatMap(g => g.weights), format: json.format,
      weightData: buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length) }) });
  const data = new Float32Array(fs.readFileSync(inFile).buffer.slice(0));
  let out = model.execute(tf.tensor(data, JSON.parse(shape)));
  out = Array.isArray(out) ? out[0] : out;
  fs.writeFileSync(outFile, JSON.stringify({shape: out.shape, data: Array.from(out.dataSync())}));
})();
"""


def reference_input(name: str) -> np.ndarray:
    shape, seed, scale, shift = INPUTS[name]
    return (np.random.RandomState(seed).rand(*shape) * scale + shift).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tfjs-node-modules", type=Path, required=True)
    ap.add_argument("-o", "--output", type=Path, default=REPO / "tests" / "data" / "attribute_reference.npz")
    args = ap.parse_args()
    import openvino as ov

    core = ov.Core()
    out: dict[str, np.ndarray] = {}
    for name, spec in (("age", assets.AGE_ONNX), ("gender", assets.GENDER_ONNX)):
        model = core.compile_model(core.read_model(str(assets.onnx_file(spec))), "CPU",
                                   {"INFERENCE_PRECISION_HINT": "f32"})
        out[name] = model([reference_input(name)])[0]
    with tempfile.TemporaryDirectory() as tmp:
        js = Path(tmp) / "ref.js"
        js.write_text(JS)
        for name in ("emotion", "mobilefacenet"):
            x = reference_input(name)
            (Path(tmp) / "in.bin").write_bytes(x.tobytes())
            subprocess.run(["node", str(js), str(assets.human_model(name)), str(Path(tmp) / "in.bin"),
                            json.dumps(list(x.shape)), str(Path(tmp) / "out.json")],
                           check=True, env={"NODE_PATH": str(args.tfjs_node_modules), "PATH": "/usr/bin:/bin"})
            res = json.loads((Path(tmp) / "out.json").read_text())
            out[name] = np.asarray(res["data"], np.float32).reshape(res["shape"])
    np.savez_compressed(args.output, **out)
    print({k: v.shape for k, v in out.items()}, "→", args.output)


if __name__ == "__main__":
    main()
