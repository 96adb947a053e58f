#!/usr/bin/env bash
# Fetches the real Claude Code CLI for the lab and prints its path on stdout:
#   fetch-claude.sh
# The CLI is the executable PyPI's claude-agent-sdk wheel bundles
# (claude_agent_sdk/_bundled/claude, `claude --version` = 2.1.327 (Claude Code)). It links
# only glibc, so a FROM-scratch lab image runs it once those libraries are copied in.
# The wheel is pinned by version and sha256; only the binary is kept, in
#   ${PD_CLAUDE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pd-doctor}/claude-agent-sdk-0.2.184/claude
# and nothing is downloaded when it is already there. Progress and errors go to stderr.
set -euo pipefail

version=0.2.184
wheel=claude_agent_sdk-$version-py3-none-manylinux_2_17_x86_64.whl
sha256=40509cadce72d62ded6c3ed831bbcffbff1a7fed8a19cfe1670b3a55418ed089
member=claude_agent_sdk/_bundled/claude

fail() {
  echo "fetch-claude.sh: $*" >&2
  exit 1
}

cache=${PD_CLAUDE_CACHE:-${XDG_CACHE_HOME:-${HOME:?HOME is not set}/.cache}/pd-doctor}
dir=$cache/claude-agent-sdk-$version
binary=$dir/claude
if [ -f "$binary" ] && [ -x "$binary" ]; then
  echo "$binary"
  exit 0
fi

[ "$(uname -sm)" = "Linux x86_64" ] || fail "the pinned wheel is for Linux x86_64, this is $(uname -sm)"
command -v python3 >/dev/null || fail "python3 is needed (pip and zipfile)"
python3 -m pip --version >/dev/null 2>&1 || fail "python3 has no pip (apt-get install python3-pip)"
mkdir -p "$dir" || fail "cannot create the cache folder $dir"

# Test processes may run this at once: one downloads, the others wait and find the binary.
exec 9>"$dir/.lock"
flock 9
if [ -f "$binary" ] && [ -x "$binary" ]; then
  echo "$binary"
  exit 0
fi

work=$(mktemp -d "$dir/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT

# pip checks the hash itself (--require-hashes), and only this exact file can match it.
# The platform and Python version are the wheel's (py3, Requires-Python >= 3.10), not
# this host's python3's: the wheel carries no Python code the lab runs.
printf 'claude-agent-sdk==%s --hash=sha256:%s\n' "$version" "$sha256" > "$work/requirements.txt"
echo "fetch-claude.sh: downloading $wheel (165 MB) from PyPI" >&2
python3 -m pip download --quiet --no-deps --only-binary=:all: \
  --platform manylinux_2_17_x86_64 --implementation py --python-version 3.12 \
  --require-hashes -r "$work/requirements.txt" --dest "$work" >&2 \
  || fail "pip could not download claude-agent-sdk==$version (see above)"
[ -f "$work/$wheel" ] || fail "pip did not save $wheel (got: $(ls "$work"))"
got=$(sha256sum "$work/$wheel" | cut -d' ' -f1)
[ "$got" = "$sha256" ] || fail "$wheel has sha256 $got, expected $sha256"

# Only the binary comes out of the wheel, under a temporary name, then moved into place
# whole so that no reader ever sees half a file.
python3 - "$work/$wheel" "$member" "$work/claude" <<'PY' || fail "cannot extract $member from $wheel"
import shutil, sys, zipfile
wheel, member, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(dest, "wb") as out:
    shutil.copyfileobj(src, out, 1 << 20)
PY
chmod 755 "$work/claude"
"$work/claude" --version >/dev/null 2>&1 || fail "the extracted $member does not run here"
mv -f "$work/claude" "$binary"
echo "$binary"
