/**
 * Records every ES module a process loads: tests start a kubesnap child with
 * `NODE_OPTIONS=--import=<this file>` and `KUBESNAP_MODULE_LOG=<file>`, then
 * read the file (one URL a line) to assert what a command does not import.
 * Plain JavaScript: the child runs the built CLI without tsx.
 */
import {register} from 'node:module'

if (process.env.KUBESNAP_MODULE_LOG) {
  register('./module-log-hooks.mjs', import.meta.url, {data: {file: process.env.KUBESNAP_MODULE_LOG}})
}
