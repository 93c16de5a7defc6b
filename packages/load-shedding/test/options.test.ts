import Fastify from 'fastify'
import t from 'tap'
import { loadShedding, type LoadSheddingOptions } from '../src/index.js'
import { normalizeOptions as normalizeLoadSheddingOptions } from '../src/core.js'

const BAD: Array<[string, unknown, RegExp]> = [
  ['mode', { mode: 'dry-run' }, /mode must be one of "enforce", "shadow", got "dry-run"/],
  ['algorithm', { algorithm: 'vegas' }, /algorithm must be one of/],
  ['custom algorithm', { algorithm: { limit: 10 } }, /algorithm\.onSample must be a function/],
  ['shares key', { shares: { urgent: 1 } }, /shares must be keyed by/],
  ['shares value', { shares: { low: -1 } }, /shares\.low.*-1/],
  ['intervalMs', { intervalMs: 0 }, /intervalMs.*got 0/],
  ['targetDelayMs', { targetDelayMs: Number.NaN }, /targetDelayMs.*NaN/],
  ['minUtilization', { minUtilization: 2 }, /minUtilization.*2/],
  ['maxQueueMs key', { maxQueueMs: { critical: 5 } }, /maxQueueMs must be keyed by high, normal, low/],
  ['maxQueueMs value', { maxQueueMs: { low: -5 } }, /maxQueueMs\.low/],
  ['cohorts', { cohorts: 1.5 }, /cohorts must be an integer/],
  ['cohortKey', { cohortKey: 'user' }, /cohortKey must be a function, got "user"/],
  ['cohortRotateMs', { cohortRotateMs: 10 }, /cohortRotateMs/],
  ['defaultPriority', { defaultPriority: 'urgent' }, /defaultPriority must be one of/],
  ['priority', { priority: 'high' }, /priority must be a function/],
  ['priorityHeader', { priorityHeader: 'bad header' }, /priorityHeader must be an HTTP header name, got "bad header"/],
  ['deadlineHeader', { deadlineHeader: 42 }, /deadlineHeader must be an HTTP header name, got 42/],
  ['bypass', { bypass: '/health' }, /bypass must be an array of route URLs, got "\/health"/],
  ['statusCode', { statusCode: 500 }, /statusCode must be 503 or 429, got 500/],
  ['retryAfterMs', { retryAfterMs: { min: 5000, max: 1000 } }, /retryAfterMs\.max/],
  ['signals', { signals: { heap: 0.5 } }, /signals\.heap must be a function/],
  ['statusRoute', { statusRoute: 'status' }, /statusRoute must be a path/],
  ['eventLoop', { eventLoop: 'yes' }, /eventLoop must be true or false/],
  ['queue', { queue: 5 }, /queue must be an object or false, got 5/],
  ['queue true', { queue: true }, /queue must be an object or false, got true/],
  ['queue null', { queue: null }, /queue must be an object or false, got null/],
  ['queue array', { queue: [] }, /queue must be an object or false/],
  ['queue.turnBudgetMs', { queue: { turnBudgetMs: -1 } }, /queue\.turnBudgetMs must be a finite number in \[0, 1000\], got -1/],
  ['queue.turnBudgetMs NaN', { queue: { turnBudgetMs: Number.NaN } }, /queue\.turnBudgetMs.*NaN/],
  ['queue.maxLength', { queue: { maxLength: 1.5 } }, /queue\.maxLength must be an integer in \[1, 1000000\], got 1\.5/],
  ['queue.maxLength zero', { queue: { maxLength: 0 } }, /queue\.maxLength.*got 0/],
  ['queue.headroom', { queue: { headroom: 11 } }, /queue\.headroom must be a finite number in \[0, 10\], got 11/],
  ['options', 'fast', /options must be an object/]
]

for (const [name, options, message] of BAD) {
  t.test(`bad option: ${name}`, async (t) => {
    const app = Fastify()
    t.teardown(() => app.close())
    await t.rejects(async () => { await app.register(loadShedding, options as LoadSheddingOptions).ready() }, {
      code: 'SPILLWAY_LOAD_SHEDDING_OPTIONS',
      message
    })
  })
}

t.test('every default is valid', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(loadShedding)
  await app.ready()
  t.equal(app.loadShedding.mode, 'enforce')
  t.equal(app.loadShedding.state.threshold.cohorts, 128)
  t.equal(app.loadShedding.state.limit, 20)
})

t.test('queue: on by default with its defaults; false turns it off; partial objects keep the other defaults', async (t) => {
  t.same(normalizeLoadSheddingOptions({}).queue, { turnBudgetMs: 5, maxLength: 10_000, headroom: 0.5 })
  t.same(normalizeLoadSheddingOptions({ queue: {} }).queue, { turnBudgetMs: 5, maxLength: 10_000, headroom: 0.5 })
  t.equal(normalizeLoadSheddingOptions({ queue: false }).queue, undefined)
  t.same(normalizeLoadSheddingOptions({ queue: { turnBudgetMs: 2 } }).queue, { turnBudgetMs: 2, maxLength: 10_000, headroom: 0.5 })
  t.same(normalizeLoadSheddingOptions({ queue: { turnBudgetMs: 0, maxLength: 1, headroom: 0 } }).queue,
    { turnBudgetMs: 0, maxLength: 1, headroom: 0 }, 'the bounds are valid')
  t.same(normalizeLoadSheddingOptions({ queue: { turnBudgetMs: 1000, maxLength: 1_000_000, headroom: 10 } }).queue,
    { turnBudgetMs: 1000, maxLength: 1_000_000, headroom: 10 })
  t.throws(() => normalizeLoadSheddingOptions({ queue: 'on' }), { code: 'SPILLWAY_LOAD_SHEDDING_OPTIONS', message: /queue must be an object or false, got "on"/ })
})
