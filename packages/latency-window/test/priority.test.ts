import t from 'tap'
import { PRIORITIES, PRIORITY_RANK, isPriority } from '../src/priority.js'

t.test('priorities are ranked most important first', async (t) => {
  t.same(PRIORITIES.map((p) => PRIORITY_RANK[p]), [0, 1, 2, 3])
  t.ok(Object.isFrozen(PRIORITY_RANK))
})

t.test('isPriority accepts only the four names', async (t) => {
  for (const p of PRIORITIES) t.ok(isPriority(p))
  for (const bad of ['urgent', 'HIGH', '', 'constructor', '__proto__', 1, null, undefined]) {
    t.notOk(isPriority(bad), String(bad))
  }
})
