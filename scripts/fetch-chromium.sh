#!/usr/bin/env bash
# Fetch Debian's Chromium, and the libraries it needs that this system lacks, into a folder outside the
# repository, without installing anything system-wide: `apt-get download` + `dpkg -x`.  The browser
# tests of `oldphoto serve` (tests/web) use it; nothing else does.
#
#   scripts/fetch-chromium.sh [DIR]     (default: $OLDPHOTO_CHROMIUM_DIR or ~/.cache/oldphoto/chromium)
#
# Afterwards DIR/root/usr/lib/chromium/chromium is the browser and DIR/env its LD_LIBRARY_PATH; the tests
# find both there (OLDPHOTO_CHROMIUM_DIR points them elsewhere).  Rerunning is cheap: it stops early
# when the browser is already there.
set -euo pipefail
dest="${1:-${OLDPHOTO_CHROMIUM_DIR:-$HOME/.cache/oldphoto/chromium}}"
browser="$dest/root/usr/lib/chromium/chromium"
if [ -x "$browser" ] && [ -f "$dest/env" ]; then
    echo "chromium already in $dest"
    exit 0
fi
if ! apt-cache show chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq
    else
        echo "fetch-chromium: apt knows no 'chromium' package; run 'apt-get update' as root first" >&2
        exit 1
    fi
fi
# What an install would add (alternatives resolved by apt itself), plus the browser, which may already
# be installed system-wide but is wanted here too.
packages=$(apt-get -s install --no-install-recommends chromium 2>/dev/null | awk '/^Inst /{print $2}')
packages=$(printf '%s\n' chromium chromium-common $packages | sort -u)
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/debs" "$tmp/root"
chmod 755 "$tmp" && chmod 777 "$tmp/debs"  # apt's download user writes there when run as root
(cd "$tmp/debs" && apt-get download -qq $packages)
for deb in "$tmp"/debs/*.deb; do
    dpkg -x "$deb" "$tmp/root"
done
[ -x "$tmp/root/usr/lib/chromium/chromium" ] || { echo "fetch-chromium: no browser in the packages" >&2; exit 1; }
# Every folder of shared libraries the packages brought, for LD_LIBRARY_PATH.
libs=$(cd "$tmp/root" && find . -name '*.so*' \( -type f -o -type l \) -printf '%h\n' | sort -u \
       | sed "s|^\.|$dest/root|" | paste -sd:)
mkdir -p "$dest"
rm -rf "$dest/root"
mv "$tmp/root" "$dest/root"
printf '%s\n' "$libs" > "$dest/env"
if ! LD_LIBRARY_PATH="$libs" "$browser" --version; then
    echo "fetch-chromium: the browser in $dest does not start (a library missing?)" >&2
    exit 1
fi
echo "chromium fetched into $dest"
