#!/usr/bin/env bash
# The packages as an npm user gets them. Each package is packed (`pnpm pack`, which turns
# `workspace:*` into versions) and the tarballs are installed with npm into two fresh apps outside
# the workspace:
#   express  Express 5 and @spillway/express: installs no fastify, ioredis, OpenFeature SDK or
#            rate-limiter-flexible; a file using every export of @spillway/express compiles with
#            tsc --strict --skipLibCheck false --exactOptionalPropertyTypes, and runs (one request
#            through the three middlewares; a redis:// URL without ioredis is our options error).
#   fastify  Fastify 5, ioredis 5 and the three plugins: an ioredis 5 Redis and Cluster passed to
#            the rate limiter and to degradation compile under the same flags, and the app answers.
# Needs the npm registry and nothing else (no Redis, no database). Exits 1 if any check failed.
#
#   flock /tmp/spillway-bench.lock scripts/consumer-check.sh [--keep]
#
# --keep leaves the scratch directory (printed) for inspection. SPILLWAY_ROOT=<checkout> packs
# another checkout instead (installed with its own `pnpm install`), to compare with an earlier commit.
set -euo pipefail

root="${SPILLWAY_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}"
keep=false
[[ "${1:-}" == --keep ]] && keep=true
scratch=$(mktemp -d /tmp/spillway-consumer-check.XXXXXX)
started=$SECONDS
failures=()

step() { printf '\n== %s\n' "$*"; }
check() { # name, command...: runs the command, records a failure instead of stopping
  local name=$1; shift
  if "$@"; then echo "ok   $name"; else echo "FAIL $name"; failures+=("$name"); fi
}
installed_at() { # package: the directory of every copy of it, at any depth
  npm ls "$1" --all --parseable 2>/dev/null | grep . || true
}
none_installed() { # package
  local found
  found=$(installed_at "$1")
  [[ -z "$found" ]] || { echo "     $1 installed at: $found"; return 1; }
}
installed() { [[ -n "$(installed_at "$1")" ]]; }
count_packages() { # the app's runtime packages (dev tools left out), each copy once
  npm ls --all --omit=dev --parseable 2>/dev/null | tail -n +2 | sort -u | wc -l
}
# The consumer's strictest settings; nodenext so that the packages' `exports` maps are used.
TSC_FLAGS=(--strict --skipLibCheck false --exactOptionalPropertyTypes --noUncheckedIndexedAccess
  --module nodenext --moduleResolution nodenext --target es2022 --outDir dist)

step "build and pack $root"
(cd "$root" && pnpm run build >/dev/null)
mkdir -p "$scratch/tarballs"
for name in latency-window rate-limit load-shedding degradation express; do
  (cd "$root/packages/$name" && pnpm pack --pack-destination "$scratch/tarballs" >/dev/null)
done
tarball() { ls "$scratch"/tarballs/spillway-"$1"-*.tgz; }
ls "$scratch/tarballs"

new_app() { # dir: an empty ESM app
  mkdir -p "$1"
  printf '{ "name": "%s", "private": true, "type": "module" }\n' "$(basename "$1")" >"$1/package.json"
}
NPM_INSTALL=(npm install --no-audit --no-fund --loglevel=error)

# ---------------------------------------------------------------------------------------------
step "express app: npm install express@5 and the tarballs"
app="$scratch/express-app"
new_app "$app"
cd "$app"
"${NPM_INSTALL[@]}" express@5 "$(tarball express)" "$(tarball rate-limit)" "$(tarball load-shedding)" \
  "$(tarball degradation)" "$(tarball latency-window)"
"${NPM_INSTALL[@]}" -D typescript@5.9.3 @types/express@5 @types/node@20
express_packages=$(count_packages)
echo "runtime packages installed: $express_packages"
for package in fastify ioredis @openfeature/server-sdk @openfeature/core rate-limiter-flexible; do
  check "express app installs no $package" none_installed "$package"
