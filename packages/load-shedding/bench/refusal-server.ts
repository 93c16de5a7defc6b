/**
 * The server side of the refusal-cost benchmark, in a child process. `bare`: a hello-world route
 * answered 200; `hook`: the plugin with a user signal that keeps the threshold at `critical` only,
 * so that every request to the route is refused by the `onRequest` hook; `front`: the same with
 * the front door, which refuses before Fastify. Announces the port once the threshold is down.
 */
import Fastify from 'fastify'
import { serveHarness } from '../../../bench/support/harness-server.js'
import loadShedding from '../src/index.js'

const mode = process.argv[2] ?? 'bare'
const app = Fastify()
if (mode !== 'bare') {
  await app.register(loadShedding, { intervalMs: 50, eventLoop: false, signals: { forced: () => 10 }, front: mode === 'front' })
}
app.get('/', async () => ({ hello: 'world' }))
await app.listen({ port: 0, host: '127.0.0.1' })
// Overloaded from the first step: a few steps bring the threshold down to `critical`.
await new Promise((resolve) => setTimeout(resolve, 1000))
const { port } = app.server.address() as { port: number }
serveHarness(port, () => app.close())
