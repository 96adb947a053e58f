#!/bin/bash
# The lab hub image's entrypoint, modelled on Pipe Dream's Agent Hub one: MCP servers
# come only from the project's .mcp.json (a stdio proxy per server) and its approval
# overlay, so whatever MCP state an earlier run left in /claude-config/.claude.json is
# cleared, at any depth, at every start. Then either Claude Code, or (SETUP_ONLY=1) a
# sleep while the Hub starts Claude Code in a tmux session with docker exec.

mcp=/pipe-dream/.mcp.json
settings=/pipe-dream/.claude/settings.local.json
state=/claude-config/.claude.json

waited=0
until [ -f "$mcp" ]; do
    if [ "$waited" -ge 10 ]; then
        echo "ERROR: $mcp is not mounted (waited ${waited}s)" >&2
        exit 1
    fi
    echo "waiting for $mcp to be mounted..."
    sleep 1
    waited=$((waited + 1))
done
echo "project MCP config: $mcp"
if [ -f "$settings" ]; then
    echo "project settings: $settings"
else
    echo "WARNING: no $settings: the project's servers are not approved" >&2
fi

if [ -d /claude-config ]; then
    rm -rf /claude-config/debug
    if [ -f "$state" ]; then
        if jq 'walk(if type == "object" then
                    (if has("mcpServers") then .mcpServers = {} else . end)
                  | (if has("enabledMcpjsonServers") then .enabledMcpjsonServers = [] else . end)
                  | (if has("disabledMcpjsonServers") then .disabledMcpjsonServers = [] else . end)
                else . end)' "$state" > "$state.pd-tmp" \
            && mv "$state.pd-tmp" "$state"; then
            echo "cleared MCP state in $state"
        else
            rm -f "$state.pd-tmp"
            echo "WARNING: could not clear MCP state in $state" >&2
        fi
    fi
    mkdir -p /claude-config/debug
fi

if [ "${SETUP_ONLY:-}" = "1" ]; then
    echo "Setup complete. Waiting for docker exec..."
    exec sleep infinity
fi
exec claude "$@"
