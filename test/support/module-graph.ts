/**
 * What a package's source file reaches through its imports, read from the sources as text: the
 * files it goes through (relative imports) and the packages it imports. The packages' subpath tests
 * use it to show that `./core` reaches no framework.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join, posix } from 'node:path'

const IMPORT = /^(?:import|export)\s+(type\s+)?(?:\{[^}]*\}|\*(?:\s+as\s+\w+)?|\w+)(?:\s*,\s*\{[^}]*\})?\s+from\s+'([^']+)'/gm

/** Matches the framework packages (and a `…/fastify` mount subpath of ours). */
export const FRAMEWORK = /^(fastify|fastify-plugin|express)$|\/fastify$/

/**
 * The files below `srcDir` that `file` reaches through relative imports, and the packages they
 * import; with `valuesOnly`, through what is imported for its value (what runs), not for its type.
 */
export function reachable(srcDir: string, file: string, valuesOnly = false): { files: string[], packages: Set<string> } {
  const files: string[] = []
  const packages = new Set<string>()
  const pending = [file]
  while (pending.length > 0) {
    const next = pending.pop() as string
    if (files.includes(next)) continue
    files.push(next)
    for (const [, typeOnly, specifier] of readFileSync(join(srcDir, next), 'utf8').matchAll(IMPORT)) {
      if (specifier === undefined || (valuesOnly && typeOnly !== undefined)) continue
      if (specifier.startsWith('./')) pending.push(specifier.slice(2).replace(/\.js$/, '.ts'))
      else packages.add(specifier)
    }
  }
  return { files, packages }
}

/**
 * The same walk across the workspace, from `entry` (`<package dir>/src/<file>` below
 * `packagesDir`): an `@spillway/<name>[/<subpath>]` import is followed into that package's sources
 * through its `exports` map (`./dist/x.d.ts` is `src/x.ts`), as an application that installs the
 * packages loads them and type-checks them. Files are named `<package dir>/src/<file>`.
 */
export function reachableAcross(packagesDir: string, entry: string, valuesOnly = false): { files: string[], packages: Set<string> } {
  const sources = new Map<string, string>()
  for (const dir of readdirSync(packagesDir)) {
    const manifest = JSON.parse(readFileSync(join(packagesDir, dir, 'package.json'), 'utf8')) as { name: string, exports: Record<string, { types?: string } | string> }
    for (const [subpath, target] of Object.entries(manifest.exports)) {
      const types = typeof target === 'string' ? undefined : target.types
      if (types === undefined) continue
      sources.set(manifest.name + subpath.slice(1), posix.join(dir, types.replace(/^\.\/dist\//, 'src/').replace(/\.d\.ts$/, '.ts')))
    }
  }
  const files: string[] = []
  const packages = new Set<string>()
  const pending = [entry]
  while (pending.length > 0) {
    const next = pending.pop() as string
    if (files.includes(next)) continue
    files.push(next)
    for (const [, typeOnly, specifier] of readFileSync(join(packagesDir, next), 'utf8').matchAll(IMPORT)) {
      if (specifier === undefined || (valuesOnly && typeOnly !== undefined)) continue
      const workspaceFile = sources.get(specifier)
      if (specifier.startsWith('./') || specifier.startsWith('../')) pending.push(posix.join(posix.dirname(next), specifier.replace(/\.js$/, '.ts')))
      else if (workspaceFile !== undefined) pending.push(workspaceFile)
      else packages.add(specifier)
    }
  }
  return { files, packages }
}
