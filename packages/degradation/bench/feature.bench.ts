/**
 * Cost of `request.feature()` per call, inside a real Fastify handler (the decorator on a real
 * request), healthy (feature on) and degraded (feature off, after the first call recorded it for
 * the header), against a baseline loop that reads a Map and a typed array itself, in the same run.
 *
 *   pnpm --filter @spillway/degradation bench:feature
 */
import Fastify from 'fastify'
import degradation from '../src/index.js'

const CALLS = Number(process.env.CALLS ?? 5_000_000)
const ROUNDS = Number(process.env.ROUNDS ?? 5)
const app = Fastify()
await app.register(degradation, {
  features: [
    { name: 'recommendations', offAtLevel: 1, fallback: [] },
    { name: 'search_suggestions', offAtLevel: 2 },
    { name: 'image_processing', offAtLevel: 3 }
  ],
  evaluateIntervalMs: 0
})

const names = ['recommendations', 'search_suggestions', 'image_processing']
const baselineIndex = new Map(names.map((name, i) => [name, i]))
const baselineEnabled = new Uint8Array(names.length).fill(1)
let sink = 0

app.get('/feature', async (request) => {
  const started = performance.now()
  for (let i = 0; i < CALLS; i++) if (request.feature('search_suggestions')) sink++
  return { ns: ((performance.now() - started) * 1e6) / CALLS }
})
app.get('/baseline', async () => {
  const started = performance.now()
  for (let i = 0; i < CALLS; i++) if (baselineEnabled[baselineIndex.get('search_suggestions') as number] === 1) sink++
  return { ns: ((performance.now() - started) * 1e6) / CALLS }
})

const run = async (path: string) => (await app.inject(path)).json<{ ns: number }>().ns
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number
const samples: Record<string, number[]> = { baseline: [], on: [], off: [] }
for (let round = 0; round < ROUNDS; round++) {
  app.degradation.overrides.clear()
  samples.baseline?.push(await run('/baseline'))
  samples.on?.push(await run('/feature'))
  app.degradation.overrides.forceLevel(3)
  samples.off?.push(await run('/feature'))
}
console.log(`Node ${process.version}, ${CALLS} calls per round, median of ${ROUNDS} rounds`)
console.log(`Map.get + typed-array read (baseline)   ${median(samples.baseline as number[]).toFixed(1)} ns/call`)
console.log(`request.feature(), feature on           ${median(samples.on as number[]).toFixed(1)} ns/call`)
console.log(`request.feature(), feature off          ${median(samples.off as number[]).toFixed(1)} ns/call`)
if (sink < 0) console.log(sink)
await app.close()
