/**
 * The server side of the throughput benchmark, in a child process so that the load generator does
 * not share its event loop. Modes: `bare` (Express alone), `noop-middleware` (one middleware that only calls `next()`: Express's
 * own cost per middleware), `meter-only` (the shared request meter
 * any Spillway middleware installs), `rate-limit`, `express-rate-limit` (the usual Express limiter,
 * for comparison), `load-shedding`, `degradation` (handler asks `req.feature()` once), and
 * `all-three`. Limits are set so that nothing is refused: this measures the cost on admitted
 * requests. Prints the port, then serves until killed.
 */
import express, { type RequestHandler } from 'express'
import { rateLimit as expressRateLimit } from 'express-rate-limit'
import { degradation, loadShedding, measureRequests, rateLimit } from '../src/index.js'
import { serveHarness } from '../../../bench/support/harness-server.js'

const mode = process.argv[2] ?? 'bare'
const app = express()
app.disable('x-powered-by')
app.disable('etag')
const generous = { capacity: 1_000_000_000, refillPerSecond: 1_000_000_000 }
// A closed loop saturates the server's CPU by design, which the shedder rightly reads as overload:
// here it runs its full admission path but is kept from acting on the event loop or a shrinking limit.
const admitAll = { eventLoop: false, algorithm: 'aimd' as const, aimd: { initialLimit: 1000, minLimit: 1000, maxLimit: 1000 } }
const features = [
  { name: 'recommendations', offAtLevel: 1, fallback: [] },
  { name: 'search_suggestions', offAtLevel: 2 },
  { name: 'image_processing', offAtLevel: 3 }
]
const middlewares: Record<string, () => RequestHandler[]> = {
  bare: () => [],
  // What Express itself charges for one more middleware that does nothing.
  'noop-middleware': () => [(_req, _res, next) => { next() }],
  'meter-only': () => [measureRequests()],
  'rate-limit': () => [rateLimit(generous)],
  'express-rate-limit': () => [expressRateLimit({ windowMs: 60_000, limit: 1_000_000_000, standardHeaders: 'draft-8', legacyHeaders: false })],
  'load-shedding': () => [loadShedding(admitAll)],
  degradation: () => [degradation({ features })],
  'all-three': () => [loadShedding(admitAll), rateLimit(generous), degradation({ features })]
}
const chosen = middlewares[mode]
if (chosen === undefined) throw new Error(`unknown mode ${mode}`)
for (const middleware of chosen()) app.use(middleware)
const asksFeature = mode === 'degradation' || mode === 'all-three'
app.get('/', (req, res) => {
  res.json({ hello: 'world', recommendations: asksFeature ? req.feature('recommendations') : true })
})
const server = app.listen(0, '127.0.0.1', () => {
  serveHarness((server.address() as { port: number }).port, () => new Promise((resolve) => server.close(resolve)))
})
