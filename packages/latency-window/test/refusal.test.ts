import { createServer, get as httpGet } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { PROBLEM_CONTENT_TYPE, problemDetails, retryAfterSeconds, sendRawProblem } from '../src/refusal.js'

t.test('problem details carry the RFC 9457 members and extensions', async (t) => {
  t.same(problemDetails(429, 'Too Many Requests'), { type: 'about:blank', title: 'Too Many Requests', status: 429 })
  t.same(problemDetails(503, 'Service Unavailable', 'Overloaded', { priority: 'low' }), {
    type: 'about:blank', title: 'Service Unavailable', status: 503, detail: 'Overloaded', priority: 'low'
  })
})

t.test('Retry-After is whole seconds, rounded up, at least 1', async (t) => {
  t.equal(retryAfterSeconds(1), 1)
  t.equal(retryAfterSeconds(1000), 1)
  t.equal(retryAfterSeconds(1001), 2)
  t.equal(retryAfterSeconds(59_500), 60)
  t.equal(retryAfterSeconds(0), 1)
  t.equal(retryAfterSeconds(-5), 1)
  t.equal(retryAfterSeconds(Number.NaN), 1)
})

t.test('sendRawProblem: status, Retry-After, problem+json with its length; earlier headers kept, its own win', async (t) => {
  const server = createServer((request, response) => {
    response.setHeader('x-earlier', '1')
    response.setHeader('Content-Type', 'text/plain')
    if (request.url === '/no-retry') sendRawProblem(response, 429, undefined, '{"title":"é"}')
    else sendRawProblem(response, 503, 7, '{"title":"busy"}', '16')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const { port } = server.address() as AddressInfo
  const get = (path: string) => new Promise<{ status: number, headers: Record<string, unknown>, body: string }>((resolve, reject) => {
    httpGet({ host: '127.0.0.1', port, path }, (response) => {
      let body = ''
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => { body += chunk })
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }))
    }).on('error', reject)
  })
  const refused = await get('/')
  t.equal(refused.status, 503)
  t.equal(refused.headers['retry-after'], '7')
  t.equal(refused.headers['content-type'], PROBLEM_CONTENT_TYPE)
  t.equal(refused.headers['content-length'], '16')
  t.equal(refused.headers['x-earlier'], '1')
  t.equal(refused.body, '{"title":"busy"}')
  const limited = await get('/no-retry')
  t.equal(limited.status, 429)
  t.equal(limited.headers['retry-after'], undefined)
  t.equal(limited.headers['content-length'], String(Buffer.byteLength('{"title":"é"}')), 'byte length, not characters')
  t.equal(limited.body, '{"title":"é"}')
})
