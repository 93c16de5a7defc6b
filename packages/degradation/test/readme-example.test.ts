/** The README's example, as written, with stand-ins for the application's own functions. */
import Fastify from 'fastify'
import t from 'tap'
import degradation from '../src/index.js'

const popular = () => ['shoes']
const recommend = async (_req: unknown) => ['for you']
const makeThumbnail = async () => ({ thumbnail: 'ok' })

t.test('the README example runs as written', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(degradation, { features: [
    { name: 'recommendations', offAtLevel: 1, fallback: [] },        // first to go
    { name: 'search_suggestions', offAtLevel: 2, fallback: () => popular() },
    { name: 'image_processing', offAtLevel: 3 }                      // last to go
  ] })
  app.get('/product', async (req) => ({ recs: await req.degrade('recommendations', () => recommend(req)) }))
  app.post('/thumbnail', { config: { feature: 'image_processing' } }, makeThumbnail)  // 503 while off

  t.same((await app.inject('/product')).json(), { recs: ['for you'] })
  app.degradation.overrides.forceLevel(3)
  const product = await app.inject('/product')
  t.same(product.json(), { recs: [] })
  t.equal(product.headers['spillway-degraded'], 'recommendations')
  const thumbnail = await app.inject({ method: 'POST', url: '/thumbnail' })
  t.equal(thumbnail.statusCode, 503)
  // Jittered ±50% around the default dwellMs (10 s), in whole seconds (it was a fixed 1: retries synchronised).
  const retryAfter = Number(thumbnail.headers['retry-after'])
  t.ok(Number.isInteger(retryAfter) && retryAfter >= 5 && retryAfter <= 15, `Retry-After ${retryAfter} within 5–15 s`)
})
