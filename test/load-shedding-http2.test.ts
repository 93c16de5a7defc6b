/**
 * Refusal pacing over HTTP/2 (Fastify's `http2: true`, real sockets): the streams of one session
 * share a connection, so pacing holds a refused stream and never the session. A stream that is
 * admitted on a session whose other streams are held is answered at once, and no
 * connection-specific header field (forbidden in HTTP/2) is ever written.
 */
import { connect, type ClientHttp2Session } from 'node:http2'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { loadShedding } from '../packages/load-shedding/src/index.js'
import { Fastify } from '../packages/load-shedding/test/support/fastify.js'

interface Answer { status: number, ms: number, headers: Record<string, unknown> }

function get(session: ClientHttp2Session, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  const started = performance.now()
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': path, ...headers })
    let answered: Record<string, unknown> = {}
    stream.on('response', (h) => { answered = h })
    stream.on('error', reject)
    stream.resume()
    stream.on('end', () => { resolve({ status: Number(answered[':status']), ms: performance.now() - started, headers: answered }) })
    stream.end()
  })
}

async function http2App(t: Test, front: boolean) {
  const app = Fastify({ http2: true })
  await app.register(loadShedding, {
    eventLoop: false, front, priorityHeader: 'x-priority', pacing: { afterRefusals: 2, afterMs: 0, minDelayMs: 400, maxDelayMs: 400 }
  })
  app.get('/work', async () => ({ ok: true }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  const session = connect(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`)
  t.teardown(async () => {
    session.close()
    await app.close()
  })
  // Down to critical only, as a deep overload would.
  const { admission } = app.loadShedding.limiter
  for (let i = 0; i < 10; i++) {
    admission.arrivals.fill(100)
    admission.update(100, true, 100)
  }
  return session
}

for (const front of [false, true]) {
  t.test(`HTTP/2${front ? ', front door' : ''}: a refused stream is held, the session and its admitted streams are not`, async (t) => {
    const session = await http2App(t, front)
    const first = [await get(session, '/work'), await get(session, '/work')]
    for (const answer of first) {
      t.equal(answer.status, 503)
      t.ok(answer.ms < 250, `a first refusal at once (${answer.ms.toFixed(0)} ms)`)
      t.equal(answer.headers['connection'], undefined, 'no Connection field')
    }
    const held = get(session, '/work')
    // While that stream is held, the same session carries an admissible request.
    await new Promise((resolve) => setTimeout(resolve, 50))
    const admitted = await get(session, '/work', { 'x-priority': 'critical' })
    t.equal(admitted.status, 200)
    t.ok(admitted.ms < 250, `answered beside the held stream (${admitted.ms.toFixed(0)} ms)`)
    const refusal = await held
    t.equal(refusal.status, 503)
    t.ok(refusal.ms >= 390, `the third refusal in a row held (${refusal.ms.toFixed(0)} ms)`)
    t.equal(refusal.headers['connection'], undefined)
    t.equal(typeof refusal.headers['retry-after'], 'string')
  })
}
