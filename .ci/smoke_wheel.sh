#!/usr/bin/env bash
# Install StyleStudio as a user does (a wheel, into a fresh venv, outside the source tree) and run
# the headline commands from there. An editable install hides missing package data; this does not.
#   bash .ci/smoke_wheel.sh            (uses $STYLESTUDIO_WHEELHOUSE for the default model if set)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python3 -m pip wheel --quiet --no-deps --wheel-dir "$work/dist" "$repo"
python3 -m venv "$work/venv"
py="$work/venv/bin/python"
"$py" -m pip install --quiet --upgrade pip
"$py" -m pip install --quiet torch==2.13.0
"$py" -m pip install --quiet "$work"/dist/stylestudio-*.whl

cd "$work"   # nothing of the checkout is importable from here
export STYLESTUDIO_HOME="$work/home" QT_QPA_PLATFORM=offscreen
ss="$work/venv/bin/stylestudio"

"$py" - <<'PY'
import stylestudio, stylestudio.paths as p
res = p.resources_dir()
assert "site-packages" in str(res), f"resources found outside the install: {res}"
for f in ("icons/app.svg", "directions/mobilestylegan-ffhq/attributes.ssdir",
          "catalogs/mobilestylegan-ffhq/default.json", "encoder/mobilestylegan-ffhq/default.json",
          "textencoder/minilm-face-head.pt", "textpaths/mobilestylegan-ffhq/textpaths.sstp"):
    assert (res / f).is_file(), f"the wheel lacks resources/{f}"
print("installed from", stylestudio.__file__, "with resources in", res)
PY
"$ss" --version
"$ss" generate --seed 42 --size 256 -o face.png
"$ss" edit --source seed:7 --set age=+2 --size 256 --save-project aged.stylestudio -o aged.png
"$ss" render-project aged.stylestudio --size 256 -o aged-again.png
"$ss" transfer --target seed:12 --reference seed:34 --region mouth --size 256 -o mouth.png
"$py" - <<'PY'
from PySide6.QtWidgets import QApplication
app = QApplication([])
from stylestudio.app.theme import icon
assert icon("no-such-icon").isNull()  # the check below can fail
for name in ("open", "save", "undo", "sliders"):
    assert not icon(name).isNull(), f"toolbar icon {name!r} is missing from the install"
print("GUI icons load from the install")
PY
for f in face.png aged.png aged-again.png mouth.png aged.stylestudio; do
    [ -s "$f" ] || { echo "smoke: $f was not written" >&2; exit 1; }
done
echo "wheel smoke test passed"
