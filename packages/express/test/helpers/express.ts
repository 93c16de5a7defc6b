// Express resolved from this package's dev dependencies, for the root integration tests
// (`test/express-*.test.ts`), which have no dependency on it of their own.
import express from 'express'

export { express }
export type { Express, Request, Response, NextFunction } from 'express'
