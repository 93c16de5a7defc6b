/**
 * What a package's source file reaches through its imports, read from the sources as text: the
 * files it goes through (relative imports) and the packages it imports. The packages' subpath tests
 * use it to show that `./core` reaches no framework.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

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
