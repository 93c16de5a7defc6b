/**
 * The server of `test/stall-no-false-alarm.test.ts`, in a process of its own so that a stall of its
 * event loop does not stall the clients: Fastify with the load shedder and degradation at their
 * defaults. `/work` costs 2 ms of CPU (`/measure` too, never shed); `/stall` blocks the loop for
 * 150 ms, as a garbage collection would, and answers when it began and ended (epoch ms, comparable
 * across processes). Sends its port over IPC; on 'start' it forgets the level changes, loop lags and
 * pressure seen so far; on 'report' it sends what the test checks and exits.
 */
import { loadShedding } from '../../packages/load-shedding/src/index.js'
import { Fastify } from '../../packages/load-shedding/test/support/fastify.js'
import degradation from '../../packages/degradation/src/index.js'

const epochNow = (): number => performance.timeOrigin + performance.now()
const busy = (ms: number): void => {
  const end = performance.now() + ms
  while (performance.now() < end);
}

const app = Fastify()
await app.register(loadShedding)
await app.register(degradation, { features: [{ name: 'recommendations', offAtLevel: 1, fallback: [] }] })
const levels: { atMs: number, from: number, to: number, reason: string }[] = []
app.degradation.onEvent((event) => {
  if (event.type === 'level') levels.push({ atMs: epochNow(), from: event.from, to: event.to, reason: event.reason })
})
let peakPressure = 0
// Every moment the loop ran late by 20 ms or more, as a 10 ms timer sees it: on a shared machine
// the server can lose its core too, and the test must tell such a pause from the one it injected.
const lags: { atMs: number, lagMs: number }[] = []
let expectedAt = performance.now() + 10
setInterval(() => {
  const now = performance.now()
  if (now - expectedAt >= 20) lags.push({ atMs: epochNow(), lagMs: now - expectedAt })
  expectedAt = now + 10
  peakPressure = Math.max(peakPressure, app.loadShedding.pressure)
}, 10).unref()
app.get('/work', async () => {
  busy(2)
  return 'ok'
})
// The same work, never shed: what the test measures the capacity on, without overloading the shedder.
app.get('/measure', { config: { loadShedding: false } }, async () => {
  busy(2)
  return 'ok'
})
app.get('/stall', async () => {
  const startedAt = epochNow()
  busy(150)
  return { startedAt, endedAt: epochNow() }
})
await app.listen({ port: 0, host: '127.0.0.1' })
process.on('message', (message) => {
  if (message === 'start') {
    levels.length = 0
    lags.length = 0
    peakPressure = 0
    return
  }
  if (message !== 'report') return
  process.send?.({ levels, lags, peakPressure, shed: app.loadShedding.state.shed }, () => {
    void app.close().then(() => process.exit(0))
  })
})
process.send?.({ port: (app.server.address() as { port: number }).port })
