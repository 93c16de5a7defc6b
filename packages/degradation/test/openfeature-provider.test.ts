import { randomUUID } from 'node:crypto'
import { InMemoryProvider, MultiProvider, OpenFeature, ProviderEvents, FirstMatchStrategy, ErrorCode } from '@openfeature/server-sdk'
import Fastify from 'fastify'
import t from 'tap'
import { DegradationProvider } from '../src/openfeature-provider.js'
import degradation from '../src/plugin.js'
import { manualClock } from './helpers/clock.js'

async function build(t: { teardown: (fn: () => unknown) => void }) {
  const clock = manualClock()
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(degradation, {
    features: [
      { name: 'recommendations', offAtLevel: 1 },
      { name: 'search_suggestions', offAtLevel: 2 }
    ],
    thresholds: { latencyMs: [100, 200, 400] },
    dwellMs: 1000,
    minSamples: 5,
    evaluateIntervalMs: 0,
    latencyWindow: { windowMs: 2000, slices: 2 },
    now: clock.now
  })
  app.get('/slow', async (request) => {
    clock.advance(Number((request.query as { ms: string }).ms))
    return 'ok'
  })
  const load = async (ms: number) => {
    for (let i = 0; i < 10; i++) await app.inject(`/slow?ms=${ms}`)
    app.degradation.evaluate()
  }
  return { app, clock, load }
}

t.test('an OpenFeature client sees recommendations turn off under load and back on after', async (t) => {
  const { app, clock, load } = await build(t)
  const domain = `degradation-${randomUUID()}`
  const provider = new DegradationProvider(app.degradation)
  await OpenFeature.setProviderAndWait(domain, provider)
  t.teardown(() => OpenFeature.clearProviders())
  const client = OpenFeature.getClient(domain)
  const changed: string[][] = []
  client.addHandler(ProviderEvents.ConfigurationChanged, (details) => changed.push(details?.flagsChanged ?? []))

  t.equal(await client.getBooleanValue('recommendations', false), true)
  await load(150)
  const details = await client.getBooleanDetails('recommendations', true)
  t.match(details, { value: false, variant: 'off', reason: 'DEGRADED', flagMetadata: { level: 1 } })
  t.equal(await client.getBooleanValue('search_suggestions', false), true, 'later features stay on')
  clock.advance(3000)
  await load(1)
  clock.advance(1000)
  await load(1)
  t.equal(app.degradation.level, 0)
  t.match(await client.getBooleanDetails('recommendations', false), { value: true, reason: 'STATIC' })
  await new Promise((resolve) => setImmediate(resolve))
  t.same(changed, [['recommendations'], ['recommendations']], 'ConfigurationChanged on the way down and up')

  const unknown = await client.getBooleanDetails('not-ours', true)
  t.match(unknown, { value: true, errorCode: ErrorCode.FLAG_NOT_FOUND })
  const wrongType = await client.getStringDetails('recommendations', 'x')
  t.match(wrongType, { value: 'x', errorCode: ErrorCode.TYPE_MISMATCH })
  t.match(await client.getNumberDetails('recommendations', 1), { errorCode: ErrorCode.TYPE_MISMATCH })
  t.match(await client.getObjectDetails('not-ours', {}), { errorCode: ErrorCode.FLAG_NOT_FOUND })
})

t.test('combined with a vendor provider through MultiProvider', async (t) => {
  const { app, load } = await build(t)
  const vendor = new InMemoryProvider({
    'new-checkout': { variants: { on: true, off: false }, defaultVariant: 'on', disabled: false },
    recommendations: { variants: { on: true, off: false }, defaultVariant: 'off', disabled: false }
  })
  t.teardown(() => OpenFeature.clearProviders())

  // This provider first: load decides for our features, the vendor for the rest.
  const first = `multi-${randomUUID()}`
  await OpenFeature.setProviderAndWait(first, new MultiProvider([
    { provider: new DegradationProvider(app.degradation) },
    { provider: vendor }
  ], new FirstMatchStrategy()))
  const client = OpenFeature.getClient(first)
  t.equal(await client.getBooleanValue('new-checkout', false), true, 'the vendor answers its own flags')
  t.equal(await client.getBooleanValue('recommendations', false), true, 'ours answers ours')

  // deferWhenOn: the vendor decides while load does not, load wins when the feature is off.
  const deferring = `defer-${randomUUID()}`
  await OpenFeature.setProviderAndWait(deferring, new MultiProvider([
    { provider: new DegradationProvider(app.degradation, { deferWhenOn: true }), name: 'load' },
    { provider: vendor, name: 'vendor' }
  ], new FirstMatchStrategy()))
  const deferred = OpenFeature.getClient(deferring)
  t.equal(await deferred.getBooleanValue('recommendations', true), false, 'the vendor turned it off')
  const vendorOn = new InMemoryProvider({ recommendations: { variants: { on: true, off: false }, defaultVariant: 'on', disabled: false } })
  const third = `defer-on-${randomUUID()}`
  await OpenFeature.setProviderAndWait(third, new MultiProvider([
    { provider: new DegradationProvider(app.degradation, { deferWhenOn: true }), name: 'load' },
    { provider: vendorOn, name: 'vendor' }
  ], new FirstMatchStrategy()))
  const both = OpenFeature.getClient(third)
  t.equal(await both.getBooleanValue('recommendations', false), true, 'vendor on, load fine: on')
  await load(150)
  t.equal(await both.getBooleanValue('recommendations', true), false, 'vendor on, load high: off')
})

t.test('the provider stops listening on close', async (t) => {
  const { app } = await build(t)
  const provider = new DegradationProvider(app.degradation)
  let emitted = 0
  provider.events.addHandler(ProviderEvents.ConfigurationChanged, () => emitted++)
  app.degradation.overrides.forceLevel(1)
  await provider.onClose()
  app.degradation.overrides.forceLevel(2)
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(emitted, 1)
})

t.test('an unknown provider option throws SPILLWAY_DEGRADATION_OPTIONS with a did-you-mean', async (t) => {
  const { app } = await build(t)
  t.throws(() => new DegradationProvider(app.degradation, { deferWhenOff: true } as never), {
    code: 'SPILLWAY_DEGRADATION_OPTIONS', message: /^deferWhenOff is not an option; did you mean deferWhenOn\?$/
  })
})
