#!/usr/bin/env bash
# Builds the lab image's root file system from this host's own programs:
#   build-rootfs.sh DEST [curl|wget|node|bash-only|no-sh|bare]     (default: curl)
# Copies bash, sh, coreutils and getent, plus the named HTTP client, with every library
# `ldd` names, the NSS modules and an nsswitch.conf so names resolve. `bash-only` has no
# HTTP client but bash; `no-sh` is that without sh (pd-doctor's per-client path); `bare`
# has nothing but sleep: no shell and no client at all. Nothing is downloaded.
set -euo pipefail
dest=$1
variant=${2:-curl}
base=(bash sleep cat ls touch cp mkdir rm env getent)
# What an agent image's sh has at hand: pd-doctor's one-exec script uses these.
tools=(sh tr sha256sum cksum wc)
case "$variant" in
  bare) programs=(sleep) ;;
  no-sh) programs=("${base[@]}") ;;
  bash-only) programs=("${base[@]}" "${tools[@]}") ;;
  curl|wget|node) programs=("${base[@]}" "${tools[@]}" "$variant") ;;
  *) echo "unknown variant $variant" >&2; exit 2 ;;
esac
mkdir -p "$dest/bin" "$dest/etc" "$dest/tmp"
copy_with_libs() {
  local file=$1
  mkdir -p "$dest$(dirname "$file")"
  cp -L "$file" "$dest$file"
  ldd "$file" 2>/dev/null | grep -oE '/[^ ]+' | while read -r lib; do
    [ -e "$dest$lib" ] && continue
    mkdir -p "$dest$(dirname "$lib")"
    cp -L "$lib" "$dest$lib"
  done
}
for p in "${programs[@]}"; do
  path=$(command -v "$p") || { echo "build-rootfs.sh: $p is not installed on this host" >&2; exit 1; }
  copy_with_libs "$path"
  [ -e "$dest/bin/$p" ] || cp -L "$path" "$dest/bin/$p"
done
for lib in /lib/*/libnss_files.so.2 /lib/*/libnss_dns.so.2 /lib/*/libresolv.so.2; do
  [ -e "$lib" ] && copy_with_libs "$lib"
done
printf 'hosts: files dns\n' > "$dest/etc/nsswitch.conf"
printf 'root:x:0:0:root:/:/bin/bash\n' > "$dest/etc/passwd"
