#!/usr/bin/env bash
# The package as someone outside this repository gets it: `npm pack`, install the tarball into a
# fresh project with --ignore-scripts (so the prebuilt addon in prebuilds/ is what loads), then
#   (a) the README's TypeScript example as plain .mjs under node, with the addon forbidden;
#   (b) the same example as .ts, compiled by tsc --strict --module nodenext, then run;
#   (c) the installed `vgpio` binary serving a device while the installed `vgpio input/status` use it.
# Usage: bash test/consumer/run.sh   (needs the repo's node_modules; the registry only for the
# package's own dependencies, which npm ci has already cached)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vgpio-consumer.XXXXXX")
DAEMON=
cleanup() {
  [[ -n $DAEMON ]] && kill "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
say() { printf '[consumer %s] %s\n' "$(date -u +%T)" "$*"; }
fail() {
  printf '[consumer] FAIL: %s\n' "$*" >&2
  exit 1
}

# Pack from a copy: prebuildify rebuilds build/ and postpack removes prebuilds/, which must not
# pull the addon from under anything else using this checkout.
say "copy the checkout (without node_modules, build/, dist/, prebuilds/)"
PKG="$WORK/pkg"
mkdir "$PKG"
tar -C "$REPO" --exclude=./node_modules --exclude=./build --exclude=./dist --exclude=./prebuilds \
  --exclude=./.git -cf - . | tar -C "$PKG" -xf -
ln -s "$REPO/node_modules" "$PKG/node_modules"

say "npm pack (prepare builds dist/, prepack prebuilds/linux-x64)"
(cd "$PKG" && npm pack --pack-destination "$WORK" >"$WORK/pack.out" 2>"$WORK/pack.err" || fail "npm pack: $(tail -n 30 "$WORK/pack.err")")
TGZ="$WORK/$(tail -n 1 "$WORK/pack.out")"
[[ -f $TGZ ]] || fail "npm pack wrote no tarball ($(cat "$WORK/pack.out"))"

say "tarball contents"
tar -tzf "$TGZ" | sed 's|^package/||' | sort >"$WORK/files"
for f in package.json README.md LICENSE bin/vgpio.js dist/index.js dist/index.d.ts dist/index.js.map \
  dist/vhost-user.js dist/control.js dist/conformance.js dist/cli/main.js binding.gyp \
  prebuilds/linux-x64/vgpio.node prebuilds/linux-x64/vgpio_bench_frontend prebuilds/linux-x64/vgpio_eventfd_floor \
  prebuilds/linux-x64/vgpio_timerfd_floor; do
  grep -qx "$f" "$WORK/files" || fail "tarball lacks $f"
done
grep -q '^native/.*\.c$' "$WORK/files" || fail "tarball lacks the native sources (fallback build)"
if grep -Ev '^(package\.json|README\.md|LICENSE|binding\.gyp|bin/.*|dist/.*|native/.*|prebuilds/.*)$' "$WORK/files"; then
  fail "tarball holds files outside dist/, prebuilds/, native/, bin/ (above)"
fi
if grep -E '\.ts$' "$WORK/files" | grep -v '\.d\.ts$'; then fail "tarball ships TypeScript sources (above)"; fi
say "$(wc -l <"$WORK/files") files, $(du -k "$TGZ" | cut -f1) KiB"

say "install into a fresh project with --ignore-scripts"
APP="$WORK/app"
mkdir "$APP"
cd "$APP"
printf '{ "name": "consumer", "private": true, "type": "module" }\n' >package.json
npm install --ignore-scripts --prefer-offline --no-audit --no-fund --silent "$TGZ"
[[ ! -e node_modules/vgpio/build ]] || fail "an addon was built despite --ignore-scripts"
[[ ! -e node_modules/tsx ]] || fail "tsx was installed: it must be a dev dependency only"

# The README's example is the one ```ts block under "## Use it from TypeScript".
awk '/^## Use it from TypeScript/ { s = 1 } s && /^```ts$/ { c = 1; next } c && /^```$/ { exit } c { print }' \
  "$REPO/README.md" >example.ts
grep -q "from 'vgpio'" example.ts || fail "README example not found"
cp example.ts example.mjs
# Any addon load (process.dlopen is what require('x.node') ends in) fails the run.
cat >no-addon.mjs <<'JS'
process.dlopen = (_module, file) => {
  throw new Error(`importing vgpio loaded a native addon: ${file}`);
};
JS
EXPECTED=$'rising 0 1\nfalling 0 2\nled is 1'

say "(a) README example as .mjs under node, no addon allowed"
out=$(node --import ./no-addon.mjs example.mjs)
[[ $out == "$EXPECTED" ]] || fail "example.mjs printed: $out"
node --import ./no-addon.mjs -e "await import('vgpio/control')" ||
  fail "vgpio/control loaded the addon"

say "(b) README example as .ts: tsc --strict --module nodenext, then node"
node "$REPO/node_modules/typescript/bin/tsc" --strict --module nodenext --target es2022 \
  --typeRoots "$REPO/node_modules/@types" --types node --outDir out example.ts
out=$(node --import ./no-addon.mjs out/example.js)
[[ $out == "$EXPECTED" ]] || fail "compiled example.ts printed: $out"
cat >subpaths.ts <<'TS'
import { VhostUserFrontend, ServedDevice } from 'vgpio/vhost-user';
import { ControlClient } from 'vgpio/control';
import { runConformance } from 'vgpio/conformance';
import { Chip, VIRTIO_ID_GPIO } from 'vgpio';
const used: unknown[] = [VhostUserFrontend, ServedDevice, ControlClient, runConformance, Chip];
console.log(used.every((f) => typeof f === 'function') && VIRTIO_ID_GPIO === 41);
TS
node "$REPO/node_modules/typescript/bin/tsc" --strict --module nodenext --target es2022 \
  --typeRoots "$REPO/node_modules/@types" --types node --outDir out subpaths.ts
[[ $(node out/subpaths.js) == true ]] || fail "subpath imports"

say "(c) the installed vgpio binary: serve, input, status"
VGPIO="$APP/node_modules/.bin/vgpio"
[[ $("$VGPIO" --version) == "$(node -p "require('$REPO/package.json').version")" ]] || fail "--version"
[[ $("$VGPIO" --print-capabilities) == '{"type":"gpio"}' ]] || fail "--print-capabilities"
[[ $(npx --no-install vgpio --version) == "$("$VGPIO" --version)" ]] || fail "npx vgpio (the README's form)"
SOCK="$WORK/gpio.sock"
"$VGPIO" serve --socket "$SOCK" --lines 4 --names led,button 2>"$WORK/daemon.log" &
DAEMON=$!
for _ in $(seq 100); do
  [[ -S $SOCK.ctl ]] && break
  kill -0 "$DAEMON" 2>/dev/null || fail "daemon exited: $(cat "$WORK/daemon.log")"
  sleep 0.1
done
[[ -S $SOCK.ctl ]] || fail "daemon did not listen: $(cat "$WORK/daemon.log")"
"$VGPIO" input "$SOCK" button=1
node -e '
  const s = JSON.parse(require("fs").readFileSync(0, "utf8"));
  const b = s.lines.find((l) => l.name === "button");
  if (s.ngpio !== 4 || !b || b.level !== "high") { console.error(JSON.stringify(s)); process.exit(1); }
' < <("$VGPIO" status "$SOCK" --json) || fail "status --json after input button=1"
"$VGPIO" status "$SOCK" | grep -q '^device .*: 4 lines' || fail "status text"
say "(c) the installed vgpio bench: the prebuilt C front-end sends the requests"
"$VGPIO" bench --socket "$SOCK" --iterations 300 --in-flight 1,8 --rounds 1 --json >"$WORK/bench.json" 2>"$WORK/bench.err" ||
  fail "vgpio bench: $(cat "$WORK/bench.err")"
node -e '
  const r = JSON.parse(require("fs").readFileSync(0, "utf8"));
  const t = r.targets[0];
  if (r.frontend !== "c" || !(t.roundTrip.p50 > 0) || t.throughput.length !== 2) { console.error(JSON.stringify(r)); process.exit(1); }
' <"$WORK/bench.json" || fail "bench --json did not use the C front-end"
"$VGPIO" serve --socket "$SOCK" 2>"$WORK/second.log" && fail "a second daemon took over a live socket"
grep -q "is in use by pid $DAEMON" "$WORK/second.log" || fail "second daemon: $(cat "$WORK/second.log")"
kill "$DAEMON"
wait "$DAEMON" || fail "daemon exit status $? on SIGTERM: $(cat "$WORK/daemon.log")"
DAEMON=
[[ ! -e $SOCK ]] || fail "daemon left its socket behind"
say "no addon at all (prebuilds/ removed): the loopback still works, vhost-user says what is missing"
mv node_modules/vgpio/prebuilds "$WORK/prebuilds.away"
out=$(node --import ./no-addon.mjs example.mjs)
[[ $out == "$EXPECTED" ]] || fail "example.mjs without an addon printed: $out"
"$VGPIO" serve --socket "$WORK/none.sock" 2>"$WORK/none.log" && fail "serve started without an addon"
grep -q 'the native addon is missing' "$WORK/none.log" || fail "no clear error: $(cat "$WORK/none.log")"
[[ $(wc -l <"$WORK/none.log") -le 2 ]] || fail "more than one error: $(cat "$WORK/none.log")"
mv "$WORK/prebuilds.away" node_modules/vgpio/prebuilds

say "the fallback: the same tarball without prebuilds/, installed with scripts, compiles the addon"
mkdir "$WORK/repack" "$WORK/app2"
tar -xzf "$TGZ" -C "$WORK/repack"
rm -rf "$WORK/repack/package/prebuilds"
tar -czf "$WORK/no-prebuilds.tgz" -C "$WORK/repack" package
cd "$WORK/app2"
printf '{ "name": "consumer2", "private": true, "type": "module" }\n' >package.json
npm install --prefer-offline --no-audit --no-fund --silent "$WORK/no-prebuilds.tgz"
ls node_modules/vgpio/build/Release/*.node >/dev/null || fail "no addon was compiled"
node --input-type=module -e "const v = await import('vgpio/vhost-user'); if (typeof v.VhostUserServer !== 'function') process.exit(1)" ||
  fail "vgpio/vhost-user with the compiled addon"
say "PASS"
