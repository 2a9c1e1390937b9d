#!/usr/bin/env bash
# Runs Lighthouse (mobile preset: Moto G Power, slow 4G, 4x CPU slowdown) against the patient
# landing page of the release build, with Debian's Chromium, and prints the performance,
# accessibility and best-practices scores plus FCP, LCP, TBT, CLS and total transfer size.
# Needs a release build (scripts/build-site.sh) and Chromium (scripts/setup.sh test). Installs
# Lighthouse into e2e/tools/lighthouse/ the first time, and again only when its lock file changes.
# Starts its own server on a free loopback port with a throw-away database, as the e2e suite does.
# Usage: scripts/lighthouse.sh [demo-link-name]   (default: separate_route)
# The full JSON report is left in target/lighthouse/landing.json.
set -euo pipefail
cd "$(dirname "$0")/.."

demo=${1:-separate_route}

say() { printf 'lighthouse: %s\n' "$*" >&2; }

[ -x /usr/bin/chromium ] || { echo "Chromium missing: scripts/setup.sh test" >&2; exit 1; }

# Lighthouse from npm, reinstalled only when its lock file changes (as scripts/setup.sh does).
dir=e2e/tools/lighthouse
stamp=$dir/node_modules/.lock-sha256
want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing npm packages in $dir"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" > "$stamp"
fi

source scripts/lib/demo-server.sh
start_demo_server "$demo"
url="$base/r/$link"

mkdir -p target/lighthouse
report=target/lighthouse/landing.json
say "auditing $url"
CHROME_PATH=/usr/bin/chromium "$dir/node_modules/.bin/lighthouse" "$url" \
  --quiet \
  --output=json --output-path="$report" \
  --only-categories=performance,accessibility,best-practices \
  --chrome-flags="--headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage --disable-background-networking --disable-component-update --disable-sync --no-first-run"

node - "$report" <<'EOF'
const r = JSON.parse(require('node:fs').readFileSync(process.argv[2], 'utf8'));
if (r.runtimeError) console.error(`runtime error: ${r.runtimeError.code} ${r.runtimeError.message}`);
const row = (a, b) => console.log(`${a.padEnd(28)} ${String(b).padStart(12)}`);
const score = (id) => (r.categories[id].score == null ? 'n/a' : Math.round(r.categories[id].score * 100));
const audit = (id) => r.audits[id] || {};
const ms = (id) => (audit(id).numericValue == null ? 'n/a' : `${Math.round(audit(id).numericValue)} ms`);
console.log(`Lighthouse ${r.lighthouseVersion}, ${r.configSettings.formFactor}, ${r.finalDisplayedUrl}`);
row('performance', score('performance'));
row('accessibility', score('accessibility'));
row('best-practices', score('best-practices'));
row('First Contentful Paint', ms('first-contentful-paint'));
row('Largest Contentful Paint', ms('largest-contentful-paint'));
row('Total Blocking Time', ms('total-blocking-time'));
const cls = audit('cumulative-layout-shift').numericValue;
row('Cumulative Layout Shift', cls == null ? 'n/a' : cls.toFixed(3));
const bytes = audit('total-byte-weight').numericValue;
row('total transfer size', bytes == null ? 'n/a' : `${bytes} B`);
for (const [id, c] of Object.entries(r.categories)) {
  const failed = c.auditRefs
    .filter((ref) => ref.weight > 0 && r.audits[ref.id].score !== null && r.audits[ref.id].score < 1)
    .map((ref) => `${ref.id} (${Math.round(r.audits[ref.id].score * 100)})`);
  if (failed.length) console.log(`  ${id} below 100: ${failed.join(', ')}`);
}
EOF
