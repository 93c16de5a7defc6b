/**
 * The shared meter is created by the first Spillway plugin on a server; a later one's `now` or
 * `eventLoop` it cannot honour used to be ignored without a word. They now fail with this
 * package's code, naming the option: at registration under Fastify, and under Express at the first
 * request (when the middleware first meets its app's meter).
 */
import Fastify from 'fastify'
import t from 'tap'
import { meterFastify } from '@spillway/latency-window/fastify'
import degradation from '../../src/plugin.js'
import { degradation as expressDegradation } from '../../../express/src/degradation.js'
import { measureRequests } from '../../../express/src/request-meter.js'
import { express, type NextFunction, type Request, type Response } from '../../../express/test/helpers/express.js'
import { manualClock, serve } from '../../../express/test/helpers/serve.js'

const features = [{ name: 'recommendations', offAtLevel: 1 }]
const silent = { warn: () => {}, info: () => {} }
const first = manualClock(0).now
const other = manualClock(0).now

const conflicts: [string, Record<string, unknown>, Record<string, unknown>, RegExp][] = [
  ['another clock', { now: first }, { now: other }, /^now must be the clock the server's shared meter was created with/],
  ['other event-loop settings', { eventLoop: { intervalMs: 500 } }, { eventLoop: { intervalMs: 1000 } }, /^eventLoop must be the event-loop settings the server's shared meter was created with/]
]

t.test('Fastify: at registration, with SPILLWAY_DEGRADATION_OPTIONS', async (t) => {
  for (const [what, meterOptions, options, message] of conflicts) {
    const app = Fastify()
    meterFastify(app, 'load-shedding', meterOptions)
    await t.rejects(async () => {
      await app.register(degradation, { features, evaluateIntervalMs: 0, ...options })
      await app.ready()
    }, { code: 'SPILLWAY_DEGRADATION_OPTIONS', message }, what)
    await app.close()
  }
  const app = Fastify()
  t.teardown(() => app.close())
  meterFastify(app, 'load-shedding', { now: first, eventLoop: { intervalMs: 500 } })
  await app.register(degradation, { features, evaluateIntervalMs: 0, now: first, eventLoop: { intervalMs: 500 } })
  await t.resolves(async () => { await app.ready() }, 'the same clock and settings are no conflict')
})

t.test('Express: at the first request, with SPILLWAY_DEGRADATION_OPTIONS', async (t) => {
  for (const [what, meterOptions, options, message] of conflicts) {
    const app = express()
    const measure = measureRequests(meterOptions)
    const degrade = expressDegradation({ features, evaluateIntervalMs: 0, logger: silent, ...options })
    t.teardown(() => { measure.close(); degrade.close() })
    app.use(measure)
    app.use(degrade)
    app.get('/', (_req, res) => { res.send('ok') })
    app.use((error: Error & { code?: string }, _req: Request, res: Response, _next: NextFunction) => {
      res.status(500).json({ code: error.code, message: error.message })
    })
    const response = await fetch(await serve(t, app))
    t.equal(response.status, 500, what)
    t.match(await response.json(), { code: 'SPILLWAY_DEGRADATION_OPTIONS', message }, what)
  }
})
