import Fastify from 'fastify'
import t from 'tap'
import { loadShedding } from '../../src/index.js'

// In shadow mode a request past its deadline was counted as a deadline shed and then decided again
// (and counted again, as admitted or as another shed). Enforce mode would have refused it at the
// deadline, so shadow mode counts it there once and lets it through.
t.test('shadow mode: a request past its deadline is counted once, as a deadline shed, and goes on', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(loadShedding, { mode: 'shadow', deadlineHeader: 'x-deadline', eventLoop: false })
  app.get('/', async () => 'ok')
  await app.ready()
  // Put the threshold below `normal`, so that a second decision would count a threshold shed too.
  const { admission } = app.loadShedding.limiter
  for (let i = 0; i < 10; i++) {
    admission.arrivals.fill(100)
    admission.update(100, true, 100)
  }
  t.equal(admission.admitted, admission.levels / 4, 'only critical is admitted')
  const response = await app.inject({ url: '/', headers: { 'x-deadline': String(Date.now() - 1000) } })
  t.equal(response.statusCode, 200, 'shadow mode refuses nothing')
  const { shed, admitted, inFlight } = app.loadShedding.state
  t.equal(shed.normal.deadline, 1)
  t.equal(shed.normal.threshold, 0, 'not decided a second time')
  t.equal(admitted.normal, 0, 'not counted as admitted either')
  t.equal(inFlight, 0, 'its in-flight slot was released')
})
