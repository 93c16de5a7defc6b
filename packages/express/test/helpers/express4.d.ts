// Express 4, installed under an alias to prove the middlewares work on it too; its API is typed
// close enough by Express 5's types for what the test uses.
declare module 'express4' {
  import express from 'express'
  export default express
}
