#!/bin/bash
# Pipe Dream lab entrypoint, modelled on the primer's Chapter 3:
#   0. make $CLAUDE_CONFIG_DIR/debug, which Claude Code needs
#   1. wait for the MCP servers (up to PD_WAIT_SECONDS, default 30)
#   2. for each server whose marker is missing: register it, then write the marker
#   3. exec the command (Claude Code in the real image; `sleep infinity` here)
# The lab image has no Claude Code; "register" copies the project's .mcp.json entries
# into the user scope of $CLAUDE_CONFIG_DIR/.claude.json, as `claude mcp add` would, when
# that file has no mcpServers yet. A file that already has some is the failed
# `claude mcp add ... || true` of the real project: the markers are written anyway.
set -u
config=${CLAUDE_CONFIG_DIR:-/claude-config}
mcp=/pipe-dream/.mcp.json
# Claude Code crashes with ENOENT without debug/ in its config dir (the Hub's entrypoint
# makes it again after clearing it); made first, before the wait.
mkdir -p "$config/debug"

# PD_WAIT_FOR: "host:port host:port" of the servers to wait for.
deadline=$((SECONDS + ${PD_WAIT_SECONDS:-30}))
for target in ${PD_WAIT_FOR:-}; do
  until (exec 3<>"/dev/tcp/${target%:*}/${target##*:}") 2>/dev/null; do
    [ "$SECONDS" -ge "$deadline" ] && { echo "entrypoint: $target not reachable, going on" >&2; break; }
    sleep 1
  done
done

configured=0
for marker in .mcp-configured .git-mcp-configured; do
  [ -e "$config/$marker" ] || configured=1
done
if [ "$configured" = 1 ] && [ -r "$mcp" ]; then
  if [ ! -s "$config/.claude.json" ]; then
    cp "$mcp" "$config/.claude.json"
  else
    json=$(<"$config/.claude.json")
    if [[ $json != *'"mcpServers"'* ]]; then
      # No jq in a FROM-scratch image: the body of .mcp.json ("mcpServers": {...})
      # goes in before the closing brace of .claude.json.
      servers=$(<"$mcp"); servers=${servers#*\{}; servers=${servers%\}*}
      body=${json%\}*}; shopt -s extglob; body=${body%%+([[:space:]])}
      sep=,; [[ $body == *'{' ]] && sep=
      printf '%s%s%s}\n' "$body" "$sep" "$servers" > "$config/.claude.json"
    fi
  fi
  touch "$config/.mcp-configured" "$config/.git-mcp-configured"
  echo "entrypoint: MCP configured" >&2
fi

exec "$@"
