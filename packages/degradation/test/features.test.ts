import t from 'tap'
import { declareFeatures } from '../src/features.js'

t.test('declarations keep their order and index', async (t) => {
  const table = declareFeatures([
    { name: 'recommendations', offAtLevel: 1, fallback: [] },
    { name: 'search_suggestions', offAtLevel: 2 },
    { name: 'image_processing', offAtLevel: 3, fallback: null }
  ], 3)
  t.same(table.names, ['recommendations', 'search_suggestions', 'image_processing'])
  t.same(table.offAtLevel, [1, 2, 3])
  t.equal(table.indexOf.get('search_suggestions'), 1)
  t.same(table.hasFallback, [true, false, true], 'null is a fallback; a missing one is not')
})

t.test('bad declarations throw SPILLWAY_DEGRADATION_OPTIONS naming the option and the value', async (t) => {
  const cases: [unknown, RegExp][] = [
    [undefined, /^features must be a non-empty array.*got undefined/],
    [[], /^features must be a non-empty array.*got an array of 0/],
    [['x'], /^features\[0\] must be an object.*got "x"/],
    [[{ name: '', offAtLevel: 1 }], /^features\[0\]\.name must be .*got ""/],
    [[{ name: 'has space', offAtLevel: 1 }], /features\[0\]\.name.*got "has space"/],
    [[{ name: 'a', offAtLevel: 0 }], /^features\[0\]\.offAtLevel must be an integer in \[1, 3\], got 0/],
    [[{ name: 'a', offAtLevel: 4 }], /offAtLevel.*got 4/],
    [[{ name: 'a', offAtLevel: 1.5 }], /offAtLevel.*got 1\.5/],
    [[{ name: 'a', offAtLevel: 1 }, { name: 'a', offAtLevel: 2 }], /^features\[1\]\.name must be unique, got "a" twice/]
  ]
  for (const [input, message] of cases) {
    t.throws(() => declareFeatures(input, 3), { code: 'SPILLWAY_DEGRADATION_OPTIONS', message }, String(message))
  }
})
