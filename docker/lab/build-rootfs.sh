#!/usr/bin/env bash
# Builds the lab image's root file system from this host's own programs:
#   build-rootfs.sh DEST [curl|wget|node|bash-only|no-sh|bare|minimal|hub]  (default: curl)
# Copies bash, sh, coreutils and getent, plus the named HTTP client, with every library
# `ldd` names, the NSS modules and an nsswitch.conf so names resolve. `bash-only` has no
# HTTP client but bash; `no-sh` is that without sh (pd-doctor's per-client path); `bare`
# has nothing but sleep: no shell and no client at all. `minimal` is an agent image as
# small as one can be: bash (also as /bin/sh), curl, cat, grep, getent, ls, sleep,
# touch, rm and mkdir, and no other coreutils (no sha256sum, cksum, tr, cut, wc, env,
# cp). `hub` is what the Agent Hub image (docker/lab/hub) needs besides curl's: tmux
# (with terminfo), jq, and Debian's python3.11 with its standard library and httpx from
# python3-httpx, the stdio proxy's only dependency. Nothing is downloaded.
set -euo pipefail
dest=$1
variant=${2:-curl}
base=(bash sleep cat ls touch cp mkdir rm env getent)
# What an agent image's sh has at hand: pd-doctor's one-exec script uses these.
tools=(sh tr sha256sum cksum wc)
case "$variant" in
  bare) programs=(sleep) ;;
  minimal) programs=(bash curl cat grep getent ls sleep touch rm mkdir) ;;
  no-sh) programs=("${base[@]}") ;;
  bash-only) programs=("${base[@]}" "${tools[@]}") ;;
  curl|wget|node) programs=("${base[@]}" "${tools[@]}" "$variant") ;;
  hub) programs=("${base[@]}" "${tools[@]}" curl mv tmux jq /usr/bin/python3.11) ;;
  *) echo "unknown variant $variant" >&2; exit 2 ;;
esac
mkdir -p "$dest/bin" "$dest/etc" "$dest/tmp"
# The libraries `ldd` names for $1 (none for a static one), copied where they are.
copy_libs() {
  { ldd "$1" 2>/dev/null || true; } | { grep -oE '/[^ ]+' || true; } | while read -r lib; do
    [ -e "$dest$lib" ] && continue
    mkdir -p "$dest$(dirname "$lib")"
    cp -L "$lib" "$dest$lib"
  done
}
copy_with_libs() {
  local file=$1
  mkdir -p "$dest$(dirname "$file")"
  cp -L "$file" "$dest$file"
  copy_libs "$file"
}
for p in "${programs[@]}"; do
  path=$(command -v "$p") || { echo "build-rootfs.sh: $p is not installed on this host" >&2; exit 1; }
  copy_with_libs "$path"
  case "$p" in
    /*) ;; # named by its path: it stays there
    *) [ -e "$dest/bin/$p" ] || cp -L "$path" "$dest/bin/$p" ;;
  esac
done
# The minimal image's sh is bash itself, as in images whose /bin/sh is bash.
[ "$variant" = minimal ] && cp -L "$(command -v bash)" "$dest/bin/sh"
for lib in /lib/*/libnss_files.so.2 /lib/*/libnss_dns.so.2 /lib/*/libresolv.so.2; do
  [ -e "$lib" ] && copy_with_libs "$lib"
done
printf 'hosts: files dns\n' > "$dest/etc/nsswitch.conf"
printf 'root:x:0:0:root:/:/bin/bash\n' > "$dest/etc/passwd"
[ "$variant" = hub ] || exit 0

# tmux: its socket lives in /tmp; `docker run -t` sets TERM=xterm, and in the session it
# is tmux's own. It refuses to start without a UTF-8 locale: glibc's C.UTF-8 (the image
# sets LANG=C.UTF-8, as the python:3.11-slim base of the real image does).
chmod 1777 "$dest/tmp"
[ -d /usr/lib/locale/C.utf8 ] || { echo "build-rootfs.sh: no /usr/lib/locale/C.utf8 on this host" >&2; exit 1; }
mkdir -p "$dest/usr/lib/locale"
cp -rL /usr/lib/locale/C.utf8 "$dest/usr/lib/locale/"
for term in x/xterm x/xterm-256color s/screen s/screen-256color t/tmux t/tmux-256color d/dumb; do
  for dir in /lib/terminfo /usr/share/terminfo; do
    if [ -e "$dir/$term" ]; then
      mkdir -p "$dest/usr/share/terminfo/${term%/*}"
      cp -L "$dir/$term" "$dest/usr/share/terminfo/$term"
      break
    fi
  done
done

# Debian's python3 (not whatever python3 comes first on PATH), its standard library
# without what a proxy never imports, and the C modules' libraries.
py=/usr/bin/python3.11
stdlib=/usr/lib/python3.11
[ -d "$stdlib" ] || { echo "build-rootfs.sh: $stdlib is missing (apt-get install python3)" >&2; exit 1; }
ln -sf python3.11 "$dest/usr/bin/python3"
mkdir -p "$dest/usr/lib"
cp -rL "$stdlib" "$dest/usr/lib/"
(
  cd "$dest$stdlib"
  rm -rf test idlelib tkinter turtledemo ensurepip lib2to3 config-3.11-* pydoc_data \
    sitecustomize.py lib-dynload/_test* lib-dynload/xx* lib-dynload/_ctypes_test* \
    lib-dynload/_dbm.* lib-dynload/_sqlite3.* lib-dynload/_curses* lib-dynload/readline.* \
    lib-dynload/nis.* lib-dynload/ossaudiodev.* lib-dynload/audioop.*
  find . -name __pycache__ -type d -prune -exec rm -rf {} +
)
for module in "$dest$stdlib"/lib-dynload/*.so; do
  copy_libs "$module"
done

# httpx and what it imports, from Debian's python3-httpx (dist-packages, which Debian's
# site.py puts on sys.path).
packages=/usr/lib/python3/dist-packages
"$py" -c 'import httpx' 2>/dev/null \
  || { echo "build-rootfs.sh: $py cannot import httpx (apt-get install python3-httpx)" >&2; exit 1; }
mkdir -p "$dest$packages"
for pkg in httpx httpcore h11 anyio sniffio idna certifi rfc3986 h2 hpack hyperframe socksio; do
  [ -d "$packages/$pkg" ] || continue
  cp -rL "$packages/$pkg" "$dest$packages/"
done
find "$dest$packages" -name __pycache__ -type d -prune -exec rm -rf {} +
# Debian's certifi names the system bundle; httpx loads it for every client, even one
# that only speaks plain HTTP. Mozilla's roots as Debian ships them, nothing of this host.
mkdir -p "$dest/etc/ssl/certs"
cat /usr/share/ca-certificates/mozilla/*.crt > "$dest/etc/ssl/certs/ca-certificates.crt"
mkdir -p "$dest/pipe-dream" "$dest/claude-config" "$dest/usr/local/bin"
