/**
 * The module hooks of module-log.mjs. Node runs them on its hooks thread:
 * each module's URL is appended to the log as it loads.
 */
import {appendFileSync} from 'node:fs'

let file

/** Receives the log file's path from `register`. */
export function initialize(data) {
  file = data.file
}

/** Appends the URL, then loads the module as usual. */
export async function load(url, context, nextLoad) {
  appendFileSync(file, `${url}\n`)
  return nextLoad(url, context)
}
