/**
 * Runs uvu over the given test files (paths relative to the working
 * directory, as test/run.ts chose them), then exits: a test that leaves a
 * socket or timer open must not keep `npm test` waiting after the totals are
 * printed. Arguments: FILE...
 */
import {resolve} from 'node:path'
import {run} from 'uvu/run'

const suites = process.argv.slice(2).map((name) => ({name, file: resolve(name)}))
await run(suites, {bail: false})
process.exit(process.exitCode ?? 0)
