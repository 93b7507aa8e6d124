#!/bin/sh
# Runs the README's "Your own key manager" section against this checkout's build, in a fresh
# temporary directory, and prints every command's real output — the source of that section's
# output blocks. The UI steps (Test, Save) are done with the API calls the page makes.
# Needs: npm ci (or npm run build) done, curl.
#   scripts/readme-xks.sh              # convault on PORT=18590, the proxy on XKS_PORT=19443
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
port=${PORT:-18590}
xks_port=${XKS_PORT:-19443}
work=$(mktemp -d)
cd "$work"
cli="$repo/dist/src/cli/main.js"
cv() { node "$cli" "$@"; }
server=; proxy=
trap 'kill $server $proxy 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
show() { printf '\n$ %s\n' "$*"; }
wait_for() { i=0; until grep -q "$2" "$1"; do i=$((i + 1)); [ $i -lt 300 ] || { cat "$1"; exit 1; }; sleep 0.1; done; }

echo "### 1. The key manager's side: a key and credentials in the reference XKS proxy (its own data dir)"
show "./convault xks create-key --key-id bank-key-1 --data-dir xks-data"
cv xks create-key --key-id bank-key-1 --data-dir xks-data
show "./convault xks credentials --uri-prefix /bank --data-dir xks-data --json"
cv xks credentials --uri-prefix /bank --data-dir xks-data --json | tee xks-credentials.json | sed -e 's/"secretAccessKey": "[^"]*"/"secretAccessKey": "…"/'
show "./convault xks serve --port $xks_port --data-dir xks-data &"
node "$cli" xks serve --port "$xks_port" --data-dir xks-data >xks.log 2>&1 &
proxy=$!
wait_for xks.log 'listening at'
sed -e "s#$work#/…#g" xks.log

echo; echo "### 2. convault, allowed to reach a proxy on loopback over http"
show "export CONVAULT_XKS_ALLOW_HTTP_LOOPBACK=true   # serve and the CLI: admit http:// proxies on loopback"; show "PORT=$port npm start"
export CONVAULT_XKS_ALLOW_HTTP_LOOPBACK=true
PORT=$port node "$cli" serve >serve.log 2>&1 &
server=$!
wait_for serve.log 'serving at'
sleep 0.2
B=http://localhost:$port
T=$(cat data/admin-token)
json() { curl -s -H "Authorization: Bearer $T" -H 'content-type: application/json' "$@"; }
field() { node -pe "JSON.parse(require('fs').readFileSync('xks-credentials.json')).$1"; }
body="{\"keyConfigurationType\":\"LocalKeyManager\",\"url\":\"http://127.0.0.1:$xks_port$(field uriPrefix)\",\"keyId\":\"bank-key-1\",\"apiId\":\"$(field accessKeyId)\",\"apiKey\":\"$(field secretAccessKey)\"}"

echo; echo "### 3. Test, then Save (what the page sends)"
show "curl … -X POST $B/api/v2/conversations/keyconfigurations/validate -d '{…LocalKeyManager…}'"
json -X POST "$B/api/v2/conversations/keyconfigurations/validate" -d "$body" |
  node -e 'const r=JSON.parse(require("fs").readFileSync(0));console.log("Test ok:", r.ok, r.steps.map(s=>(s.ok?"✓ ":"✗ ")+s.step).join(", "), "| apiKey:", r.apiKey)'
show "curl … -X POST $B/api/v2/conversations/keyconfigurations -d '{…LocalKeyManager…}'"
saved=$(json -X POST "$B/api/v2/conversations/keyconfigurations" -d "$body")
echo "$saved" | node -e 'const r=JSON.parse(require("fs").readFileSync(0));const {updatedAt,updatedBy,selfUri,...rest}=r;console.log(JSON.stringify(rest))'
id=$(echo "$saved" | node -pe 'JSON.parse(require("fs").readFileSync(0)).id')

echo; echo "### 4. Secured data under the key behind the proxy"
show "curl -s -X PUT … $B/api/v2/conversations/call-1/secureddata -d '{\"data\":{\"card\":\"4111 1111 1111 1111\"}}'"
json -X PUT "$B/api/v2/conversations/call-1/secureddata" -d '{"data":{"card":"4111 1111 1111 1111"}}'; echo
show "curl -s … $B/api/v2/conversations/call-1/secureddata"
json "$B/api/v2/conversations/call-1/secureddata"; echo
show "curl -s -X POST … $B/api/v2/conversations/encrypt -d '{\"data\":\"hello\"}'"
json -X POST "$B/api/v2/conversations/encrypt" -d '{"data":"hello"}' | node -e 'const r=JSON.parse(require("fs").readFileSync(0));console.log(r.status, r.errorType)'

echo; echo "### 5. Rotate to an AWS KMS key (the demo key of the embedded local KMS) and rewrap"
demo=$(sed -n 's/.*Demo customer key (local KMS, account 111122223333): //p' serve.log)
show "curl … -X PUT $B/api/v2/conversations/keyconfigurations/$id -d '{\"keyConfigurationType\":\"KmsSymmetric\",\"url\":\"$demo\",\"version\":1}'"
json -X PUT "$B/api/v2/conversations/keyconfigurations/$id" -d "{\"keyConfigurationType\":\"KmsSymmetric\",\"url\":\"$demo\",\"version\":1}" |
  node -e 'const r=JSON.parse(require("fs").readFileSync(0));console.log("Saved: version", r.version, r.keyConfigurationType, r.keyArn)'
ORG=$(json "$B/api/v2/organizations/me" | node -pe 'JSON.parse(require("fs").readFileSync(0)).id')
show "./convault rewrap --org \$ORG --wait"
PORT=$port cv rewrap --org "$ORG" --wait 2>&1 | tr '\r' '\n' | tail -2
show "curl -s … $B/api/v2/conversations/keyconfigurations/$id/usage"
json "$B/api/v2/conversations/keyconfigurations/$id/usage" |
  node -e 'const r=JSON.parse(require("fs").readFileSync(0));for(const k of r.entities)console.log(k.status.padEnd(13), k.keyArn, "data keys:", k.dataKeys)'
show "./convault xks disable-key --key-id bank-key-1 --data-dir xks-data   # the old key is no longer needed"
cv xks disable-key --key-id bank-key-1 --data-dir xks-data
show "curl -s … $B/api/v2/conversations/call-1/secureddata"
json "$B/api/v2/conversations/call-1/secureddata"; echo
