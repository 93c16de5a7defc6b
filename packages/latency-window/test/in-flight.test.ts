import t from 'tap'
import { InFlight } from '../src/in-flight.js'

t.test('counts requests in flight and never goes negative', async (t) => {
  const inFlight = new InFlight()
  t.equal(inFlight.acquire(), 1)
  t.equal(inFlight.acquire(), 2)
  t.equal(inFlight.release(), 1)
  t.equal(inFlight.release(), 0)
  t.equal(inFlight.release(), 0, 'a double release is ignored')
  t.equal(inFlight.current, 0)
})

t.test('takePeak reports a burst that was over before the reading', async (t) => {
  const inFlight = new InFlight()
  for (let i = 0; i < 5; i++) inFlight.acquire()
  for (let i = 0; i < 4; i++) inFlight.release()
  t.equal(inFlight.current, 1)
  t.equal(inFlight.takePeak(), 5)
  t.equal(inFlight.takePeak(), 1, 'the next period starts at the current count')
})
