#!/usr/bin/env sh
# Register StyleStudio with the desktop (menu entry, icon, .stylestudio file type) for the current
# user. Run after `pip install .`; undo with --uninstall.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data=${XDG_DATA_HOME:-$HOME/.local/share}
icon="$here/../../resources/icons/stylestudio.svg"
if [ "${1:-}" = "--uninstall" ]; then
    rm -f "$data/applications/stylestudio.desktop" "$data/mime/packages/stylestudio-mime.xml" \
          "$data/icons/hicolor/scalable/apps/stylestudio.svg"
else
    install -Dm644 "$here/stylestudio.desktop" "$data/applications/stylestudio.desktop"
    install -Dm644 "$here/stylestudio-mime.xml" "$data/mime/packages/stylestudio-mime.xml"
    [ -f "$icon" ] && install -Dm644 "$icon" "$data/icons/hicolor/scalable/apps/stylestudio.svg"
fi
command -v update-mime-database >/dev/null && update-mime-database "$data/mime" || true
command -v update-desktop-database >/dev/null && update-desktop-database "$data/applications" || true
