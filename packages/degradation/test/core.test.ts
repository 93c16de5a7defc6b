/**
 * The subpaths: `./core` (the framework-free parts) reaches no framework, and `.` is the user API
 * of the Fastify plugin only.
 */
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import * as core from '../src/core.js'
import * as api from '../src/index.js'
import { FRAMEWORK, reachable as reachableFrom } from '../../../test/support/module-graph.js'

const src = join(dirname(fileURLToPath(import.meta.url)), '..', 'src')
const reachable = (file: string, valuesOnly = false): ReturnType<typeof reachableFrom> => reachableFrom(src, file, valuesOnly)

t.test('./core, and every module it reaches, imports neither Fastify nor Express', async (t) => {
  const { files, packages } = reachable('core.ts')
  t.ok(files.includes('request-protocol.ts') && files.includes('level-options.ts'), 'the walk follows the imports')
  for (const name of packages) {
    t.notOk(FRAMEWORK.test(name), `${name} is framework-free`)
  }
  t.notOk(files.includes('plugin.ts') || files.includes('admin-route.ts'))
})

t.test('the plugin file is what imports Fastify (so the walk above can see one)', async (t) => {
  t.ok(reachable('index.ts').packages.has('fastify-plugin'))
})

t.test('only ./openfeature imports the OpenFeature SDK, an optional peer', async (t) => {
  for (const entry of ['index.ts', 'core.ts']) {
    const { files, packages } = reachable(entry)
    t.notOk(files.includes('openfeature-provider.ts'), `${entry} does not reach the provider`)
    for (const name of packages) t.notOk(name.startsWith('@openfeature/'), `${entry} reaches no import of ${name}`)
  }
  t.ok(reachable('openfeature-provider.ts').packages.has('@openfeature/server-sdk'), '(the walk can see it)')
})

t.test('. exports the user API only; ./core the parts a mount is built from', async (t) => {
  t.same(Object.keys(api).sort(), [
    'DEGRADED_HEADER', 'DIAGNOSTICS_CHANNEL', 'DegradationOptionsError', 'InvalidOverrideError', 'UnknownFeatureError',
    'default', 'degradation', 'spillwayDegradation'
  ])
  for (const name of ['Degradation', 'DegradationProtocol', 'LevelController', 'Overrides', 'RedisOverrides', 'ServerDegradation',
    'normalizeDegradationOptions', 'normalizeLevelOptions', 'meterReading', 'declareFeatures', 'DEGRADED_HEADER']) {
    t.ok(name in core, name)
  }
})
