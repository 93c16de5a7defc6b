import { IncomingMessage } from 'node:http'
import { Socket } from 'node:net'
import t from 'tap'
import { RequestSlot } from '../src/request-slot.js'

const plain = (): IncomingMessage => new IncomingMessage(new Socket())
/** A request as Express hands it on: the same object with a prototype of its own. */
const reprototyped = (): IncomingMessage => Object.setPrototypeOf(plain(), Object.create(IncomingMessage.prototype) as object) as IncomingMessage

t.test('on a plain request the value is an own property; on a re-prototyped one it is kept beside it', async (t) => {
  const slot = new RequestSlot<number>('test.slot')
  const a = plain()
  const b = reprototyped()
  const symbolsOf = (request: IncomingMessage): number => Object.getOwnPropertySymbols(request).length
  const [aBefore, bBefore] = [symbolsOf(a), symbolsOf(b)]
  slot.set(a, 1)
  slot.set(b, 2)
  t.equal(slot.get(a), 1)
  t.equal(slot.get(b), 2)
  t.equal(symbolsOf(a), aBefore + 1, 'a property on the plain request')
  t.equal(symbolsOf(b), bBefore, 'nothing added to the re-prototyped one')
  slot.clear(a)
  slot.clear(b)
  t.equal(slot.get(a), undefined)
  t.equal(slot.get(b), undefined)
})

t.test('a value set before the request was re-prototyped (a front door) is still found after', async (t) => {
  const slot = new RequestSlot<string>('test.front')
  const request = plain()
  slot.set(request, 'front')
  Object.setPrototypeOf(request, Object.create(IncomingMessage.prototype) as object)
  t.equal(slot.get(request), 'front')
})

t.test('shared slots of one name are one slot (every copy of a package); private ones are not', async (t) => {
  const request = reprototyped()
  const other = plain()
  new RequestSlot<number>('test.shared', true).set(request, 7)
  new RequestSlot<number>('test.shared', true).set(other, 8)
  t.equal(new RequestSlot<number>('test.shared', true).get(request), 7)
  t.equal(new RequestSlot<number>('test.shared', true).get(other), 8)
  const mine = new RequestSlot<number>('test.private')
  mine.set(other, 9)
  t.equal(new RequestSlot<number>('test.private').get(other), undefined)
})
