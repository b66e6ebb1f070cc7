#!/usr/bin/env bash
# Rebuilds ui/fonts/TeamChatEmoji-Regular.ttf, the monochrome emoji font the
# windows embed, from Google's Noto Emoji (SIL Open Font License 1.1, no
# reserved font name), as packaged on the npm registry. It keeps the
# emoji (U+2300 and up, the zero-width joiner and the keycap mark, with the
# shaping rules for ZWJ sequences, skin tones and flags) and drops the digits, '#', '*', space, (c) and (R) the font also
# carries for keycaps, and the punctuation, letter-like symbols, arrows and
# geometric shapes (U+2000-U+22FF, U+25A0-U+25FC: TM, (i), arrows, squares,
# triangles) that text uses as text, so text keeps the desktop's own font and
# only emoji come from this one. The result is renamed "TeamChat Emoji", as the OFL asks
# of a modified version. The committed font is what the build uses; this
# script only documents and repeats how it was made (run it after bumping
# the version below).
#
#   scripts/make-emoji-font.sh      (needs npm and python3 -m venv)
set -euo pipefail
cd "$(dirname "$0")/.."
pkg=@expo-google-fonts/noto-emoji
version=0.4.7
integrity=sha512-Gs7URwtKmCzzd  # prefix of the registry's integrity hash
fonttools=4.68.0

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$pkg@$version" >/dev/null)
got=$(cd "$work" && npm view "$pkg@$version" dist.integrity)
case "$got" in "$integrity"*) ;; *) echo "make-emoji-font: $pkg@$version has integrity $got, expected $integrity..." >&2; exit 1 ;; esac
tar xzf "$work"/*.tgz -C "$work"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "fonttools==$fonttools"
"$work/venv/bin/pyftsubset" "$work/package/400Regular/NotoEmoji_400Regular.ttf" \
  --unicodes="U+200D,U+20E3,U+2300-259F,U+25FD-10FFFF" --layout-features='*' --name-IDs='*' --name-languages='*' \
  --notdef-outline --output-file="$work/sub.ttf"
"$work/venv/bin/python" - "$work/sub.ttf" ui/fonts/TeamChatEmoji-Regular.ttf <<'PY'
import sys
from fontTools.ttLib import TTFont
src, dst = sys.argv[1], sys.argv[2]
f = TTFont(src)
names = {1: "TeamChat Emoji", 2: "Regular", 3: "TeamChatEmoji-Regular",
         4: "TeamChat Emoji Regular", 6: "TeamChatEmoji-Regular",
         16: "TeamChat Emoji", 17: "Regular"}
table = f["name"]
for rec in list(table.names):
    if rec.nameID in names:
        table.removeNames(nameID=rec.nameID)
for nid, text in names.items():
    table.setName(text, nid, 3, 1, 0x409)
    table.setName(text, nid, 1, 0, 0)
desc = table.getDebugName(10) or ""
table.setName("Noto Emoji by Google LLC, subset to emoji and renamed for TeamChat. " + desc, 10, 3, 1, 0x409)
f.save(dst)
PY
cp "$work/package/LICENSE_FONT" ui/fonts/OFL.txt
echo "wrote ui/fonts/TeamChatEmoji-Regular.ttf ($(stat -c %s ui/fonts/TeamChatEmoji-Regular.ttf) bytes) and ui/fonts/OFL.txt" >&2
