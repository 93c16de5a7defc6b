import t from 'tap'
import { InFlightRequests, type ListedRequest } from '../src/in-flight-requests.js'

/** A request's timing as the list sees it. */
function request(startedAt: number, recordedBefore = 0, ageless = false): ListedRequest {
  return { previous: undefined, next: undefined, startedAt, recordedBefore, ageless }
}

function order(list: InFlightRequests): number[] {
  const starts: number[] = []
  for (let r = list.oldest; r !== undefined; r = list.after(r)) starts.push(r.startedAt as number)
  return starts
}

t.test('oldest first; a request leaves from anywhere in O(1)', async (t) => {
  const list = new InFlightRequests()
  const [a, b, c, d] = [request(1), request(2), request(3), request(4)]
  for (const r of [a, b, c, d]) list.push(r!)
  t.same(order(list), [1, 2, 3, 4])
  t.equal(list.length, 4)
  list.remove(b!)
  t.same(order(list), [1, 3, 4], 'from the middle')
  list.remove(a!)
  t.equal(list.oldest, c, 'from the head: the next oldest is the head')
  list.remove(d!)
  t.same(order(list), [3], 'from the tail')
  list.push(request(5))
  t.same(order(list), [3, 5], 'and the tail is right after it')
  list.remove(c!)
  t.equal(list.length, 1)
  t.same(order(list), [5])
})

t.test('a hung dependency: every recent request still in flight reads as its age', async (t) => {
  const list = new InFlightRequests()
  // 30 requests started 10 ms apart after the 1000th recorded latency; none has completed.
  for (let i = 0; i < 30; i++) list.push(request(i * 10, 1000))
  const at = list.latencyAt(0.95, 700, 1000)
  t.equal(at.samples, 30)
  // p95 of 30 samples, nearest rank 29: the second slowest, the second oldest (started at 10).
  t.equal(at.ageMs, 690)
})

t.test('one stuck request among many fast ones moves nothing', async (t) => {
  const list = new InFlightRequests()
  list.push(request(0, 500))
  list.push(request(995, 700))
  // 300 latencies recorded since the stuck one started.
  const at = list.latencyAt(0.95, 1000, 800)
  t.equal(at.samples, 302)
  t.equal(at.ageMs, 0, 'the 16th slowest of 302 is not in flight: it completed fast')
})

t.test('nearest rank as the latency window ranks: p95 of 20 samples is the second slowest', async (t) => {
  const list = new InFlightRequests()
  list.push(request(0, 18))
  list.push(request(100, 18))
  const at = list.latencyAt(0.95, 1000, 36)
  t.equal(at.samples, 20)
  t.equal(at.ageMs, 900)
  t.equal(list.latencyAt(0.99, 1000, 36).ageMs, 1000, 'p99 of 20: the slowest')
})

t.test('ageless requests (uploads, held refusals) are left out', async (t) => {
  const list = new InFlightRequests()
  list.push(request(0, 0, true))
  list.push(request(500, 0))
  list.push(request(600, 0, true))
  list.push(request(700, 0))
  const at = list.latencyAt(0.5, 1000, 0)
  t.equal(at.samples, 2, 'the two that count')
  t.equal(at.ageMs, 300, 'p50 of two in flight: the younger one')
  const empty = new InFlightRequests()
  empty.push(request(0, 0, true))
  t.same(empty.latencyAt(0.95, 1000, 0), { ageMs: 0, samples: 0 })
  t.same(new InFlightRequests().latencyAt(0.95, 1000, 0), { ageMs: 0, samples: 0 })
})
