/**
 * Runs a gated route's fallback function, sync or async, and hands its value or its failure to the
 * framework's glue (Fastify's plugin, the Express middleware), so that both treat a throwing or
 * rejecting fallback alike: never as a 500.
 */
export function runRouteFallback(
  fallback: () => unknown,
  send: (value: unknown) => void,
  fail: (error: unknown) => void
): void {
  let result: unknown
  try {
    result = fallback()
  } catch (error) {
    fail(error)
    return
  }
  if (result instanceof Promise) result.then(send, fail)
  else send(result)
}
