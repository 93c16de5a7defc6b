import t from 'tap'
import { cohortEpoch, cohortOf } from '../src/cohort.js'

t.test('stable: the same key and epoch give the same cohort', async (t) => {
  for (const key of ['alice', 'bob', 'tenant-42', '']) t.equal(cohortOf(key, 7, 128), cohortOf(key, 7, 128))
})

t.test('spreads keys evenly across cohorts', async (t) => {
  const counts = new Array<number>(16).fill(0)
  for (let i = 0; i < 16_000; i++) counts[cohortOf(`user-${i}`, 1, 16)]!++
  for (const count of counts) t.ok(count > 800 && count < 1200, `cohort size ${count} near 1000`)
})

t.test('rotation re-draws cohorts: a new epoch moves most keys', async (t) => {
  let moved = 0
  for (let i = 0; i < 1000; i++) if (cohortOf(`user-${i}`, 1, 128) !== cohortOf(`user-${i}`, 2, 128)) moved++
  t.ok(moved > 950, `${moved} of 1000 moved`)
})

t.test('epoch from the wall clock', async (t) => {
  t.equal(cohortEpoch(7_199_999, 3_600_000), 1)
  t.equal(cohortEpoch(7_200_000, 3_600_000), 2)
})
