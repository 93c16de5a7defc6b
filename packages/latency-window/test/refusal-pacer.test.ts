import { IncomingMessage } from 'node:http'
import { Socket } from 'node:net'
import t from 'tap'
import { SpillwayOptionsError } from '../src/option-checks.js'
import {
  QUICK_RETURN_MS, RefusalPacer, SUSPEND_MS, TICK_MS, normalizeRefusalPacing, type HeldRefusal, type PacerTimers, type RefusalPacingOptions
} from '../src/refusal-pacer.js'

/** A clock the test moves, and timers that only record what the pacer scheduled. */
function harness(options: RefusalPacingOptions = {}) {
  let now = 10_000
  const intervals = new Set<unknown>()
  let started = 0
  const timers: PacerTimers = {
    setInterval(_callback, ms) {
      if (ms !== TICK_MS) throw new Error(`interval of ${ms} ms`)
      const handle = { id: ++started }
      intervals.add(handle)
      return handle
    },
    clearInterval: (handle) => { intervals.delete(handle) }
  }
  const pacer = new RefusalPacer(normalizeRefusalPacing('pacing', options)!, () => now, timers)
  return {
    pacer,
    intervals,
    started: () => started,
    at: () => now,
    advance(ms: number) {
      now += ms
      pacer.releaseDue()
    },
    set(ms: number) { now = ms }
  }
}

const request = (socket = new Socket()): IncomingMessage => new IncomingMessage(socket)

/** A held refusal that records when it was sent. */
function refusal(request: IncomingMessage, sent: number[], at: () => number): HeldRefusal {
  return { request, release: () => { sent.push(at()) } }
}

/** Refuses `request` and holds it when the pacer says so; answers whether it was held. */
function refuse(h: ReturnType<typeof harness>, req: IncomingMessage, sent: number[]): boolean {
  const holdMs = h.pacer.refused(req)
  if (holdMs === 0) return false
  h.pacer.hold(refusal(req, sent, h.at), holdMs)
  return true
}

t.test('options: defaults, off, overrides, and bad or unknown keys fail naming the option', async (t) => {
  t.same(normalizeRefusalPacing('pacing', undefined), { afterRefusals: 3, afterMs: 0, minDelayMs: 250, maxDelayMs: 750, maxHeld: 10_000 })
  t.same(normalizeRefusalPacing('pacing', true), normalizeRefusalPacing('pacing', {}))
  t.equal(normalizeRefusalPacing('pacing', false), undefined)
  t.same(normalizeRefusalPacing('pacing', { minDelayMs: 1000 })?.maxDelayMs, 1000, 'the longest hold follows a longer shortest one')
  t.ok(Object.isFrozen(normalizeRefusalPacing('pacing', {})))
  t.throws(() => normalizeRefusalPacing('pacing', { maxDelay: 5 }), /^pacing\.maxDelay is not an option; did you mean maxDelayMs\?$/)
  t.throws(() => normalizeRefusalPacing('pacing', { burst: 5 }), /^pacing\.burst is not an option; pacing takes afterRefusals, afterMs, minDelayMs, maxDelayMs, maxHeld$/)
  t.throws(() => normalizeRefusalPacing('pacing', { minDelayMs: 500, maxDelayMs: 100 }), /pacing\.maxDelayMs must be a finite number in \[500, 60000\], got 100/)
  t.throws(() => normalizeRefusalPacing('pacing', { afterRefusals: 1.5 }), /pacing\.afterRefusals must be an integer/)
  t.throws(() => normalizeRefusalPacing('pacing', 'yes'), /pacing must be an object, got "yes"/)
  t.throws(() => normalizeRefusalPacing('pacing', { maxHeld: -1 }), SpillwayOptionsError)
  const fail = (message: string): Error => new RangeError(`custom: ${message}`)
  t.throws(() => normalizeRefusalPacing('shed.pacing', { afterMs: -1 }, fail), /custom: shed\.pacing\.afterMs/)
})

