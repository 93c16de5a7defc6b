import { connect, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import express from 'express'
import t from 'tap'
import { PRIORITIES } from '@spillway/latency-window'
import { loadShedding } from '../src/load-shedding.js'
import { serve } from './helpers/serve.js'

const HANDLER_MS = 3

function busy(ms: number): void {
  const end = performance.now() + ms
  while (performance.now() < end) { /* the CPU-bound handler */ }
}

/** Opens `count` connections to `base` and answers them once they are all established. */
async function connectAll(base: string, count: number): Promise<Socket[]> {
  const { hostname, port } = new URL(base)
  return Promise.all(Array.from({ length: count }, () => new Promise<Socket>((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => resolve(socket))
    socket.once('error', reject)
  })))
}

/** The raw response read from `socket` until the server closes it. */
function readResponse(socket: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = ''
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => { text += chunk })
    socket.once('end', () => resolve(text))
    socket.once('error', reject)
  })
}

t.test('the run queue over real HTTP: a burst of CPU-bound requests is answered, the waiting ones most important first', async (t) => {
  const app = express()
  const shed = loadShedding({
    intervalMs: 60_000,
    eventLoop: false,
    gradient2: { initialLimit: 1000 },
    maxQueueMs: { high: 1e6, normal: 1e6, low: 1e6 },
    queue: { turnBudgetMs: 1 }
  })
  t.teardown(() => shed.close())
  const ran: string[] = []
  for (const priority of PRIORITIES) {
    app.get(`/${priority}`, shed.route({ priority }), (request, response) => {
      ran.push(String(request.query.id))
      busy(HANDLER_MS)
      response.send('ok')
    })
  }
  const base = await serve(t, app)

  // Lows first, highs last: in arrival order the lows would run first.
  const paths = [
    '/low?id=low1', '/low?id=low2', '/low?id=low3', '/low?id=low4',
    '/normal?id=normal5', '/normal?id=normal6',
    '/high?id=high7', '/high?id=high8', '/critical?id=critical9'
  ]
  // The connections first, accepted by the server; then every request is written in one
  // synchronous loop, so that all of them are in the server's socket buffers before its next poll
  // phase reads them back to back — a burst, as on a saturated server. (fetch would write them
  // over several loop turns.)
  const sockets = await connectAll(base, paths.length)
  await sleep(50)
  const responses = sockets.map(readResponse)
  paths.forEach((path, i) => {
    sockets[i]!.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`)
  })
  const texts = await Promise.all(responses)
  t.same(texts.map((text) => text.split(' ')[1]), paths.map(() => '200'), 'every request answered 200')
  t.ok(texts.every((text) => text.endsWith('\r\n\r\nok')), 'by its handler')

  t.equal(ran.length, paths.length)
  const state = shed.update()
  t.ok(state.signals.queue.dispatched >= paths.length - 2, `${state.signals.queue.dispatched} of ${paths.length} waited in the queue`)
  t.equal(state.signals.queue.expired, 0)
  t.equal(state.inFlight, 0, 'every slot released')
  // The first request read opened the loop turn and ran at once; the rest waited and ran by priority.
  const queued = ran.slice(paths.length - state.signals.queue.dispatched)
  const rankOf = (id: string): number => PRIORITIES.findIndex((priority) => id.startsWith(priority))
  const ranks = queued.map(rankOf)
  t.same(ranks, [...ranks].sort((a, b) => a - b), `queued ones ran most important first: ${queued.join(', ')}`)
  t.ok(ran.indexOf('high7') < ran.indexOf('low4') && ran.indexOf('high8') < ran.indexOf('low4'),
    `highs before the last low: ${ran.join(', ')}`)
})
