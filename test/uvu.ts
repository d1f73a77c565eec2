/**
 * Runs uvu over the test files like its own bin, then exits: a test that
 * leaves a socket or timer open must not keep `npm test` waiting after the
 * totals are printed. Arguments: DIR PATTERN [IGNORE...].
 */
import {parse} from 'uvu/parse'
import {run} from 'uvu/run'

const [dir, pattern, ...ignore] = process.argv.slice(2)
const {suites} = await parse(dir, pattern, {ignore})
await run(suites, {bail: false})
process.exit(process.exitCode ?? 0)
