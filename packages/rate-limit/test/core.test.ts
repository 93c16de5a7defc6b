/**
 * The subpaths: `./core` (the framework-free parts) reaches no framework, and `.` is the user API
 * of the Fastify plugin only.
 */
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import * as core from '../src/core.js'
import * as api from '../src/index.js'

const src = join(dirname(fileURLToPath(import.meta.url)), '..', 'src')

const IMPORT = /^(?:import|export)\s+(type\s+)?(?:\{[^}]*\}|\*(?:\s+as\s+\w+)?|\w+)(?:\s*,\s*\{[^}]*\})?\s+from\s+'([^']+)'/gm

/**
 * The source files `file` reaches through relative imports, and the packages they import; with
 * `valuesOnly`, through what is imported for its value (what runs), not only for its type.
 */
function reachable(file: string, valuesOnly = false): { files: string[], packages: Set<string> } {
  const files: string[] = []
  const packages = new Set<string>()
  const pending = [file]
  while (pending.length > 0) {
    const next = pending.pop() as string
    if (files.includes(next)) continue
    files.push(next)
    for (const [, typeOnly, specifier] of readFileSync(join(src, next), 'utf8').matchAll(IMPORT)) {
      if (specifier === undefined || (valuesOnly && typeOnly !== undefined)) continue
      if (specifier.startsWith('./')) pending.push(specifier.slice(2).replace(/\.js$/, '.ts'))
      else packages.add(specifier)
    }
  }
  return { files, packages }
}

t.test('./core, and every module it reaches, imports neither Fastify nor Express', async (t) => {
  const { files, packages } = reachable('core.ts')
  t.ok(files.includes('request-protocol.ts') && files.includes('policy-options.ts'), 'the walk follows the imports')
  for (const name of packages) t.notOk(/^(fastify|fastify-plugin|express)$|\/fastify$/.test(name), `${name} is framework-free`)
  t.notOk(files.includes('plugin.ts'))
})

t.test('the plugin file is what imports Fastify (so the walk above can see one)', async (t) => {
  t.ok(reachable('index.ts').packages.has('fastify-plugin'))
})

t.test('the decider builds no store: ioredis is loaded by create-store.ts, not by the decider', async (t) => {
  const decider = reachable('rate-limiter.ts', true)
  t.notOk(decider.files.includes('create-store.ts'))
  t.notOk(decider.packages.has('ioredis'))
  t.ok(reachable('create-store.ts', true).packages.has('ioredis'), '(the walk can see it)')
})

t.test('. exports the user API only; ./core the parts a mount is built from', async (t) => {
  t.same(Object.keys(api).sort(), [
    'QUOTA_EXCEEDED_TYPE', 'RATE_LIMIT_CHANNEL', 'RateLimitCostError', 'RateLimitOptionsError', 'default', 'spillwayRateLimit'
  ])
  for (const name of ['RateLimitProtocol', 'RateLimiter', 'createRateLimiter', 'createStore', 'normalizeOptions', 'routeSettings',
    'PolicySlots', 'MemoryStore', 'RedisStore', 'StoreFallback', 'TokenBucket', 'storeKey', 'rateLimitHeader', 'TOKEN_BUCKET_SCRIPT']) {
    t.ok(name in core, name)
  }
})
