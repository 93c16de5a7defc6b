import t from 'tap'
import {
  checkBoolean, checkFunction, checkKnownKeys, checkNumber, checkOneOf, checkOptionsObject, closestName, describeValue, editDistance,
  SpillwayOptionsError
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

t.test('edit distance counts insertions, deletions, substitutions and swaps of neighbours as one each', async (t) => {
  t.equal(editDistance('refillPerSecond', 'refillPerSecond'), 0)
  t.equal(editDistance('refilPerSecond', 'refillPerSecond'), 1, 'a letter left out')
  t.equal(editDistance('capacityy', 'capacity'), 1, 'a letter too many')
  t.equal(editDistance('capacitx', 'capacity'), 1, 'a letter replaced')
  t.equal(editDistance('capcaity', 'capacity'), 1, 'two neighbours swapped')
  t.equal(editDistance('maxDelay', 'maxDelayMs'), 2)
  t.equal(editDistance('', 'key'), 3)
  t.equal(editDistance('key', ''), 3)
  t.equal(editDistance('kitten', 'sitting'), 3)
})

t.test('the closest name is suggested only when it is close for the name\'s length', async (t) => {
  const known = ['capacity', 'refillPerSecond', 'key', 'cost', 'maxDelayMs']
  t.equal(closestName('refilPerSecond', known), 'refillPerSecond')
  t.equal(closestName('RefillPerSecond', known), 'refillPerSecond', 'case is ignored')
  t.equal(closestName('maxDelay', known), 'maxDelayMs', 'a unit left out')
  t.equal(closestName('kye', known), 'key', 'a short name: one swap')
  t.equal(closestName('burst', known), undefined, 'nothing close')
  t.equal(closestName('keys', ['key', 'keys2']), 'key', 'the nearest wins')
  t.equal(closestName('ab', ['ac', 'ad']), 'ac', 'a tie goes to the first known')
})

t.test('an unknown key throws naming its path, with a did-you-mean, a migration hint, or the known names', async (t) => {
  const known = ['capacity', 'refillPerSecond']
  const foreign = { timeWindow: { from: 'a-tool', instead: 'here refillPerSecond sets the rate' } }
  t.doesNotThrow(() => checkKnownKeys('', { capacity: 1, refillPerSecond: 2 }, known), 'known keys pass')
  t.throws(() => checkKnownKeys('', { refilPerSecond: 1 }, known), {
    code: 'SPILLWAY_LATENCY_WINDOW_OPTIONS', message: 'refilPerSecond is not an option; did you mean refillPerSecond?'
  })
  t.throws(() => checkKnownKeys('config.rateLimit', { refilPerSecond: 1 }, known),
    { message: 'config.rateLimit.refilPerSecond is not an option; did you mean refillPerSecond?' }, 'a nested key is named by its path')
  t.throws(() => checkKnownKeys('', { timeWindow: 1 }, known, undefined, foreign),
    { message: 'timeWindow is an option of a-tool, not ours; here refillPerSecond sets the rate' })
  t.throws(() => checkKnownKeys('', { burst: 1 }, known), { message: 'burst is not an option; the options are capacity, refillPerSecond' })
  t.throws(() => checkKnownKeys('pacing', { burst: 1 }, known), { message: 'pacing.burst is not an option; pacing takes capacity, refillPerSecond' })
  t.throws(() => checkKnownKeys('', { capacity: 1, refillPerSecond: undefined, extra: undefined }, known), { message: /^extra is not an option/ },
    'a key given as undefined is still a key')
  t.throws(() => checkKnownKeys('', { constructor: 1 }, known, undefined, foreign), { message: /^constructor is not an option; the options are/ },
    'a key named like a property of every object finds no hint')
  class PluginError extends TypeError { code = 'SPILLWAY_RATE_LIMIT_OPTIONS' }
  t.throws(() => checkKnownKeys('', { capcity: 1 }, known, (m) => new PluginError(m)), { code: 'SPILLWAY_RATE_LIMIT_OPTIONS', message: /did you mean capacity\?/ })
})
