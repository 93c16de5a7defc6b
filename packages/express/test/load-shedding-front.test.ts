import { once } from 'node:events'
import { createServer, type RequestListener } from 'node:http'
import type { AddressInfo } from 'node:net'
import express from 'express'
import t, { type Test } from 'tap'
import { PROBLEM_CONTENT_TYPE } from '@spillway/latency-window'
import { loadShedding, type ExpressLoadSheddingOptions } from '../src/load-shedding.js'

/** Serves a Node request listener on an ephemeral 127.0.0.1 port until the test ends. */
async function serveListener(t: Test, listener: RequestListener): Promise<string> {
  const server = createServer(listener).listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** An Express app that counts the requests Express itself handled, in front of a shedder. */
async function frontedApp(t: Test, options: ExpressLoadSheddingOptions, alsoMounted = false) {
  const shed = loadShedding({ intervalMs: 60_000, eventLoop: false, queue: false, ...options })
  t.teardown(() => shed.close())
  const app = express()
  const reached: string[] = []
  app.use((request, _response, next) => {
    reached.push(request.path)
    next()
  })
  if (alsoMounted) app.use(shed)
  for (const path of ['/checkout', '/feed', '/health']) app.get(path, (_request, response) => { response.send(path) })
  const base = await serveListener(t, shed.front(app, {
    priority: (_request, path) => (path === '/checkout' ? 'high' : undefined),
    cohortKey: (request) => request.headers['x-user'] as string | undefined
  }))
  return { shed, base, reached }
}

t.test('front(): admitted requests reach Express, with the priority read from the path', async (t) => {
  const { shed, base, reached } = await frontedApp(t, {})
  const checkout = await fetch(`${base}/checkout?item=1`)
  t.equal(checkout.status, 200)
  t.equal(await checkout.text(), '/checkout')
  const feed = await fetch(`${base}/feed`, { headers: { 'x-user': 'ada' } })
  t.equal(await feed.text(), '/feed')
  t.same(reached, ['/checkout', '/feed'])
  t.equal(shed.state.admitted.high, 1, 'the path named the priority (query left out)')
  t.equal(shed.state.admitted.normal, 1, 'the rest get the default priority')
  t.equal(shed.state.inFlight, 0, 'both released when their responses finished')
})

t.test('front(): a refused request never reaches Express', async (t) => {
  const { shed, base, reached } = await frontedApp(t, { deadlineHeader: 'x-deadline' })
  const late = await fetch(`${base}/checkout`, { headers: { 'x-deadline': String(Date.now() - 1000) } })
  t.equal(late.status, 503)
  t.equal(late.headers.get('content-type'), PROBLEM_CONTENT_TYPE)
  t.ok(Number(late.headers.get('retry-after')) >= 1, 'a Retry-After in seconds')
  t.match(await late.json(), { status: 503, reason: 'deadline' })
  t.same(reached, [], 'Express did not see it')
  t.equal(shed.state.shed.high.deadline, 1)
  const inTime = await fetch(`${base}/checkout`, { headers: { 'x-deadline': String(Date.now() + 60_000) } })
  t.equal(inTime.status, 200)
  t.same(reached, ['/checkout'])
})

t.test('front(): bypass and the status route match the URL path; an untrusted priority header is ignored', async (t) => {
  const { shed, base, reached } = await frontedApp(t, { bypass: ['/health'], statusRoute: '/_shed' })
  t.equal((await fetch(`${base}/health?probe=1`)).status, 200)
  t.same(reached, ['/health'], 'bypassed straight to Express')
  t.equal(shed.state.admitted.normal + shed.state.admitted.high, 0, 'a bypassed request is not decided')
  const status = await fetch(`${base}/_shed`)
  t.equal(status.status, 200)
  t.match(await status.json(), { mode: 'enforce', threshold: { levels: 512 } })
  t.same(reached, ['/health'], 'the status route is answered in front')
  await fetch(`${base}/feed`, { headers: { 'x-priority': 'critical' } })
  t.equal(shed.state.admitted.normal, 1, 'no priorityHeader option: the header is ignored')
})

t.test('front(): a trusted priority header is read when the function names no priority', async (t) => {
  const { shed, base } = await frontedApp(t, { priorityHeader: 'x-priority' })
  await fetch(`${base}/feed`, { headers: { 'x-priority': 'low' } })
  await fetch(`${base}/checkout`, { headers: { 'x-priority': 'low' } })
  t.equal(shed.state.admitted.low, 1, 'the header')
  t.equal(shed.state.admitted.high, 1, 'the function first')
})

t.test('front() and the same shedder mounted inside the app decide a request once', async (t) => {
  const { shed, base, reached } = await frontedApp(t, {}, true)
  for (let i = 0; i < 3; i++) t.equal((await fetch(`${base}/feed`)).status, 200)
  t.equal(reached.length, 3)
  t.equal(shed.state.admitted.normal, 3, 'one decision per request, not two')
  t.equal(shed.state.inFlight, 0)
})

t.test('front() checks its arguments at once', async (t) => {
  const shed = loadShedding({ eventLoop: false })
  t.teardown(() => shed.close())
  t.throws(() => shed.front('app' as unknown as RequestListener), {
    code: 'SPILLWAY_LOAD_SHEDDING_OPTIONS', message: /front\(app\) must be a function/
  })
  t.throws(() => shed.front(express(), { priority: 'high' as never }), {
    code: 'SPILLWAY_LOAD_SHEDDING_OPTIONS', message: /front\(\)\.priority must be a function/
  })
  t.throws(() => shed.front(express(), 5 as never), {
    code: 'SPILLWAY_LOAD_SHEDDING_OPTIONS', message: /front\(\) options must be an object/
  })
  t.throws(() => shed.front(express(), { cohortkey: () => 'k' } as never), {
    code: 'SPILLWAY_LOAD_SHEDDING_OPTIONS', message: /front\(\)\.cohortkey is not an option; did you mean cohortKey\?$/
  })
})
