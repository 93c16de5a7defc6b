import t from 'tap'
import { runRouteFallback } from '../src/route-fallback.js'

function recorder() {
  const seen: Array<['send' | 'fail', unknown]> = []
  return { seen, send: (value: unknown) => { seen.push(['send', value]) }, fail: (error: unknown) => { seen.push(['fail', error]) } }
}

t.test('a sync value is sent at once', async (t) => {
  const r = recorder()
  runRouteFallback(() => ({ resized: false }), r.send, r.fail)
  t.same(r.seen, [['send', { resized: false }]])
})

t.test('an async value is sent when it resolves', async (t) => {
  const r = recorder()
  runRouteFallback(async () => 'later', r.send, r.fail)
  t.same(r.seen, [], 'nothing yet')
  await new Promise((resolve) => setImmediate(resolve))
  t.same(r.seen, [['send', 'later']])
})

t.test('a throw and a rejection both go to fail, never out', async (t) => {
  const boom = new Error('boom')
  const sync = recorder()
  runRouteFallback(() => { throw boom }, sync.send, sync.fail)
  t.same(sync.seen, [['fail', boom]])
  const async = recorder()
  runRouteFallback(async () => { throw boom }, async.send, async.fail)
  await new Promise((resolve) => setImmediate(resolve))
  t.same(async.seen, [['fail', boom]])
})
