/**
 * No false alarm from one stall: at up to 0.7× capacity, one 150 ms event-loop stall (what a
 * garbage collection does) may cost the requests that waited through it, and nothing more. The server runs
 * in a process of its own, with the load shedder and degradation at their defaults; an open-loop
 * client keeps sending while it is stalled, and knows when each request was sent.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { Agent, get } from 'node:http'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const LOAD = 0.5
const epochNow = (): number => performance.timeOrigin + performance.now()
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

interface Report {
  levels: { atMs: number, from: number, to: number, reason: string }[]
  /** When the server's loop ran late (epoch ms, and by how much), its own stall included. */
  lags: { atMs: number, lagMs: number }[]
  peakPressure: number
  shed: Record<string, Record<string, number>>
}

t.test('below 0.7× capacity, one 150 ms stall refuses only requests that waited through it, and degrades nothing', async (t) => {
  const server = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./support/stall-server.ts', import.meta.url))], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  t.teardown(() => { if (server.exitCode === null) server.kill() })
  const [{ port }] = await once(server, 'message') as [{ port: number }]
  const agent = new Agent({ keepAlive: true, maxSockets: 256 })
  t.teardown(() => agent.destroy())
  const request = (path: string): Promise<{ status: number, body: string }> => new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path, agent }, (response) => {
      let body = ''
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => { body += chunk })
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }))
    }).on('error', reject)
  })

  // Capacity: what a closed loop of 8 connections gets served in 2 s, on a route the shedder leaves
  // alone (which also warms the server up).
  let answered = 0
  const measuredFrom = performance.now()
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (performance.now() - measuredFrom < 2000) {
      if ((await request('/measure')).status === 200) answered++
    }
  }))
  const capacity = answered / ((performance.now() - measuredFrom) / 1000)
  // Half the capacity measured, which is at most 0.7× of what the server gets while the test runs
  // on a machine whose other work may take up to a quarter of its core meanwhile.
  const rate = LOAD * capacity
  await sleep(500)
  server.send('start')

  // Open loop for 3 s, the stall 1 s in.
  const sent: { at: number, status?: number }[] = []
  const pending: Promise<void>[] = []
  let stall: Promise<{ startedAt: number, endedAt: number }> | undefined
  const from = epochNow()
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const now = epochNow()
      const due = Math.floor((now - from) / 1000 * rate)
      while (sent.length < due) {
        const entry: { at: number, status?: number } = { at: epochNow() }
        sent.push(entry)
        pending.push(request('/work').then((answer) => { entry.status = answer.status }))
      }
      if (stall === undefined && now - from >= 1000) stall = request('/stall').then((answer) => JSON.parse(answer.body) as { startedAt: number, endedAt: number })
      if (now - from >= 3000) {
        clearInterval(timer)
        resolve()
      }
    }, 2)
  })
  await Promise.all(pending)
  const { startedAt, endedAt } = await (stall as Promise<{ startedAt: number, endedAt: number }>)
  // Degradation evaluates every 500 ms: give it two more evaluations after the traffic.
  await sleep(1200)
  server.send('report')
  const [report] = await once(server, 'message') as [Report]

  const refused = sent.filter((entry) => entry.status !== 200)
  const duringStall = sent.filter((entry) => entry.at >= startedAt && entry.at <= endedAt).length
  const describe = refused.map((entry) => `${(entry.at - endedAt).toFixed(0)} ms`).join(', ')
  t.comment(`capacity ${capacity.toFixed(0)}/s, sent ${sent.length} at ${rate.toFixed(0)}/s, stall ${(endedAt - startedAt).toFixed(0)} ms, ` +
    `${duringStall} sent during it; refused ${refused.length} (sent at ${describe || '–'} relative to the stall's end)`)
  t.ok(endedAt - startedAt >= 149, 'the stall happened')
  t.same(refused.filter((entry) => entry.status !== 503), [], 'anything not served was a 503')
  t.ok(refused.length <= duringStall, 'no more refusals than requests sent during the stall')
  // A shared machine may take the server's core away at another moment: a refusal right after such
  // a pause of its own (seen by the server's 10 ms timer) is that pause's, not the stall's.
  const otherPauses = report.lags.filter((lag) => lag.atMs < startedAt || lag.atMs > endedAt + 20)
  const afterOtherPause = (at: number) => otherPauses.some((lag) => at >= lag.atMs - lag.lagMs - 100 && at <= lag.atMs + 300)
  const late = refused.filter((entry) => entry.at > endedAt + 200)
  if (otherPauses.length > 0) t.comment(`the server's loop also paused: ${otherPauses.map((lag) => `${lag.lagMs.toFixed(0)} ms at ${(lag.atMs - endedAt).toFixed(0)} ms`).join(', ')}`)
  t.same(late.filter((entry) => !afterOtherPause(entry.at)).map((entry) => Math.round(entry.at - endedAt)), [],
    'admission back to normal within 200 ms of the stall\'s end')
  t.same(report.levels, [], 'the degradation level stayed 0')
  t.equal(report.peakPressure, 0, 'the shedder\'s threshold never moved')
})
