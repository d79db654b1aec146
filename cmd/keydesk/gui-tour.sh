#!/bin/sh
# Runs the real Keydesk window under Xvfb on a throwaway data directory:
#   cmd/keydesk/gui-tour.sh screenshots DIR   walks the main screens, saving PNGs in DIR
#   cmd/keydesk/gui-tour.sh measure           prints the first frame's time and the memory
# The pictures are the X server's own screen (Xvfb -fbdir): OpenGL read-back
# is blank under Xvfb.
set -eu
mode=${1:?usage: gui-tour.sh screenshots DIR | measure}
go=${GO:-go}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
home="$tmp/home"
mkdir -p "$tmp/fb" "$home/.local/share" "$home/.config"
bin="$tmp/keydesk"
# TAGS: the program's build tags, as make passes them (APP_TAGS).
$go build -tags "${TAGS:-no_emoji}" -o "$bin" ./cmd/keydesk
export XDG_DATA_HOME="$home/.local/share" XDG_CONFIG_HOME="$home/.config" KEYDESK_CONFIG="$home/.config/keydesk/config.json"
# The app's own languages; the C locale makes Fyne log a harmless complaint.
export LANG=C.UTF-8
# The window runs in a throwaway home, so that the paths it shows read as
# a person's would (~/.local/share/keydesk/...); the build above keeps the
# real one and its build cache.
run() { HOME="$home" xvfb-run -a -s "-screen 0 1280x800x24 -fbdir $tmp/fb" "$bin" gui-tour "$@"; }
case "$mode" in
screenshots)
	out=${2:?usage: gui-tour.sh screenshots DIR}
	mkdir -p "$out"
	KEYDESK_XVFB_FBDIR="$tmp/fb" run --out "$(cd "$out" && pwd)"
	echo "screenshots in $out:"; ls "$out"
	;;
measure)
	# The yardstick first: a minimal Fyne window in the same Xvfb, which
	# the window's memory cannot go below (cmd/keydesk/internal/guibaseline).
	$go build -tags "${TAGS:-no_emoji}" -o "$tmp/guibaseline" ./cmd/keydesk/internal/guibaseline
	echo "A minimal Fyne window of the same size (the toolkit and OpenGL alone):"
	HOME="$home" xvfb-run -a -s "-screen 0 1280x800x24" "$tmp/guibaseline" 2>/dev/null | tee "$tmp/baseline.txt"
	echo
	echo "Keydesk:"
	run --measure --cycles "${CYCLES:-100}" | tee "$tmp/keydesk.txt"
	base=$(sed -n 's/^resident memory when idle: \([0-9.]*\) MB.*/\1/p' "$tmp/baseline.txt")
	own=$(sed -n 's/^resident memory when idle: \([0-9.]*\) MB.*/\1/p' "$tmp/keydesk.txt")
	echo
	awk -v k="$own" -v b="$base" 'BEGIN { printf "idle resident memory, Keydesk / the minimal Fyne window: %.1f / %.1f MB = %.2f (Keydesk'"'"'s own: %+.1f MB)\n", k, b, k / b, k - b }'
	;;
*)
	echo "unknown mode $mode" >&2; exit 2
	;;
esac
