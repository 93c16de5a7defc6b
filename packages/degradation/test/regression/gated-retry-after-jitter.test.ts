/**
 * A gated route without a usable fallback answered 503 with a fixed `Retry-After: 1`, so every
 * refused client came back in the same second. It is now about `dwellMs` (the feature stays off at
 * least that long), jittered ±50%, in whole seconds: spread, and within bounds, under Fastify and
 * under Express alike.
 */
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import degradation from '../../src/plugin.js'
import { degradation as expressDegradation } from '../../../express/src/degradation.js'
import { express } from '../../../express/test/helpers/express.js'
import { serve } from '../../../express/test/helpers/serve.js'

const REQUESTS = 200
// dwellMs 4 s: 2 to 6 s once jittered ±50% and rounded to whole seconds.
const options = { features: [{ name: 'thumbnails', offAtLevel: 1 }], dwellMs: 4000, evaluateIntervalMs: 0 }
const MIN_SECONDS = 2
const MAX_SECONDS = 6

function check(t: Test, statuses: number[], values: string[]): void {
  t.ok(statuses.every((status) => status === 503), 'every request refused')
  const seconds = values.map(Number)
  t.ok(seconds.every((s) => Number.isInteger(s) && s >= MIN_SECONDS && s <= MAX_SECONDS), `every Retry-After in [${MIN_SECONDS}, ${MAX_SECONDS}]: ${[...new Set(seconds)].sort().join(', ')}`)
  t.ok(new Set(seconds).size >= 3, `spread over several values (${new Set(seconds).size})`)
}

t.test('Fastify', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(degradation, options)
  app.get('/thumbnail', { config: { feature: 'thumbnails' } }, async () => 'full')
  app.degradation.overrides.forceLevel(1)
  const statuses: number[] = []
  const values: string[] = []
  for (let i = 0; i < REQUESTS; i++) {
    const response = await app.inject('/thumbnail')
    statuses.push(response.statusCode)
    values.push(String(response.headers['retry-after']))
  }
  check(t, statuses, values)
})

t.test('Express', async (t) => {
  const app = express()
  const degrade = expressDegradation({ ...options, logger: { warn: () => {}, info: () => {} } })
  t.teardown(() => degrade.close())
  app.use(degrade)
  app.get('/thumbnail', degrade.gate('thumbnails'), (_req, res) => { res.send('full') })
  const base = await serve(t, app)
  degrade.degradation.overrides.forceLevel(1)
  const statuses: number[] = []
  const values: string[] = []
  for (let i = 0; i < REQUESTS; i++) {
    const response = await fetch(`${base}/thumbnail`)
    await response.text()
    statuses.push(response.status)
    values.push(response.headers.get('retry-after') ?? '')
  }
  check(t, statuses, values)
})
