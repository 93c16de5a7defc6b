import t from 'tap'
import { AimdLimit } from '../src/aimd-limit.js'

t.test('grows by one per sample while the limit is used, not while idle', async (t) => {
  const limit = new AimdLimit({ initialLimit: 10, minLimit: 1, maxLimit: 100 })
  t.equal(limit.onSample(0, 5, 5, false), 11, 'inflight × 2 ≥ limit: +1')
  t.equal(limit.onSample(100, 5, 6, false), 12)
  t.equal(limit.onSample(200, 5, 2, false), 12, 'app-limited (2 × 2 < 12): unchanged')
})

t.test('backs off multiplicatively on a drop or a sample slower than timeoutMs', async (t) => {
  const limit = new AimdLimit({ initialLimit: 20, minLimit: 4, backoffRatio: 0.5, timeoutMs: 100 })
  t.equal(limit.onSample(0, 5, 20, true), 10)
  t.equal(limit.onSample(100, 150, 10, false), 5, 'rtt above timeoutMs counts as a drop')
  t.equal(limit.onSample(200, 5, 5, true), 4, 'never below minLimit')
})

t.test('never above maxLimit', async (t) => {
  const limit = new AimdLimit({ initialLimit: 9, maxLimit: 10 })
  limit.onSample(0, 1, 9, false)
  t.equal(limit.onSample(0, 1, 10, false), 10)
})

t.test('bad options throw SPILLWAY_LOAD_SHEDDING_OPTIONS naming the option', async (t) => {
  t.throws(() => new AimdLimit({ backoffRatio: 1.5 }), { code: 'SPILLWAY_LOAD_SHEDDING_OPTIONS', message: /aimd\.backoffRatio.*1\.5/ })
  t.throws(() => new AimdLimit({ minLimit: 10, maxLimit: 5 }), { message: /aimd\.maxLimit/ })
  t.throws(() => new AimdLimit({ initialLimit: 0 }), { message: /aimd\.initialLimit/ })
  t.throws(() => new AimdLimit({ timeout: 500 } as never), { code: 'SPILLWAY_LOAD_SHEDDING_OPTIONS', message: /aimd\.timeout is not an option; did you mean timeoutMs\?$/ })
})
