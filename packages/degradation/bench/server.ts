/**
 * The server side of the throughput benchmark, run in a child process so that the load generator
 * does not share its event loop. `bare`: Fastify alone; `meter-only`: with the shared
 * request meter of @spillway/latency-window that any Spillway plugin installs; `plugin`: with @spillway/degradation
 * registered (measuring every request, evaluating every 500 ms); `plugin-feature`: the same, with
 * the handler asking `request.feature()` once; `plugin-no-header`: `header: false` (no `onSend` hook). Prints the port, then serves until killed.
 */
import Fastify from 'fastify'
import { meterFastify } from '@spillway/latency-window/fastify'
import degradation from '../src/index.js'
import { serveHarness } from '../../../bench/support/harness-server.js'

const mode = process.argv[2] ?? 'bare'
const app = Fastify()
// The shared meter alone (what any Spillway plugin costs, counted once with several).
if (mode === 'meter-only') meterFastify(app, 'bench')
if (mode.startsWith('plugin')) {
  await app.register(degradation, {
    header: mode === 'plugin-no-header' ? false : 'Spillway-Degraded',
    features: [
      { name: 'recommendations', offAtLevel: 1, fallback: [] },
      { name: 'search_suggestions', offAtLevel: 2 },
      { name: 'image_processing', offAtLevel: 3 }
    ]
  })
  // Held at level 0, so that every mode measures the path of a healthy server: under callgrind
  // (`bench:instructions`) each request takes some fifty times longer, which the controller would
  // rightly read as overload and answer by turning features off.
  app.degradation.overrides.forceLevel(0)
}
if (mode === 'plugin-feature') {
  app.get('/', async (request) => ({ hello: 'world', recommendations: request.feature('recommendations') }))
} else {
  app.get('/', async () => ({ hello: 'world', recommendations: true }))
}
await app.listen({ port: 0, host: '127.0.0.1' })
const { port } = app.server.address() as { port: number }
serveHarness(port, () => app.close())