t.test('a connection is held only after afterRefusals refusals in a row over at least afterMs', async (t) => {
  const h = harness({ afterRefusals: 3, afterMs: 250 })
  const req = request()
  const sent: number[] = []
  t.notOk(refuse(h, req, sent), '1st')
  h.advance(10)
  t.notOk(refuse(h, req, sent), '2nd')
  h.advance(10)
  t.notOk(refuse(h, req, sent), '3rd')
  h.advance(10)
  t.notOk(refuse(h, req, sent), '4th: enough refusals, but the run is 30 ms old')
  h.advance(230)
  t.ok(refuse(h, req, sent), '5th, 260 ms into the run: held')
  t.equal(h.pacer.held, 1)
  t.notOk(refuse(h, request(), sent), 'another connection has its own run')
})

t.test('a held refusal goes out minDelayMs later at first, on one interval that stops when nothing is held', async (t) => {
  const h = harness({ afterRefusals: 0, afterMs: 0, minDelayMs: 200, maxDelayMs: 400 })
  const sent: number[] = []
  for (let i = 0; i < 50; i++) t.ok(refuse(h, request(), sent))
  const heldAt = h.at()
  t.equal(h.started(), 1, 'one interval for all of them')
  h.advance(199)
  t.equal(sent.length, 0, 'none before minDelayMs')
  h.advance(TICK_MS + 1)
  t.equal(sent.length, 50, 'a fresh run waits minDelayMs, to the tick')
  for (const at of sent) t.ok(at - heldAt >= 200 && at - heldAt <= 200 + TICK_MS + 1, `sent after ${at - heldAt} ms`)
  t.equal(h.pacer.held, 0)
  t.equal(h.intervals.size, 0, 'the interval stopped')
  t.equal(h.pacer.heldTotal, 50)
})

t.test('the longer a connection has been refused without a break, the longer its refusals are held, up to maxDelayMs', async (t) => {
  const h = harness({ afterRefusals: 0, afterMs: 0, minDelayMs: 10, maxDelayMs: 400 })
  const req = request()
  const holds: number[] = []
  for (let i = 0; i < 12; i++) {
    const holdMs = h.pacer.refused(req)
    holds.push(holdMs)
    // The client comes straight back when the held refusal is answered.
    h.set(h.at() + holdMs)
  }
  t.equal(holds[0], 10, 'a fresh run: minDelayMs')
  const shown = holds.map((ms) => ms.toFixed(0)).join(', ')
  t.ok(holds.every((ms, i) => {
    const runMs = holds.slice(0, i).reduce((sum, x) => sum + x, 0)
    return ms >= Math.min(10, 400) && ms <= Math.min(400, Math.max(10, runMs)) && ms >= Math.min(400, Math.max(10, runMs / 2))
  }), `${shown}: each hold half to all of the run so far, within [minDelayMs, maxDelayMs]`)
  t.ok(holds[6]! > 3 * holds[1]!, `${shown}: growing`)
  t.equal(holds[holds.length - 1], 400, 'capped at maxDelayMs')
})

t.test('the run goes on from when the held refusal was answered: a client coming straight back is held again', async (t) => {
  const h = harness({ afterRefusals: 0, afterMs: 0, minDelayMs: 900, maxDelayMs: 900 })
  const req = request()
  const sent: number[] = []
  t.ok(refuse(h, req, sent))
  h.advance(900 + TICK_MS)
  t.equal(sent.length, 1)
  h.advance(QUICK_RETURN_MS - TICK_MS - 1)
  t.ok(refuse(h, req, sent), 'back within a second of its answer (1.9 s after it was refused): still the same run')
})

t.test('a client that waits at least a second after each answer (Retry-After) is never held', async (t) => {
  const h = harness({ afterRefusals: 2, afterMs: 0 })
  const req = request()
  const sent: number[] = []
  for (let i = 0; i < 10; i++) {
    t.notOk(refuse(h, req, sent), `refusal ${i + 1}`)
    h.advance(QUICK_RETURN_MS + 1)
  }
})

