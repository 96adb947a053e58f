#!/usr/bin/env bash
# Builds the lab image's root file system from this host's own programs:
#   build-rootfs.sh DEST [--no-curl]
# Copies bash, coreutils, getent and (by default) curl with every library `ldd` names,
# plus libnss_files/libnss_dns and an nsswitch.conf so names resolve. No download.
set -euo pipefail
dest=$1; shift
with_curl=1
[ "${1:-}" = "--no-curl" ] && with_curl=0
programs=(bash sleep cat ls touch cp mkdir rm env getent)
[ "$with_curl" = 1 ] && programs+=(curl)
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
  path=$(command -v "$p")
  copy_with_libs "$path"
  [ -e "$dest/bin/$p" ] || cp -L "$path" "$dest/bin/$p"
done
for lib in /lib/*/libnss_files.so.2 /lib/*/libnss_dns.so.2 /lib/*/libresolv.so.2; do
  [ -e "$lib" ] && copy_with_libs "$lib"
done
printf 'hosts: files dns\n' > "$dest/etc/nsswitch.conf"
printf 'root:x:0:0:root:/:/bin/bash\n' > "$dest/etc/passwd"
