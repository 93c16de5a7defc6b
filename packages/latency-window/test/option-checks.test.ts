import t from 'tap'
import {
  checkBoolean, checkFunction, checkNumber, checkOneOf, checkOptionsObject, describeValue, SpillwayOptionsError
} from '../src/option-checks.js'

t.test('each check passes good values through', async (t) => {
  t.equal(checkNumber('n', 0, { min: 0 }), 0, '0 is a value, not a missing one')
  t.equal(checkNumber('n', 5, { min: 1, max: 5, integer: true }), 5)
  const f = () => 1
  t.equal(checkFunction('f', f), f)
  t.equal(checkOneOf('mode', 'shadow', ['enforce', 'shadow']), 'shadow')
  t.equal(checkBoolean('b', false), false)
  t.same(checkOptionsObject('o', undefined), {})
})

t.test('each check names the option and the value', async (t) => {
  const code = 'SPILLWAY_LATENCY_WINDOW_OPTIONS'
  t.throws(() => checkNumber('capacity', -1, { min: 0 }), { code, message: 'capacity must be a finite number >= 0, got -1' })
  t.throws(() => checkNumber('slices', 1.5, { min: 1, max: 10, integer: true }), { message: 'slices must be an integer in [1, 10], got 1.5' })
  t.throws(() => checkFunction('key', 'ip'), { message: 'key must be a function, got "ip"' })
  t.throws(() => checkOneOf('mode', 'loud', ['enforce', 'shadow']), { message: 'mode must be one of "enforce", "shadow", got "loud"' })
  t.throws(() => checkBoolean('global', 'yes'), { message: 'global must be true or false, got "yes"' })
  t.throws(() => checkOptionsObject('options', [1]), { message: 'options must be an object, got an array of 1' })
  t.throws(() => checkNumber('n', 'x', { min: 0 }), SpillwayOptionsError)
})

t.test('a plugin supplies its own error', async (t) => {
  class PluginError extends TypeError { code = 'SPILLWAY_RATE_LIMIT_OPTIONS' }
  t.throws(() => checkNumber('capacity', 0, { min: 1, fail: (m) => new PluginError(m) }), {
    code: 'SPILLWAY_RATE_LIMIT_OPTIONS', message: /capacity/
  })
})

t.test('values are described briefly, never dumped', async (t) => {
  t.equal(describeValue('x'.repeat(200)).length, 83)
  t.equal(describeValue(10n), '10n')
  t.equal(describeValue(Symbol('s')), 'Symbol(s)')
  t.equal(describeValue({ secret: 'hunter2' }), 'an object')
  t.equal(describeValue(null), 'null')
})
