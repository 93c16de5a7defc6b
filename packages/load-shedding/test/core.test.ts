/**
 * The subpaths: `./core` (the framework-free parts the Express mount is built from) reaches no
 * framework, and `.` is the user API of the Fastify plugin only.
 */
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import * as core from '../src/core.js'
import * as api from '../src/index.js'
import { FRAMEWORK, reachable } from '../../../test/support/module-graph.js'

const src = join(dirname(fileURLToPath(import.meta.url)), '..', 'src')

t.test('./core, and every module it reaches, imports neither Fastify nor Express', async (t) => {
  const { files, packages } = reachable(src, 'core.ts')
  t.ok(files.includes('request-protocol.ts') && files.includes('overload-signals.ts'), 'the walk follows the imports')
  for (const name of packages) t.notOk(FRAMEWORK.test(name), `${name} is framework-free`)
  t.notOk(files.includes('plugin.ts') || files.includes('fastify-front-door.ts'))
})

t.test('the plugin file is what imports Fastify (so the walk above can see one)', async (t) => {
  t.ok(reachable(src, 'index.ts').packages.has('fastify-plugin'))
})

t.test('. exports the user API only; ./core the parts a mount is built from', async (t) => {
  t.same(Object.keys(api).sort(), [
    'AimdLimit', 'Gradient2Limit', 'LoadSheddingOptionsError', 'SHED_CHANNEL', 'UPDATE_CHANNEL', 'default', 'loadShedding', 'spillwayLoadShedding'
  ])
  for (const name of ['SheddingProtocol', 'ShedController', 'PriorityLimiter', 'OverloadSignals', 'AdmissionLevel', 'RunQueue',
    'normalizeOptions', 'createPriorityResolver', 'ADMIT', 'QUEUED', 'REFUSALS', 'publishShed', 'urlPath']) {
    t.ok(name in core, name)
  }
})
