/**
 * Guards the reaction to a latency step (a dependency going from 1 ms to 1.5 s): the first level
 * change within 2 s of it, whatever traffic filled the 10 s latency window before, and recovery
 * one level per dwell without flapping. The meter times simulated requests on an injected clock:
 * Node's own request and response objects, no socket, ended by the 'close' the meter listens for.
 */
import { IncomingMessage, ServerResponse } from 'node:http'
import { Socket } from 'node:net'
import t from 'tap'
import { ServerMeter, startTiming } from '@spillway/latency-window/core'
import { LevelController, type LevelChange } from '../../src/level-controller.js'
import { readMeter } from '../../src/meter-reading.js'
import { normalizeDegradationOptions } from '../../src/options.js'
import { manualClock } from '../helpers/clock.js'

interface Pending { endsAt: number, response: ServerResponse }

/** A server whose handlers take `latencyMs`, its meter and its controller (the default options) on one clock. */
function simulate() {
  const clock = manualClock(0)
  const meter = new ServerMeter({ now: clock.now })
  const config = normalizeDegradationOptions({ features: [{ name: 'a', offAtLevel: 1 }], now: clock.now })
  const controller = new LevelController(config.controller)
  const changes: LevelChange[] = []
  const pending: Pending[] = []
  const sim = {
    clock,
    meter,
    changes,
    latencyMs: 1,
    /** One request arrives now; `done` runs when it has been answered. */
    arrive(done?: () => void): void {
      const request = new IncomingMessage(new Socket())
      request.complete = true
      const response = new ServerResponse(request)
      startTiming(meter, request, response)
      if (done !== undefined) response.once('close', done)
      pending.push({ endsAt: clock.now() + sim.latencyMs, response })
    },
    /** Runs the clock for `ms`, 1 ms at a time: requests end, the controller evaluates every 500 ms (its default). */
    run(ms: number, everyMs?: { arrivalsPerSecond: number }): void {
      for (let step = 0; step < ms; step++) {
        clock.advance(1)
        const now = clock.now()
        for (let i = pending.length - 1; i >= 0; i--) {
          const request = pending[i] as Pending
          if (request.endsAt > now) continue
          pending[i] = pending[pending.length - 1] as Pending
          pending.pop()
          request.response.emit('close')
        }
        if (everyMs !== undefined && now % Math.round(1000 / everyMs.arrivalsPerSecond) === 0) sim.arrive()
        if (now % 500 === 0) {
          const change = controller.evaluate(readMeter(meter, config))
          if (change !== undefined) changes.push(change)
        }
      }
    },
    /** `clients` clients each sending again as soon as answered. */
    closedLoop(clients: number): void {
      const again = (): void => sim.arrive(again)
      for (let i = 0; i < clients; i++) again()
    }
  }
  return sim
}

/** The level changes after `from`, as [from, to, ms after `from`]. */
function after(changes: LevelChange[], from: number): [number, number, number][] {
  return changes.filter((c) => c.at > from).map((c) => [c.from, c.to, c.at - from])
}

t.test('open-loop traffic: up within 2 s of the step, down one level per dwell, no flapping', async (t) => {
  const sim = simulate()
  const traffic = { arrivalsPerSecond: 200 }
  sim.run(10_000, traffic)
  t.same(sim.changes, [], '10 s at 1 ms: level 0')
  const stepAt = sim.clock.now()
  sim.latencyMs = 1500
  sim.run(10_000, traffic)
  const rise = after(sim.changes, stepAt)
  t.ok(rise.length > 0 && rise[0]![2] <= 2000, `first change ${rise[0]?.[2]} ms after the step`)
  t.match(sim.changes[0], { reason: 'latencyMs', from: 0 })
  t.ok((sim.changes[0]?.reading.inFlightAgeMs ?? 0) >= 250, 'seen in the age of the requests in flight, before any slow one completed')
  t.equal(sim.changes.at(-1)?.to, 3, 'and at level 3 while it lasts')
  const recoverAt = sim.clock.now()
  sim.latencyMs = 1
  sim.run(60_000, traffic)
  const fall = after(sim.changes, recoverAt)
  t.same(fall.map(([from, to]) => [from, to]), [[3, 2], [2, 1], [1, 0]], 'down one level at a time, never back up')
  for (let i = 1; i < fall.length; i++) t.ok(fall[i]![2] - fall[i - 1]![2] >= 10_000, 'each step a dwell after the last')
})

t.test('after a closed loop of fast requests filled the window: still within 2 s', async (t) => {
  const sim = simulate()
  sim.closedLoop(25)
  sim.run(5000)
  t.ok(sim.meter.latency.count > 100_000, `${sim.meter.latency.count} fast latencies in the window`)
  const stepAt = sim.clock.now()
  sim.latencyMs = 1500
  sim.run(3000)
  const rise = after(sim.changes, stepAt)
  t.ok(rise.length > 0 && rise[0]![2] <= 2000, `first change ${rise[0]?.[2]} ms after the step`)
  t.equal(sim.meter.latency.quantile(0.95), 1, 'the window alone would still read 1 ms')
})

t.test('one request stuck among fast traffic is not a hung dependency', async (t) => {
  const sim = simulate()
  sim.latencyMs = 60_000
  sim.arrive()
  sim.latencyMs = 1
  sim.run(30_000, { arrivalsPerSecond: 200 })
  t.same(sim.changes, [], 'level 0 throughout')
  t.equal(sim.meter.requests.oldest?.startedAt, 0, 'while it was in flight all along')
})

t.test('too few requests say nothing, as with the window', async (t) => {
  const sim = simulate()
  sim.latencyMs = 60_000
  for (let i = 0; i < 5; i++) sim.arrive()
  sim.run(10_000)
  t.same(sim.changes, [], 'five requests stuck on an idle server: fewer than minSamples')
})