done

cat >app.ts <<'EOF'
import { createServer } from 'node:http'
import { once } from 'node:events'
import express from 'express'
import * as everything from '@spillway/express'
import {
  degradation, RequestMeter, measureRequests, longLived, excludeFromLatency, requestStartedAt, consoleLogger, DEGRADED_HEADER,
  rateLimit, QUOTA_EXCEEDED_TYPE, loadShedding, SHED_CHANNEL, UPDATE_CHANNEL,
  type DegradationMiddleware, type ExpressDegradationOptions, type ExpressFeatureDeclaration, type ExpressFeatureFallback,
  type MeteredRequest, type SpillwayLogger, type RateLimitMiddleware, type ExpressRateLimitOptions,
  type ExpressRouteRateLimitOptions, type LimitedContext, type LoadSheddingMiddleware, type ExpressLoadSheddingOptions,
  type LoadSheddingState
} from '@spillway/express'

const values = { degradation, RequestMeter, measureRequests, longLived, excludeFromLatency, requestStartedAt, consoleLogger,
  DEGRADED_HEADER, rateLimit, QUOTA_EXCEEDED_TYPE, loadShedding, SHED_CHANNEL, UPDATE_CHANNEL }
const missed = Object.keys(everything).filter((name) => !(name in values))
if (missed.length > 0) throw new Error(`app.ts does not use these exports of @spillway/express: ${missed.join(', ')}`)

const logger: SpillwayLogger = { warn: () => {}, info: () => {} }
const fallback: ExpressFeatureFallback = (req) => ({ popular: true, path: req.path })
const features: ExpressFeatureDeclaration[] = [{ name: 'recommendations', offAtLevel: 1, fallback }]
const degradationOptions: ExpressDegradationOptions = { features, logger }
const sheddingOptions: ExpressLoadSheddingOptions = { bypass: ['/health'] }
const limitOptions: ExpressRateLimitOptions = {
  capacity: 2, refillPerSecond: 1, logger,
  onLimited: (_req, _res, context: LimitedContext) => { if (context.retryAfterSeconds < 1) throw new Error('Retry-After') }
}
const loginLimits: ExpressRouteRateLimitOptions = { capacity: 1, refillPerSecond: 1 / 60 }

const meter = measureRequests()
const shed: LoadSheddingMiddleware = loadShedding(sheddingOptions)
const limiter: RateLimitMiddleware = rateLimit(limitOptions)
const degrade: DegradationMiddleware = degradation(degradationOptions)
const app = express()
app.use(meter, shed, limiter, degrade)
app.get('/product', async (req, res) => {
  const started: number | undefined = requestStartedAt(req as MeteredRequest)
  res.json({ recs: await req.degrade('recommendations', () => ['a', 'b']), on: req.feature('recommendations'), timed: started !== undefined })
})
app.post('/login', limiter.route(loginLimits), (_req, res) => { res.send('ok') })
app.get('/events', longLived(), (req, res) => { excludeFromLatency(req); res.end() })
app.get('/thumbnail', degrade.gate('recommendations'), (_req, res) => { res.send('ok') })

const server = createServer(app).listen(0, '127.0.0.1')
await once(server, 'listening')
const { port } = server.address() as { port: number }
const response = await fetch(`http://127.0.0.1:${port}/product`)
const body = await response.json() as { recs: string[], on: boolean, timed: boolean }
const state: LoadSheddingState = shed.state
if (response.status !== 200 || body.recs.length !== 2 || !body.on || !body.timed || state.mode === undefined) {
  throw new Error(`unexpected answer ${response.status} ${JSON.stringify(body)}`)
}
console.log('one request through the three middlewares:', response.status, JSON.stringify(body), DEGRADED_HEADER, QUOTA_EXCEEDED_TYPE,
  SHED_CHANNEL, UPDATE_CHANNEL, typeof RequestMeter, typeof consoleLogger.warn)