t.test('an answer that is not a refusal ends a short run and halves a long one', async (t) => {
  const h = harness({ afterRefusals: 2, afterMs: 0 })
  const req = request()
  const sent: number[] = []
  t.notOk(refuse(h, req, sent))
  t.notOk(refuse(h, req, sent))
  h.pacer.served(req)
  t.notOk(refuse(h, req, sent), 'a short run (2): counting starts over')
  t.notOk(refuse(h, req, sent))
  t.ok(refuse(h, req, sent), 'the third in a row is held')
  for (let i = 0; i < 7; i++) refuse(h, req, sent)
  h.pacer.served(req)
  t.ok(refuse(h, req, sent), 'a long run (10 > 4 × afterRefusals) admitted once: halved, held again at once')
  h.pacer.served(request())
  t.ok(refuse(h, req, sent), 'another connection\'s answer does not touch this run')

  // A shared connection admitted every few requests (a pool's at 5× the capacity) is never held:
  // holding it would push its pool onto new connections.
  const shared = harness()
  const pooled = request()
  const held: boolean[] = []
  for (let i = 0; i < 50; i++) {
    for (let j = 0; j < 3; j++) held.push(refuse(shared, pooled, sent))
    shared.pacer.served(pooled)
  }
  t.ok(held.every((h) => !h), 'three refused for each admitted, with the default afterRefusals (3): never held')
})

t.test('at most maxHeld are held; beyond that refusals go out at once', async (t) => {
  const h = harness({ afterRefusals: 0, afterMs: 0, maxHeld: 3 })
  const sent: number[] = []
  const held = Array.from({ length: 5 }, () => refuse(h, request(), sent))
  t.same(held, [true, true, true, false, false])
  t.equal(h.pacer.held, 3)
  h.advance(750 + TICK_MS)
  t.equal(h.pacer.held, 0)
  t.ok(refuse(h, request(), sent), 'room again')
})

t.test('flush() sends everything held at once and holds nothing afterwards', async (t) => {
  const h = harness({ afterRefusals: 0, afterMs: 0, minDelayMs: 5000, maxDelayMs: 5000 })
  const sent: number[] = []
  for (let i = 0; i < 4; i++) refuse(h, request(), sent)
  h.pacer.flush()
  t.equal(sent.length, 4)
  t.equal(h.pacer.held, 0)
  t.equal(h.intervals.size, 0)
  t.notOk(refuse(h, request(), sent), 'a closing server answers at once')
})

t.test('a loop stalled for longer than a turn of the wheel releases everything due, nothing early', async (t) => {
  const h = harness({ afterRefusals: 0, afterMs: 0, minDelayMs: 100, maxDelayMs: 100 })
  const sent: number[] = []
  refuse(h, request(), sent)
  h.set(h.at() + 10_000)
  // Held while the interval has not run for 10 s: due one turn after the last released tick at most.
  refuse(h, request(), sent)
  h.pacer.releaseDue()
  t.equal(sent.length, 1, 'the overdue one went out, the new one waits')
  h.advance(100 + TICK_MS)
  t.equal(sent.length, 2)
})

t.test('a refusal whose sending throws is reported, and the others still go out', async (t) => {
  const h = harness({ afterRefusals: 0, afterMs: 0 })
  const sent: number[] = []
  const warnings: Error[] = []
  const onWarning = (warning: Error): void => { warnings.push(warning) }
  process.on('warning', onWarning)
  t.teardown(() => { process.off('warning', onWarning) })
  h.pacer.hold({ request: request(), release: () => { throw new Error('boom') } }, h.pacer.refused(request()))
  refuse(h, request(), sent)
  h.pacer.flush()
  t.equal(sent.length, 1)
  await new Promise((resolve) => setImmediate(resolve))
  t.match(warnings.map((w) => w.message), ['boom'])
})

