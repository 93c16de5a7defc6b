import t from 'tap'
import { RunQueue, type RunQueueOptions } from '../src/run-queue.js'

/** Lets the dispatcher's pending immediate (scheduled before this one) run. */
const nextImmediate = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/**
 * A queue on a clock the test moves (or that `run` advances, as a handler's CPU time would),
 * recording every run and expiry as `run <item>` / `expire <item>`.
 */
function queue(options: Partial<RunQueueOptions<string>> & { runMs?: number } = {}) {
  const clock = { now: 0 }
  const events: string[] = []
  const { runMs = 0, ...overrides } = options
  const q = new RunQueue<string>({
    now: () => clock.now,
    ranks: 4,
    turnBudgetMs: 5,
    maxWaitMs: [Number.POSITIVE_INFINITY, 1e6, 1e6, 1e6],
    maxLength: 100,
    run: (item) => {
      events.push(`run ${item}`)
      clock.now += runMs
    },
    expire: (item) => { events.push(`expire ${item}`) },
    ...overrides
  })
  return { q, clock, events }
}

t.test('mustWait: once the turn has run its budget, or while requests already wait', async (t) => {
  const { q, events } = queue({ turnBudgetMs: 5 })
  t.equal(q.mustWait(0), false, 'fresh turn, empty queue')
  t.equal(q.mustWait(4.9), false, 'within the budget')
  t.equal(q.mustWait(5), true, 'budget reached')
  t.equal(q.mustWait(50), true, 'budget exceeded')
  t.equal(q.push(2, 'a', 0), true)
  t.equal(q.length, 1)
  t.equal(q.mustWait(0), true, 'a waiting request: a newcomer queues behind it, whatever the turn')
  await nextImmediate()
  t.same(events, ['run a'])
  t.equal(q.length, 0)
  t.equal(q.mustWait(0), false, 'empty again')
})

t.test('nothing runs synchronously in push: the dispatcher runs on a later immediate', async (t) => {
  const { q, events } = queue()
  q.push(3, 'x', 0)
  await Promise.resolve()
  t.same(events, [], 'not even after a microtask')
  await nextImmediate()
  t.same(events, ['run x'])
})

t.test('dispatch order: most important rank first, FIFO within a rank', async (t) => {
  const { q, events } = queue()
  q.push(3, 'low1', 0)
  q.push(2, 'normal1', 0)
  q.push(3, 'low2', 0)
  q.push(1, 'high1', 0)
  q.push(2, 'normal2', 0)
  q.push(0, 'critical1', 0)
  q.push(1, 'high2', 0)
  q.push(0, 'critical2', 0)
  t.equal(q.length, 8)
  await nextImmediate()
  t.same(events, ['run critical1', 'run critical2', 'run high1', 'run high2', 'run normal1', 'run normal2', 'run low1', 'run low2'])
  t.equal(q.length, 0)
  t.same(q.takeCounts(), { expired: 0, dispatched: 8, peakLength: 8, length: 0 })
})

t.test('one slice runs at most turnBudgetMs of work, then yields; the rest runs on later immediates', async (t) => {
  // Every run takes 3 ms on the queue's clock; budget 5 ms: two runs per slice (3 < 5, 6 ≥ 5).
  const { q, events } = queue({ turnBudgetMs: 5, runMs: 3 })
  for (let i = 1; i <= 5; i++) q.push(2, `r${i}`, 0)
  await nextImmediate()
  t.same(events, ['run r1', 'run r2'], 'first slice: two')
  t.equal(q.length, 3)
  t.equal(q.mustWait(0), true, 'the rest still waits')
  await nextImmediate()
  t.same(events, ['run r1', 'run r2', 'run r3', 'run r4'], 'second slice: two more')
  await nextImmediate()
  t.same(events, ['run r1', 'run r2', 'run r3', 'run r4', 'run r5'], 'third slice: the last')
  t.equal(q.length, 0)
  t.equal(q.takeCounts().dispatched, 5)
  await nextImmediate()
  t.equal(events.length, 5, 'nothing more')
})

