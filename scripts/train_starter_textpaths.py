"""Train the starter text path library shipped for the default model (resources/textpaths/<model>/textpaths.sstp).

    python scripts/train_starter_textpaths.py [--steps 40] [--batch 8]

Uses the built-in face-text encoder (minilm), so only pairs it can know are trained: age, gender,
smile and eye openness, worded as its captions are (engine/text/face_captions.py). The issue's
surprise, anger, hair length, tan and make-up are left out: no predictor labels them (surprise too
rarely), so a path would move whatever proxy the encoder uses (docs/textpaths.md). Trains through
the CLI in a private data folder, then copies the library into resources/.

Status: trained once (40 steps, batch 8, 497 s on CPU) and NOT shipped: at ±2 slider units the
age path reddens the skin, the gender path's − end adds glasses and a moustache, and the
eyes_closed path blurs the face away (docs/textpaths.md, docs/face_text_starter.png).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PAIRS = [("age", "an old person", "a young person"),
         ("gender", "a woman", "a man"),
         ("smile", "a smiling face", "a face with a neutral expression"),
         ("eyes_closed", "a person with narrowed eyes", "a person with wide open eyes")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--home", default=None, help="data folder to train in (default: a temporary one)")
    args = ap.parse_args()
    home = args.home or tempfile.mkdtemp(prefix="starter-textpaths-")
    os.environ["STYLESTUDIO_HOME"] = home
    from stylestudio.cli import main as cli
    from stylestudio.engine.model_store import DEFAULT_MODEL
    from stylestudio.engine.text.library import library_file

    argv = ["textpaths", "train", "--encoder", "minilm", "--steps", str(args.steps), "--batch", str(args.batch),
            "--name", "textpaths"]
    for name, pos, neg in PAIRS:
        argv += ["--pair", f"{pos}|{neg}", "--as", name]
    if cli(argv) != 0:
        return 1
    out = REPO / "resources" / "textpaths" / DEFAULT_MODEL / "textpaths.sstp"
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(library_file(DEFAULT_MODEL, "textpaths"), out)
    print(f"→ {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