try {
  rateLimit({ redis: 'redis://127.0.0.1:6379', logger })
  throw new Error('a redis:// URL without ioredis was accepted')
} catch (error) {
  const { code, message } = error as { code?: string, message: string }
  if (code !== 'SPILLWAY_RATE_LIMIT_OPTIONS' || !message.includes('ioredis')) throw error
  console.log('a redis:// URL without ioredis installed:', code, message)
}

shed.close(); degrade.close(); meter.close()
await limiter.close()
server.close()
EOF
check "express app compiles (tsc ${TSC_FLAGS[*]:0:5})" npx tsc "${TSC_FLAGS[@]}" app.ts
check "express app runs" node dist/app.js

# ---------------------------------------------------------------------------------------------
step "fastify app: npm install fastify@5 ioredis@5 and the tarballs"
app="$scratch/fastify-app"
new_app "$app"
cd "$app"
"${NPM_INSTALL[@]}" fastify@5 ioredis@5 "$(tarball rate-limit)" "$(tarball load-shedding)" "$(tarball degradation)" \
  "$(tarball latency-window)"
"${NPM_INSTALL[@]}" -D typescript@5.9.3 @types/node@20
fastify_packages=$(count_packages)
echo "runtime packages installed: $fastify_packages (ioredis $(node -p "require('ioredis/package.json').version"))"
check "fastify app installs fastify (so the checks above would see one)" installed fastify
for package in @openfeature/server-sdk rate-limiter-flexible; do
  check "fastify app installs no $package" none_installed "$package"
done

cat >app.ts <<'EOF'
import Fastify from 'fastify'
import { Redis, Cluster } from 'ioredis'
import rateLimit, { spillwayRateLimit, type RateLimitOptions, type RedisClient } from '@spillway/rate-limit'
import loadShedding from '@spillway/load-shedding'
import degradation from '@spillway/degradation'

// Never connects: with the offline queue off, each command fails at once and the limiter decides
// with its local fallback, so that this check needs no Redis.
const redis = new Redis({ lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 })
redis.on('error', () => {})
const cluster: RedisClient = new Cluster([], { lazyConnect: true })
const options: RateLimitOptions = { redis, capacity: 2, refillPerSecond: 1, storeTimeoutMs: 50 }

const app = Fastify()
await app.register(loadShedding, { bypass: ['/health'] })
await app.register(rateLimit, options)
await app.register(degradation, { features: [{ name: 'recommendations', offAtLevel: 1, fallback: [] }], redis: { client: redis } })
app.get('/product', async (request) => ({ recs: await request.degrade('recommendations', () => ['a']) }))
app.get('/login', { config: { rateLimit: { capacity: 1, refillPerSecond: 1 / 60 } } }, async () => 'ok')
const response = await app.inject('/product')
if (response.statusCode !== 200 || app.rateLimit.store !== 'redis') throw new Error(`unexpected answer ${response.statusCode} ${response.body}`)
console.log('one request through the three plugins, ioredis 5 client:', response.statusCode, response.body,
  'fallback decisions:', app.rateLimit.stats().fallbackDecisions, typeof spillwayRateLimit, typeof cluster.evalsha)
await app.close()
redis.disconnect()
EOF
check "fastify app compiles with an ioredis 5 client (tsc ${TSC_FLAGS[*]:0:5})" npx tsc "${TSC_FLAGS[@]}" app.ts
check "fastify app runs" node dist/app.js

# ---------------------------------------------------------------------------------------------
step "summary"
echo "express app: $express_packages runtime packages; fastify app: $fastify_packages; $((SECONDS - started)) s"
if [[ $keep == true || ${#failures[@]} -gt 0 ]]; then echo "scratch directory: $scratch"; else rm -rf "$scratch"; fi
if [[ ${#failures[@]} -gt 0 ]]; then
  printf 'FAILED: %s\n' "${failures[@]}"
  exit 1
fi
echo "all consumer checks passed"
