/** The benchmarks' command line: `--name value` options and bare `--switch`es. */
const args = process.argv.slice(2)

/** The value after `--name`, undefined when it is not given. */
export function flag(name: string): string | undefined {
  const i = args.indexOf(name)
  return i === -1 ? undefined : args[i + 1]
}

/** Whether `--name` is given. */
export function hasFlag(name: string): boolean {
  return args.includes(name)
}
