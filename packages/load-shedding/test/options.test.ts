import Fastify from 'fastify'
import t, { type Test } from 'tap'
import { loadShedding, type LoadSheddingOptions } from '../src/index.js'
import { normalizeOptions as normalizeLoadSheddingOptions } from '../src/core.js'

const BAD: Array<[string, unknown, RegExp]> = [
  ['mode', { mode: 'dry-run' }, /mode must be one of "enforce", "shadow", got "dry-run"/],
  ['algorithm', { algorithm: 'vegas' }, /algorithm must be one of/],
  ['custom algorithm', { algorithm: { limit: 10 } }, /algorithm\.onSample must be a function/],
  ['shares key', { shares: { urgent: 1 } }, /shares\.urgent is not an option; shares takes critical, high, normal, low$/],
  ['shares value', { shares: { low: -1 } }, /shares\.low.*-1/],
  ['intervalMs', { intervalMs: 0 }, /intervalMs.*got 0/],
  ['targetDelayMs', { targetDelayMs: Number.NaN }, /targetDelayMs.*NaN/],
  ['minUtilization', { minUtilization: 2 }, /minUtilization.*2/],
  ['maxQueueMs key', { maxQueueMs: { critical: 5 } }, /maxQueueMs\.critical is not an option; maxQueueMs takes high, normal, low$/],
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

/** Registers the plugin with `options` and answers what `ready()` rejected with. */
async function registrationError(t: Test, options: unknown): Promise<unknown> {
  const app = Fastify()
  t.teardown(() => app.close())
  return app.register(loadShedding, options as LoadSheddingOptions).ready().then(() => undefined, (e: unknown) => e)
}

const code = 'SPILLWAY_LOAD_SHEDDING_OPTIONS'

t.test('an unknown option fails at registration', async (t) => {
  t.match(await registrationError(t, { burst: 5 }), { code, message: /option: burst is not an option; the options are mode, algorithm, gradient2, aimd, / })
})

t.test('a misspelt option fails with a did-you-mean', async (t) => {
  t.match(await registrationError(t, { bypas: ['/health'] }), { code, message: /option: bypas is not an option; did you mean bypass\?$/ })
  t.match(await registrationError(t, { targetDelay: 10 }), { code, message: /option: targetDelay is not an option; did you mean targetDelayMs\?$/ })
})

t.test('names from @fastify/under-pressure name ours, or say there is none', async (t) => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ maxEventLoopDelay: 100 }, /maxEventLoopDelay is an option of @fastify\/under-pressure, not ours; targetDelayMs \(default 25\)/],
    [{ maxEventLoopUtilization: 0.98 }, /maxEventLoopUtilization is an option of @fastify\/under-pressure, not ours; maxUtilization \(default 0\.95\)/],
    [{ maxHeapUsedBytes: 1e9 }, /maxHeapUsedBytes is an option of @fastify\/under-pressure, not ours; there is no memory limit .*signals: \{ heap: /],
    [{ maxRssBytes: 1e9 }, /maxRssBytes is an option of @fastify\/under-pressure, not ours; there is no memory limit .*signals: \{ rss: /],
    [{ pressureHandler: () => {} }, /pressureHandler is an option of @fastify\/under-pressure, not ours; there is no equivalent/],
    [{ exposeStatusRoute: true }, /exposeStatusRoute is an option of @fastify\/under-pressure, not ours; statusRoute: '\/path'/]
  ]
  for (const [options, message] of cases) {
    t.match(await registrationError(t, options), { code, message }, String(Object.keys(options)))
  }
})

t.test('an unknown key in a nested option fails at registration, named by its path', async (t) => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ queue: { turnBudget: 5 } }, /queue\.turnBudget is not an option; did you mean turnBudgetMs\?$/],
    [{ front: { cohortkey: () => 'k' } }, /front\.cohortkey is not an option; did you mean cohortKey\?$/],
    [{ retryAfterMs: { minimum: 500 } }, /retryAfterMs\.minimum is not an option; retryAfterMs takes min, max$/],
    [{ pacing: { maxDelay: 500 } }, /pacing\.maxDelay is not an option; did you mean maxDelayMs\?$/],
    [{ algorithm: 'aimd', aimd: { timeout: 500 } }, /aimd\.timeout is not an option; did you mean timeoutMs\?$/],
    [{ gradient2: { smooting: 0.5 } }, /gradient2\.smooting is not an option; did you mean smoothing\?$/],
    [{ shares: { hihg: 2 } }, /shares\.hihg is not an option; did you mean high\?$/],
    [{ maxQueueMs: { nomral: 40 } }, /maxQueueMs\.nomral is not an option; did you mean normal\?$/]
  ]
  for (const [options, message] of cases) {
    t.match(await registrationError(t, options), { code, message }, String(Object.keys(options)))
  }
})

t.test('every option known: a full configuration registers', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(loadShedding, {
    mode: 'shadow', algorithm: 'gradient2', gradient2: { initialLimit: 10, minLimit: 2, maxLimit: 100, rttTolerance: 2, smoothing: 0.5, longWindow: 100, queueSize: () => 4 },
    aimd: { initialLimit: 10, minLimit: 2, maxLimit: 100, backoffRatio: 0.5, timeoutMs: 500 }, shares: { critical: 2, high: 1.5, normal: 1, low: 0.5 },
    intervalMs: 50, targetDelayMs: 20, minUtilization: 0.5, maxUtilization: 0.9, eventLoop: false, maxQueueMs: { high: 60, normal: 40, low: 20 },
    queue: { turnBudgetMs: 4, maxLength: 100, headroom: 0.4 }, front: { cohortKey: () => undefined }, tightenRatio: 0.2, maxTightenRatio: 0.6,
    relaxRatio: 0.1, cohorts: 16, cohortKey: () => undefined, cohortRotateMs: 60_000, defaultPriority: 'low', priority: () => undefined,
    priorityHeader: 'x-priority', bypass: ['/health'], statusCode: 429, retryAfterMs: { min: 500, max: 5000 },
    pacing: { afterRefusals: 2, afterMs: 0, minDelayMs: 100, maxDelayMs: 200, maxHeld: 10 }, deadlineHeader: 'x-deadline',
    signals: { anyName: () => 0 }, statusRoute: '/shedding'
  })
  app.get('/', async () => 'ok')
  await app.ready()
  t.equal((await app.inject('/')).statusCode, 200)
})
