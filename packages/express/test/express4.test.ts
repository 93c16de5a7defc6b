/**
 * The same middlewares on Express 4: they use only what both majors share (`req.app`, `req.path`,
 * `req.ip`, `res.send`) and Node's own response API.
 */
import { createRequire } from 'node:module'
import type express from 'express'
import t from 'tap'
import { degradation } from '../src/degradation.js'
import { loadShedding } from '../src/load-shedding.js'
import { rateLimit } from '../src/rate-limit.js'
import { serve } from './helpers/serve.js'

// Express 4 is installed under the alias `express4`; Express 5's types describe what the test uses.
const express4 = createRequire(import.meta.url)('express4') as typeof express

const silent = { warn: () => {}, info: () => {} }

t.test('Express 4: rate limit, degradation and their headers', async (t) => {
  const app = express4()
  const limit = rateLimit({ capacity: 2, refillPerSecond: 0.001, logger: silent })
  const degrade = degradation({ features: [{ name: 'recs', offAtLevel: 1, fallback: ['cached'] }], evaluateIntervalMs: 0, logger: silent })
  t.teardown(async () => { degrade.close(); await limit.close() })
  app.use(limit)
  app.use(degrade)
  app.get('/', async (req, res) => { res.json(await req.degrade('recs', () => ['live'])) })
  app.get('/gated', degrade.gate('recs'), (_req, res) => { res.json(['live']) })
  const base = await serve(t, app)
  let response = await fetch(base)
  t.same(await response.json(), ['live'])
  t.equal(response.headers.get('ratelimit'), '"default";r=1;t=1000')
  degrade.degradation.overrides.forceLevel(1)
  response = await fetch(`${base}/gated`)
  t.same(await response.json(), ['cached'])
  t.equal(response.headers.get('spillway-degraded'), 'recs')
  response = await fetch(base)
  t.equal(response.status, 429)
  t.equal(response.headers.get('retry-after'), '1000')
  t.match(await response.json(), { status: 429, 'violated-policies': ['default'] })
})

t.test('Express 4: load shedding refuses with 503 problem+json and Retry-After', async (t) => {
  const app = express4()
  const shed = loadShedding({ eventLoop: false, intervalMs: 60_000, deadlineHeader: 'x-deadline', statusRoute: '/_shed' })
  t.teardown(() => shed.close())
  app.use(shed)
  app.get('/', (_req, res) => { res.send('ok') })
  const base = await serve(t, app)
  t.equal((await fetch(base)).status, 200)
  const late = await fetch(base, { headers: { 'x-deadline': String(Date.now() - 1) } })
  t.equal(late.status, 503)
  t.ok(Number(late.headers.get('retry-after')) >= 1)
  t.match(await late.json(), { status: 503, reason: 'deadline' })
  t.match(await (await fetch(`${base}/_shed`)).json(), { mode: 'enforce', inFlight: 0 })
})