t.test('HTTP/2: the streams of one session share its run; a request without a connection is never held', async (t) => {
  const h = harness({ afterRefusals: 1, afterMs: 0 })
  const session = {}
  const stream = (): IncomingMessage => ({ httpVersionMajor: 2, stream: { session } }) as unknown as IncomingMessage
  const sent: number[] = []
  t.notOk(refuse(h, stream(), sent))
  t.ok(refuse(h, stream(), sent), 'a second stream of the same session continues the run')
  const detached = ({ httpVersionMajor: 1, socket: null }) as unknown as IncomingMessage
  t.equal(h.pacer.refused(detached), 0)
  t.equal(h.pacer.refused(detached), 0)
})

t.test('holding is suspended while it only pushes clients onto new connections, two seconds in a row', async (t) => {
  const h = harness({ afterRefusals: 0, afterMs: 0, minDelayMs: 10, maxDelayMs: 10 })
  const sent: number[] = []
  // A pool that opens a new connection for every request while its others are held: every refusal
  // comes on a connection never refused before.
  const second = (): boolean[] => {
    const held: boolean[] = []
    for (let i = 0; i < 50; i++) {
      held.push(refuse(h, request(), sent))
      h.advance(20)
    }
    return held
  }
  t.ok(second().every(Boolean), 'the first second: held (a crowd connecting looks the same)')
  t.ok(second().every(Boolean), 'the second: still held, judged at its start on the first alone')
  t.notOk(h.pacer.suspended)
  second()
  t.ok(h.pacer.suspended, 'two seconds of it: suspended')
  t.ok(second().every((held) => !held), 'nothing held while suspended')
  h.advance(SUSPEND_MS)
  t.notOk(h.pacer.suspended, 'and it ends')
})

t.test('clients that keep their connections are never suspended, however many are held', async (t) => {
  const h = harness({ afterRefusals: 0, afterMs: 0, minDelayMs: 10, maxDelayMs: 10 })
  const sent: number[] = []
  const clients = Array.from({ length: 50 }, () => request())
  for (let s = 0; s < 5; s++) {
    for (const client of clients) {
      refuse(h, client, sent)
      h.advance(20)
    }
  }
  t.notOk(h.pacer.suspended)
  t.ok(refuse(h, clients[0]!, sent))
})

t.test('while clients give up on held refusals, the longest hold shortens; it grows back when they wait', async (t) => {
  const h = harness({ afterRefusals: 0, afterMs: 0, minDelayMs: 100, maxDelayMs: 800 })
  const sent: number[] = []
  const longRun = request()
  refuse(h, longRun, sent)
  h.advance(5000)
  t.equal(h.pacer.longestHoldMs, 800)
  /** A second in which `gone` of 40 held clients close their connection before their answer and reconnect. */
  const clients = Array.from({ length: 40 }, () => new Socket())
  const second = async (gone: number): Promise<void> => {
    for (const socket of clients) refuse(h, request(socket), sent)
    for (let i = 0; i < gone; i++) {
      clients[i]!.destroy()
      clients[i] = new Socket()
    }
    await new Promise((resolve) => setImmediate(resolve))
    h.advance(1000)
    refuse(h, request(), sent) // the next refusal judges the second that ended
  }
  await second(1)
  t.equal(h.pacer.longestHoldMs, 800, 'one in 40 gone: within the allowance')
  await second(2)
  t.equal(h.pacer.longestHoldMs, 600, 'two in 40 gone: shortened by a quarter')
  for (let i = 0; i < 8; i++) await second(8)
  t.equal(h.pacer.longestHoldMs, 100, 'never below minDelayMs')
  const holds: number[] = []
  for (let i = 0; i < 20; i++) holds.push(h.pacer.refused(longRun))
  t.ok(holds.every((ms) => ms === 100), 'a long run is held no longer than the longest hold')
  await second(0)
  t.equal(h.pacer.longestHoldMs, 187.5, 'a second without anyone gone: an eighth of the range back')
  for (let i = 0; i < 10; i++) await second(0)
  t.equal(h.pacer.longestHoldMs, 800, 'and back to maxDelayMs, no further')
})
