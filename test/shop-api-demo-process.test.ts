/**
 * The demo's machinery end to end, at a gentle rate: the shop API as a real child process on
 * 127.0.0.1, the overload benchmark's open-loop generator driving it through the demo's client
 * (POST bodies, API keys), the slow-database switch over IPC, and the process gone after stop().
 */
import { connect } from 'node:net'
import t from 'tap'
import { runOpenLoop } from '../examples/shop-api/src/demo/open-loop.js'
import { liveLine } from '../examples/shop-api/src/demo/live-view.js'
import { TEMPLATES } from '../examples/shop-api/src/demo/scenario.js'
import { ShopClient } from '../examples/shop-api/src/demo/shop-client.js'
import { startTarget } from '../examples/shop-api/src/demo/target-process.js'
import { Timeline } from '../examples/shop-api/src/demo/timeline.js'

const refused = (port: number): Promise<boolean> => new Promise((resolve) => {
  const socket = connect({ host: '127.0.0.1', port })
  socket.once('connect', () => { socket.destroy(); resolve(false) })
  socket.once('error', () => resolve(true))
})

t.test('a protected shop process under gentle open-loop load: every route answers, the bot is limited', async (t) => {
  const server = await startTarget(true, { CPU_ITERATIONS_PER_MS: '1000', REDIS_PREFIX: `shop-api-process-test:${process.pid}:` })
  t.teardown(() => server.stop())
  const timeline = new Timeline(performance.now())
  const client = new ShopClient(server.port, TEMPLATES, (name, status, sentAtMs, latencyMs) => {
    timeline.record(TEMPLATES[name]!.class, status, sentAtMs, latencyMs)
  })
  t.teardown(() => client.close())
  const [phase] = await runOpenLoop({
    port: server.port,
    phases: [{ name: 'gentle', ratePerSecond: 60, durationMs: 1500 }],
    mix: ['checkout', 'product', 'search', 'analytics', 'health'].map((name) => ({ name, path: name, weight: 1 }))
      .concat([{ name: 'checkout-bot', path: 'checkout-bot', weight: 3 }]),
    client: client.asRawClient(),
    timeoutMs: 2000
  })
  for (const name of ['checkout', 'product', 'search', 'analytics', 'health']) {
    const result = phase!.byKind[name]!
    t.ok(result.offered > 0, `${name} was sent`)
    t.equal(result.ok, result.offered, `${name}: every request answered 2xx (${result.ok}/${result.offered})`)
  }
  const bot = phase!.byKind['checkout-bot']!
  t.ok(bot.offered > 12, `the bot sent ${bot.offered} checkouts with one API key`)
  t.ok(bot.ok >= 5 && bot.ok <= 8, `its bucket (5, +1/s) let ${bot.ok} through`)
  t.equal(bot.shed, bot.offered - bot.ok, 'the rest were refused')
  const limited = timeline.buckets.reduce((sum, b) => sum + b.bot.limited, 0)
  t.equal(limited, bot.shed, 'with 429, as the demo\'s own client recorded')

  server.send({ type: 'slowdown', factor: 3 })
  await new Promise((resolve) => setTimeout(resolve, 200))
  const metrics = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text()
  t.match(metrics, /^shop_db_slowdown_ratio 3$/m, 'the slow-database switch reaches the process')

  const line = liveLine({ target: 'protected', elapsedSeconds: 1, totalSeconds: 2, phaseLabel: 'gentle', bucket: timeline.bucket(0), server: undefined })
  t.match(line, /^protected +\[#{10}\.{10}\] +1\/2 s +gentle +ok\/s high +\d+ normal +\d+ low +\d+ +p99 high +\d+ ms +shed +0% +timeouts +0 +429\/s +\d+ +level –$/)

  await server.stop()
  t.ok(await refused(server.port), 'the process is gone after stop()')
})
