import t from 'tap'
import { AimdLimit } from '../src/aimd-limit.js'
import { ConcurrencyLimiter } from '../src/concurrency-limiter.js'
import type { LimitAlgorithm } from '../src/limit-algorithm.js'

const SHARES = [2, 1.25, 1, 0.8]

t.test('each rank fills only its share of the limit: low meets its ceiling first', async (t) => {
  const limiter = new ConcurrencyLimiter(new AimdLimit({ initialLimit: 10 }), SHARES)
  t.same([0, 1, 2, 3].map((rank) => limiter.ceiling(rank)), [20, 12, 10, 8])
  for (let i = 0; i < 8; i++) t.ok(limiter.tryAcquire(3))
  t.notOk(limiter.tryAcquire(3), 'low full at 8')
  t.ok(limiter.tryAcquire(2))
  t.ok(limiter.tryAcquire(2))
  t.notOk(limiter.tryAcquire(2), 'normal full at 10')
  t.ok(limiter.tryAcquire(1), 'high still has room')
  t.equal(limiter.inFlight, 11)
})

t.test('feeds the interval mean RTT, peak in-flight and drops to the algorithm once per update', async (t) => {
  const samples: unknown[] = []
  const algorithm: LimitAlgorithm = {
    limit: 10,
    onSample(startTime, rtt, inflight, didDrop) { samples.push([startTime, rtt, inflight, didDrop]); return 5 }
  }
  const limiter = new ConcurrencyLimiter(algorithm, SHARES)
  limiter.tryAcquire(2)
  limiter.tryAcquire(2)
  limiter.tryAcquire(2)
  limiter.release(10, false)
  limiter.release(30, true)
  t.equal(limiter.update(1000), 3, 'returns the peak')
  t.same(samples, [[1000, 20, 3, true]])
  t.equal(limiter.limit, 5)
  t.equal(limiter.ceiling(3), 4)
  t.equal(limiter.update(1100), 1, 'peak restarts at the current in-flight')
  t.equal(samples.length, 1, 'nothing finished: no sample')
})

t.test('release never goes below zero; acquire ignores the limit', async (t) => {
  const limiter = new ConcurrencyLimiter(new AimdLimit({ initialLimit: 4, minLimit: 1 }), SHARES)
  limiter.release(1, false)
  t.equal(limiter.inFlight, 0)
  for (let i = 0; i < 10; i++) limiter.acquire()
  t.equal(limiter.inFlight, 10)
})

t.test('a full limit reclaims the slots of requests that hold nothing any more, once per admission', async (t) => {
  // Two of the admitted requests are streams the reclaim lets go of, when it is called.
  let streams = 0
  let sweeps = 0
  const limiter: ConcurrencyLimiter = new ConcurrencyLimiter(new AimdLimit({ initialLimit: 4 }), SHARES, () => {
    sweeps++
    for (; streams > 0; streams--) limiter.release(-1, false)
  })
  for (let i = 0; i < 4; i++) t.ok(limiter.tryAcquire(2))
  streams = 2
  t.ok(limiter.tryAcquire(2), 'full: reclaimed two slots, took one')
  t.equal(sweeps, 1)
  t.ok(limiter.tryAcquire(2))
  t.notOk(limiter.tryAcquire(2), 'full of work: refused after one more sweep')
  t.equal(sweeps, 2)
  t.notOk(limiter.tryAcquire(2))
  t.notOk(limiter.tryAcquire(2))
  t.equal(sweeps, 2, 'nothing admitted since: not swept again for every refusal')
  limiter.release(5, false)
  t.ok(limiter.tryAcquire(2), 'a slot freed by an ordinary end')
  t.equal(sweeps, 2, 'needs no sweep')
  streams = 1
  t.ok(limiter.tryAcquire(2), 'admitted since the last sweep: full again, swept again')
  t.equal(sweeps, 3)
})

t.test('a slot let go early feeds no RTT sample', async (t) => {
  const samples: number[] = []
  const algorithm: LimitAlgorithm = { limit: 10, onSample(_startTime, rtt) { samples.push(rtt); return 10 } }
  const limiter = new ConcurrencyLimiter(algorithm, SHARES)
  limiter.tryAcquire(2)
  limiter.tryAcquire(2)
  limiter.release(-1, false)
  limiter.update(0)
  t.same(samples, [], 'no sample, no news')
  limiter.release(8, false)
  limiter.update(0)
  t.same(samples, [8])
})
