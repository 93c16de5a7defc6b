import t from 'tap'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { ADMIT, QUEUED, SHED_LIMIT, SHED_QUEUE, SHED_THRESHOLD, type Refusal } from '../src/decision.js'
import { normalizeOptions, type SheddingOptions } from '../src/options.js'
import { ShedController, type QueuedRequestHandlers } from '../src/shed-controller.js'

function clock(start = 0): { now: () => number, advance: (ms: number) => void } {
  let at = start
  return { now: () => at, advance: (ms) => { at += ms } }
}

interface Item { id: string, gone?: boolean }

function controller(options: SheddingOptions<never> = {}, events: string[] = [], now = clock().now): ShedController<Item> {
  const queued: QueuedRequestHandlers<Item> = {
    run: (item) => { events.push(`run ${item.id}`) },
    refuse: (item, rank, refusal: Refusal) => { events.push(`refuse ${item.id} ${rank} ${refusal.reason}`) },
    gone: (item) => item.gone === true
  }
  return new ShedController<Item>(normalizeOptions<never>({ eventLoop: false, ...options }), { now, queued })
}

t.test('a calm controller admits, and the slot is held until release', async (t) => {
  const c = controller({ algorithm: 'aimd', aimd: { initialLimit: 2, minLimit: 1 }, queue: false })
  t.equal(c.acquire(2, 0, 0), ADMIT)
  t.equal(c.acquire(2, 0, 0), ADMIT)
  t.equal(c.acquire(2, 0, 0), SHED_LIMIT, 'normal fills the limit of 2')
  c.release(5, false)
  t.equal(c.acquire(2, 0, 0), ADMIT, 'a release frees the slot')
  t.equal(c.limiter.state.shed.normal.limit, 1, 'the refusal was counted where it was decided')
})

t.test('with the run queue: a request read past the turn budget waits its turn, then runs', async (t) => {
  const events: string[] = []
  const time = clock()
  const c = controller({ queue: { turnBudgetMs: 5 } }, events, time.now)
  t.equal(c.acquire(2, 0, 0), ADMIT, 'the first request of a turn runs at once')
  time.advance(6)
  t.equal(c.acquire(1, 0, 6), QUEUED, '6 ms into the turn: it must wait')
  t.equal(c.enqueue(1, 6, { id: 'a' }), QUEUED)
  t.equal(c.queueLength, 1)
  await nextTurn()
  t.same(events, ['run a'], 'run after the poll phase')
  t.equal(c.limiter.state.admitted.high, 1, 'it took its slot when it ran')
})

t.test('a full run queue refuses at once and counts it; stop() refuses whatever waits', async (t) => {
  const events: string[] = []
  const time = clock()
  const c = controller({ queue: { turnBudgetMs: 0, maxLength: 1 } }, events, time.now)
  c.acquire(2, 0, 0)
  t.equal(c.enqueue(2, 0, { id: 'a' }), QUEUED)
  t.equal(c.enqueue(2, 0, { id: 'b' }), SHED_QUEUE, 'full')
  t.equal(c.limiter.state.shed.normal.queue, 1)
  c.stop()
  t.same(events, ['refuse a 2 queue'], 'the waiting one is refused on stop')
  t.equal(c.limiter.state.shed.normal.queue, 2)
})

t.test('a request whose client went away while it waited is dropped without running', async (t) => {
  const events: string[] = []
  const c = controller({ queue: { turnBudgetMs: 0 } }, events)
  c.acquire(2, 0, 0)
  c.enqueue(2, 0, { id: 'a', gone: true })
  c.enqueue(2, 0, { id: 'b' })
  // A budget of 0 runs one request per slice, one slice per loop turn.
  await nextTurn()
  await nextTurn()
  t.same(events, ['run b'])
})

t.test('shadow mode has no run queue and always lets the request go on, counting what it would refuse', async (t) => {
  const c = controller({ mode: 'shadow', queue: { turnBudgetMs: 0 } })
  t.equal(c.acquire(2, 0, 0), ADMIT)
  t.equal(c.acquire(2, 0, 0), ADMIT, 'no QUEUED in shadow mode')
  c.limiter.admission.update(100, true, 100)
  t.equal(c.acquire(3, 0, 0), SHED_THRESHOLD, 'the answer says what enforce mode would do')
  t.equal(c.limiter.state.inFlight, 3, 'and the request still counts in flight')
})

t.test('cohorts: a key hashes to the same cohort; without one, round-robin', async (t) => {
  const c = controller({ cohorts: 4 })
  const cohort = c.cohort('user-1')
  t.equal(c.cohort('user-1'), cohort)
  t.ok(cohort >= 0 && cohort < 4)
  t.same([c.cohort(undefined), c.cohort(undefined), c.cohort(undefined), c.cohort(undefined)].sort(), [0, 1, 2, 3])
})

t.test('deadlines: a past epoch-ms value has passed; anything else has not', async (t) => {
  const c = controller()
  t.equal(c.pastDeadline(String(Date.now() - 1000)), true)
  t.equal(c.pastDeadline(String(Date.now() + 60_000)), false)
  t.equal(c.pastDeadline('soon'), false)
  t.equal(c.pastDeadline(undefined), false)
})

t.test('a control step publishes the pressure and the state; start/stop run the loop', async (t) => {
  const time = clock()
  const published: number[] = []
  const states: unknown[] = []
  const c = new ShedController<Item>(normalizeOptions<never>({ eventLoop: false, signals: { pool: () => 2 } }), {
    now: time.now,
    publishPressure: (pressure) => published.push(pressure),
    onUpdate: (state) => states.push(state)
  })
  for (let i = 0; i < 20; i++) c.acquire(3, i % 128, 0)
  time.advance(100)
  const state = c.update()
  t.equal(published.length, 1)
  t.equal(states[0], state)
  t.ok(state.overloaded, 'the user signal at 2 says overload')
  t.ok(published[0]! > 0, 'pressure rose')
  c.start()
  t.equal(c.running, true)
  c.stop()
  t.equal(c.running, false)
})
