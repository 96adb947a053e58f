#!/usr/bin/env bash
# The primer's Chapter 8 diagnostic checklist (8.1 to 8.4; 8.5 is the reset, not a
# diagnosis), typed one command after another as a person on a Pipe Dream host would:
# what pd-doctor is measured against in benches/doctor.rs.
#
#   manual-checklist.sh ROOT MAX_TIME "PORT..." "AGENT=CONTAINER..."
#
# ROOT is the project root, PORT the servers' ports, AGENT=CONTAINER the agents and the
# containers that serve them. Every curl gets --max-time MAX_TIME: the primer's plain
# curl would wait for a hung server as long as the server likes; a person gives up after
# about as long as pd-doctor's --timeout. Output is discarded: reading it is not timed.
set -u
root=$1 max=$2 ports=$3 agents=$4
cd "$root" || exit 2
{
  # 8.1 Are MCP servers running?
  for port in $ports; do
    curl --max-time "$max" "http://localhost:$port/mcp"
  done

  # 8.2 Can container reach servers?
  for pair in $agents; do
    for port in $ports; do
      docker exec "${pair#*=}" curl --max-time "$max" "http://host.docker.internal:$port/mcp"
    done
  done

  # 8.3 Is MCP configured?
  for pair in $agents; do
    agent=${pair%%=*}
    ls -la ".claude/users/$agent/container/.mcp-configured"
    ls -la ".claude/users/$agent/container/.git-mcp-configured"
    cat ".claude/users/$agent/container/.claude.json" | grep -A 10 mcpServers
  done

  # 8.4 Are there stale containers?
  docker ps -a
} >/dev/null 2>&1
exit 0
