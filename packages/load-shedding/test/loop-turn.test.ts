import t from 'tap'
import { LoopTurn } from '../src/loop-turn.js'

t.test('measures from the first request of a turn; a new turn starts after the poll phase', async (t) => {
  const turn = new LoopTurn()
  t.equal(turn.elapsed(100), 0, 'opens the turn')
  t.equal(turn.elapsed(130), 30)
  t.equal(turn.elapsed(175), 75)
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(turn.elapsed(500), 0, 'a later turn starts afresh')
  t.equal(turn.elapsed(510), 10)
})