t.test('a request that arrives between slices is served by priority with those still waiting', async (t) => {
  const { q, events } = queue({ turnBudgetMs: 5, runMs: 3 })
  for (let i = 1; i <= 4; i++) q.push(3, `low${i}`, 0)
  await nextImmediate()
  t.same(events, ['run low1', 'run low2'])
  q.push(1, 'high', 6)
  await nextImmediate()
  t.same(events, ['run low1', 'run low2', 'run high', 'run low3'], 'the high one goes ahead of the waiting lows')
  await nextImmediate()
  t.same(events, ['run low1', 'run low2', 'run high', 'run low3', 'run low4'])
})

t.test('a zero budget still runs one request per slice', async (t) => {
  const { q, events } = queue({ turnBudgetMs: 0 })
  q.push(2, 'a', 0)
  q.push(2, 'b', 0)
  await nextImmediate()
  t.same(events, ['run a'])
  await nextImmediate()
  t.same(events, ['run a', 'run b'])
})

t.test('expiry: a request whose wait (from its start, not its push) exceeds its rank\'s maxWaitMs is expired, not run', async (t) => {
  const { q, clock, events } = queue({ maxWaitMs: [Number.POSITIVE_INFINITY, 30, 20, 10] })
  clock.now = 100
  q.push(3, 'low-old', 89) // already waited 11 ms > 10
  q.push(3, 'low-edge', 90) // waited exactly 10 ms: not past it
  q.push(2, 'normal', 85) // 15 ms ≤ 20
  q.push(1, 'high-old', 69) // 31 ms > 30
  q.push(0, 'critical', -1e9) // never expires
  await nextImmediate()
  t.same(events, ['expire high-old', 'expire low-old', 'run critical', 'run normal', 'run low-edge'])
  t.same(q.takeCounts(), { expired: 2, dispatched: 3, peakLength: 5, length: 0 })
})

t.test('expiry during a slice: a low request expires while higher ranks are still being served', async (t) => {
  // Each run takes 8 ms; a low request may wait 10 ms: it expires behind two high ones, although
  // the slice would have reached it.
  const { q, events } = queue({ turnBudgetMs: 1000, runMs: 8, maxWaitMs: [Number.POSITIVE_INFINITY, 1e6, 20, 10] })
  q.push(3, 'low', 0)
  q.push(2, 'normal', 0)
  q.push(1, 'high1', 0)
  q.push(1, 'high2', 0)
  await nextImmediate()
  t.same(events, ['run high1', 'run high2', 'expire low', 'run normal'],
    'low (16 ms > 10) expired at 16 ms; normal (16 ms ≤ 20) still ran')
  t.same(q.takeCounts(), { expired: 1, dispatched: 3, peakLength: 4, length: 0 })
})

t.test('expiry empties the queue: the slice stops and schedules nothing', async (t) => {
  const { q, clock, events } = queue({ maxWaitMs: [Number.POSITIVE_INFINITY, 5, 5, 5] })
  q.push(3, 'a', 0)
  q.push(2, 'b', 0)
  clock.now = 50
  await nextImmediate()
  t.same(events, ['expire b', 'expire a'], 'more important rank checked first')
  t.equal(q.length, 0)
  t.equal(q.mustWait(0), false)
  t.same(q.takeCounts(), { expired: 2, dispatched: 0, peakLength: 2, length: 0 })
})

t.test('maxLength: a push into a full queue is refused and counted as expired', async (t) => {
  const { q, events } = queue({ maxLength: 2 })
  t.equal(q.push(2, 'a', 0), true)
  t.equal(q.push(0, 'b', 0), true)
  t.equal(q.push(0, 'c', 0), false, 'full, even for critical')
  t.equal(q.length, 2)
  t.same(q.takeCounts(), { expired: 1, dispatched: 0, peakLength: 2, length: 2 })
  await nextImmediate()
  t.same(events, ['run b', 'run a'], 'the refused one never runs nor expires: the caller refuses it')
  t.equal(q.push(3, 'd', 0), true, 'room again')
  await nextImmediate()
  t.same(events, ['run b', 'run a', 'run d'])
})

