#!/bin/sh
# Runs the README's quick start and walkthrough against this checkout's build, in a fresh temporary
# directory on PORT (default 18580, so the non-default-port path is exercised too), and prints every
# command's real output — the source of the README's output blocks. The UI steps (Test, Save) are
# done with the API calls the page makes. Needs: npm ci (or npm run build) done, curl.
#   scripts/readme-walkthrough.sh            # PORT=18580
#   PORT=8080 scripts/readme-walkthrough.sh
#   SCREENSHOT=1 scripts/readme-walkthrough.sh   # also refreshes docs/images/encryption-keys.png
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
port=${PORT:-18580}
work=$(mktemp -d)
cd "$work"
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -rf "$work"' EXIT

PORT=$port node "$repo/dist/src/cli/main.js" serve >serve.log 2>&1 &
server=$!
i=0
until grep -q 'serving at' serve.log; do
  i=$((i + 1)); [ $i -lt 300 ] || { cat serve.log; exit 1; }
  sleep 0.1
done
sleep 0.2
show() { printf '\n$ %s\n' "$*"; }
echo "### npm start (PORT=$port) prints:"
sed -e "s#$work#/…#g" serve.log | grep -v '^{' | sed -e 's/cvt_[A-Za-z0-9_-]*/cvt_…/'

B=http://localhost:$port
T=$(cat data/admin-token)
json() { curl -s -H "Authorization: Bearer $T" -H 'content-type: application/json' "$@"; }
show "curl -H \"Authorization: Bearer \$(cat data/admin-token)\" localhost:$port/api/v2/organizations/me"
json "$B/api/v2/organizations/me"; echo

demo=$(sed -n 's/.*Demo customer key (local KMS, account 111122223333): //p' serve.log)
echo; echo "### Test + Save of the demo key (what the page sends)"
json -X POST "$B/api/v2/conversations/keyconfigurations/validate" -d "{\"keyConfigurationType\":\"KmsSymmetric\",\"url\":\"$demo\"}" |
  node -e 'const r=JSON.parse(require("fs").readFileSync(0));console.log("Test ok:", r.ok, r.steps.map(s=>(s.ok?"✓ ":"✗ ")+s.step).join(", "))'
saved=$(json -X POST "$B/api/v2/conversations/keyconfigurations" -d "{\"keyConfigurationType\":\"KmsSymmetric\",\"url\":\"$demo\"}")
id=$(echo "$saved" | node -pe 'JSON.parse(require("fs").readFileSync(0)).id')
echo "$saved" | node -e 'const r=JSON.parse(require("fs").readFileSync(0));console.log("Saved: version", r.version, "keyId", r.keyId ?? r.keyArn)'
json "$B/api/v2/conversations/keyconfigurations/$id/health" | node -e 'const r=JSON.parse(require("fs").readFileSync(0));console.log("Key health right after Save:", r.status)'

show "curl -s -X PUT … /api/v2/conversations/call-1/secureddata -d '{\"data\":{\"card\":\"4111 1111 1111 1111\"}}'"
json -X PUT "$B/api/v2/conversations/call-1/secureddata" -d '{"data":{"card":"4111 1111 1111 1111"}}' >/dev/null
show "curl -s … /api/v2/conversations/call-1/secureddata"
json "$B/api/v2/conversations/call-1/secureddata"; echo

ORG=$(json "$B/api/v2/organizations/me" | node -pe 'JSON.parse(require("fs").readFileSync(0)).id')
show "./convault kms create-key --account 111122223333 --alias alias/demo-customer-key-2026 --allow-org \$ORG"
"$repo/convault" kms create-key --account 111122223333 --alias alias/demo-customer-key-2026 --allow-org "$ORG" | sed -e "s/$ORG/<your org id>/"

json -X PUT "$B/api/v2/conversations/keyconfigurations/$id" \
  -d '{"keyConfigurationType":"KmsSymmetric","url":"arn:aws:kms:us-east-1:111122223333:alias/demo-customer-key-2026","version":1}' |
  node -e 'const r=JSON.parse(require("fs").readFileSync(0));console.log("\nSaved: version", r.version)'
echo; echo "### Key usage after the rotation"
json "$B/api/v2/conversations/keyconfigurations/$id/usage" |
  node -e 'for (const r of JSON.parse(require("fs").readFileSync(0)).entities) console.log(r.status.padEnd(12), r.keyArn, "data keys:", r.dataKeys)'

show "./convault rewrap --org \$ORG --wait"
"$repo/convault" rewrap --org "$ORG" --wait 2>&1 | sed -e "s/$ORG/<your org id>/"
echo; echo "### Key usage after the rewrap"
json "$B/api/v2/conversations/keyconfigurations/$id/usage" |
  node -e 'for (const r of JSON.parse(require("fs").readFileSync(0)).entities) console.log(r.status.padEnd(12), r.keyArn, "data keys:", r.dataKeys)'
show "curl -s … /api/v2/conversations/call-1/secureddata"
json "$B/api/v2/conversations/call-1/secureddata"; echo
if [ "${SCREENSHOT:-}" = 1 ]; then
  echo; node "$repo/scripts/readme-screenshot.mjs" "$B" "$T" "$repo/docs/images/encryption-keys.png"
fi
