/** The OpenFeature server SDK, resolved from this package's dependencies for the root integration tests. */
export { OpenFeature } from '@openfeature/server-sdk'