t.test('takeCounts answers the interval\'s counts and resets them; the peak restarts from the current length', async (t) => {
  const { q, clock } = queue({ maxWaitMs: [Number.POSITIVE_INFINITY, 1e6, 1e6, 10] })
  q.push(2, 'a', 0)
  q.push(2, 'b', 0)
  q.push(3, 'c', 0)
  t.same(q.takeCounts(), { expired: 0, dispatched: 0, peakLength: 3, length: 3 })
  t.same(q.takeCounts(), { expired: 0, dispatched: 0, peakLength: 3, length: 3 }, 'still three waiting: the peak is the current length')
  clock.now = 20
  await nextImmediate()
  t.same(q.takeCounts(), { expired: 1, dispatched: 2, peakLength: 3, length: 0 })
  t.same(q.takeCounts(), { expired: 0, dispatched: 0, peakLength: 0, length: 0 }, 'reset')
})

t.test('clear() expires everything waiting, most important rank first, and nothing runs afterwards', async (t) => {
  const { q, events } = queue()
  q.push(3, 'low', 0)
  q.push(1, 'high', 0)
  q.push(2, 'normal', 0)
  q.push(0, 'critical', 0)
  q.clear()
  t.same(events, ['expire critical', 'expire high', 'expire normal', 'expire low'])
  t.equal(q.length, 0)
  t.equal(q.mustWait(0), false)
  await nextImmediate()
  t.equal(events.length, 4, 'the pending slice finds nothing to run')
  t.equal(q.push(2, 'later', 0), true, 'usable again')
  await nextImmediate()
  t.same(events.slice(4), ['run later'])
})

t.test('a long FIFO is compacted without losing or reordering anything', async (t) => {
  const { q, events } = queue({ maxLength: 10_000, turnBudgetMs: 1000 })
  for (let i = 0; i < 3000; i++) q.push(2, `n${i}`, 0)
  await nextImmediate()
  t.equal(events.length, 3000)
  t.ok(events.every((e, i) => e === `run n${i}`), 'FIFO across compactions')
})

t.test('more waiting than can run in time: newest first, so that after a stall the fresh go first and the late expire', async (t) => {
  // A run takes 5 ms and normal may wait 40: newest first from more than eight waiting.
  const { q, clock, events } = queue({ runMs: 5, maxWaitMs: [Number.POSITIVE_INFINITY, 1e6, 40, 1e6] })
  // The twenty that waited through a stall, read at once.
  for (let i = 0; i < 20; i++) q.push(2, `late${i}`, 0)
  for (let i = 0; i < 3; i++) await nextImmediate()
  t.same(events, ['run late0', 'run late19', 'run late18'], 'oldest first until a run has been timed; then newest first')
  t.equal(clock.now, 15)
  q.push(2, 'fresh', 15)
  for (let i = 0; i < 20 && q.length > 0; i++) await nextImmediate()
  t.same(events.slice(3), [
    'run fresh', 'run late17', 'run late16', 'run late15', 'run late14', 'run late13',
    ...Array.from({ length: 12 }, (_, i) => `expire late${i + 1}`)
  ], 'the one arriving after them is run next; the oldest expire')
  t.same(q.takeCounts(), { expired: 12, dispatched: 9, peakLength: 20, length: 0 })
})

t.test('a queue that can be served in time is served oldest first, even when it is long', async (t) => {
  const { q, events } = queue({ runMs: 1, maxWaitMs: [Number.POSITIVE_INFINITY, 1e6, 40, 1e6] })
  for (let i = 0; i < 40; i++) q.push(2, `n${i}`, 0)
  for (let i = 0; i < 40 && q.length > 0; i++) await nextImmediate()
  t.same(events, Array.from({ length: 40 }, (_, i) => `run n${i}`), '40 runs of 1 ms fit in 40 ms')
})
