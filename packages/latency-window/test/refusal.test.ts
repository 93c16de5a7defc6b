import t from 'tap'
import { problemDetails, retryAfterSeconds } from '../src/refusal.js'

t.test('problem details carry the RFC 9457 members and extensions', async (t) => {
  t.same(problemDetails(429, 'Too Many Requests'), { type: 'about:blank', title: 'Too Many Requests', status: 429 })
  t.same(problemDetails(503, 'Service Unavailable', 'Overloaded', { priority: 'low' }), {
    type: 'about:blank', title: 'Service Unavailable', status: 503, detail: 'Overloaded', priority: 'low'
  })
})

t.test('Retry-After is whole seconds, rounded up, at least 1', async (t) => {
  t.equal(retryAfterSeconds(1), 1)
  t.equal(retryAfterSeconds(1000), 1)
  t.equal(retryAfterSeconds(1001), 2)
  t.equal(retryAfterSeconds(59_500), 60)
  t.equal(retryAfterSeconds(0), 1)
  t.equal(retryAfterSeconds(-5), 1)
  t.equal(retryAfterSeconds(Number.NaN), 1)
})
