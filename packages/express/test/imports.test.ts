/**
 * What an Express application loads and type-checks (the issue: it installed all of Fastify). Every
 * module `@spillway/express` reaches, through the other packages' subpaths, imports none of their
 * optional peers — no Fastify, no ioredis, no OpenFeature, no rate-limiter-flexible — so that the
 * application compiles with `skipLibCheck: false` without them. `scripts/consumer-check.sh` checks
 * the same on the packed packages, installed with npm.
 */
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { reachableAcross } from '../../../test/support/module-graph.js'

const packagesDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

t.test('@spillway/express reaches only express, @fastify/error and Node itself', async (t) => {
  const { files, packages } = reachableAcross(packagesDir, 'express/src/index.ts')
  for (const file of ['rate-limit/src/request-protocol.ts', 'load-shedding/src/request-protocol.ts', 'degradation/src/request-protocol.ts',
    'latency-window/src/refusal.ts']) t.ok(files.includes(file), `the walk follows the subpaths to ${file}`)
  t.same(files.filter((file) => file.endsWith('/plugin.ts') || file.includes('/src/fastify/') || file.endsWith('/openfeature-provider.ts')), [])
  // @fastify/error has no dependencies and its types import nothing.
  t.same([...packages].filter((name) => !name.startsWith('node:')).sort(), ['@fastify/error', 'express'])
})
