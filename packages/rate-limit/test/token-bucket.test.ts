import t from 'tap'
import { TokenBucket, msToEarn, emptyTakeResult } from '../src/token-bucket.js'

t.test('a new bucket is full and takes its whole capacity as a burst, then refuses', async (t) => {
  const bucket = new TokenBucket(5, 1, 0)
  for (let i = 0; i < 5; i++) t.equal(bucket.take(1, 0).allowed, true, `request ${i + 1} of the burst`)
  const refused = bucket.take(1, 0)
  t.equal(refused.allowed, false)
  t.equal(refused.remaining, 0)
  t.equal(refused.retryAfterMs, 1000, 'one token at 1/s is 1000 ms away')
  t.equal(refused.resetMs, 5000, 'five tokens to refill')
})

t.test('refill is continuous and exact: 250 ms at 4/s earns one token, not before', async (t) => {
  const bucket = new TokenBucket(2, 4, 0)
  bucket.take(2, 0)
  t.equal(bucket.take(1, 249).allowed, false, '249 ms earn 0.996 tokens')
  t.equal(bucket.take(1, 250).allowed, true, '250 ms earn exactly one')
  t.equal(bucket.take(1, 250).allowed, false)
})

t.test('fractional rates: 0.1 tokens per second admits one request per 10 s', async (t) => {
  const bucket = new TokenBucket(1, 0.1, 0)
  t.equal(bucket.take(1, 0).allowed, true)
  const refused = bucket.take(1, 5_000)
  t.equal(refused.allowed, false)
  t.equal(refused.retryAfterMs, 5_000, 'half a token missing at 0.1/s is 5 s')
  t.equal(bucket.take(1, 9_999).allowed, false)
  // 0.1 × 10 s is 0.9999999999999998 in floating point; the tolerance makes it the token it is.
  t.equal(bucket.take(1, 10_000).allowed, true)
  let admitted = 0
  for (let ms = 10_000; ms <= 110_000; ms += 100) if (bucket.take(1, ms).allowed) admitted++
  t.equal(admitted, 10, 'ten more in the next 100 s')
})

t.test('never above capacity, however long idle', async (t) => {
  const bucket = new TokenBucket(3, 100, 0)
  t.equal(bucket.refill(1e9), 3)
  const result = bucket.take(1, 1e9)
  t.equal(result.remaining, 2)
  t.equal(result.resetMs, 10, 'one token at 100/s is 10 ms')
})

t.test('cost: a request taking 3 tokens needs 3, and a refused one takes none', async (t) => {
  const bucket = new TokenBucket(5, 1, 0)
  t.equal(bucket.take(3, 0).allowed, true)
  const refused = bucket.take(3, 0)
  t.equal(refused.allowed, false)
  t.equal(refused.remaining, 2, 'nothing taken by the refusal')
  t.equal(refused.retryAfterMs, 1000)
  t.equal(bucket.take(2, 0).allowed, true)
})

t.test('a clock that goes back earns nothing and breaks nothing', async (t) => {
  const bucket = new TokenBucket(2, 1, 1000)
  bucket.take(2, 1000)
  t.equal(bucket.take(1, 500).allowed, false)
  t.equal(bucket.take(1, 2000).allowed, true)
})

t.test('isFullAt tells when forgetting a bucket loses nothing', async (t) => {
  const bucket = new TokenBucket(2, 2, 0)
  bucket.take(1, 0)
  t.equal(bucket.isFullAt(499), false)
  t.equal(bucket.isFullAt(500), true)
})

t.test('msToEarn rounds up to whole ms and is 0 when nothing is missing', async (t) => {
  t.equal(msToEarn(0, 1), 0)
  t.equal(msToEarn(-1, 1), 0)
  t.equal(msToEarn(1, 3), 334)
  t.equal(msToEarn(1, 1000), 1)
  t.same(emptyTakeResult(), { allowed: true, remaining: 0, retryAfterMs: 0, resetMs: 0 })
})
