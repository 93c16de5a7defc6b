/**
 * Cost of our own code on the hot path: the admission decision (threshold, loop-turn guard,
 * limiter) plus its release, and the cohort hash of a user key. Run:
 *   pnpm --filter @spillway/load-shedding bench
 */
import { performance } from 'node:perf_hooks'
import { cohortOf } from '../src/cohort.js'
import { Gradient2Limit } from '../src/gradient2-limit.js'
import { PriorityLimiter } from '../src/priority-limiter.js'
import { shedderOptions } from '../test/support/shedder-options.js'

const limiter = new PriorityLimiter(shedderOptions({ limit: new Gradient2Limit({ initialLimit: 1000 }), cohorts: 128 }))

function measure(name: string, iterations: number, body: (i: number) => number): void {
  let sink = 0
  for (let i = 0; i < iterations / 10; i++) sink += body(i) // warm-up
  const start = performance.now()
  for (let i = 0; i < iterations; i++) sink += body(i)
  const ns = ((performance.now() - start) * 1e6) / iterations
  console.log(`${name.padEnd(44)} ${ns.toFixed(1).padStart(7)} ns/op  (${sink > 0 ? 'ok' : ''})`)
}

const keys = Array.from({ length: 1024 }, (_, i) => `user-${i * 7919}`)
measure('decide + release (admitted)', 5_000_000, (i) => {
  const decision = limiter.decide(2, i & 127, 0)
  limiter.release(3, false)
  return decision.index + 2
})
measure('cohortOf(user key of ~10 chars)', 5_000_000, (i) => cohortOf(keys[i & 1023]!, 1, 128) + 1)
measure('decide (refused: read 1 s into a loop turn)', 5_000_000, (i) => limiter.decide(3, i & 127, 1_000).index + 2)
