import t from 'tap'
import { redisAnswers, REDIS_URL } from './support/redis.js'

t.test('the Redis probe tells a live server from a closed port', async (t) => {
  t.equal(await redisAnswers('redis://127.0.0.1:1'), false, 'nothing listens on port 1')
  if (process.env.REQUIRE_REDIS === '1') t.equal(await redisAnswers(REDIS_URL), true, `Redis answers at ${REDIS_URL}`)
})
