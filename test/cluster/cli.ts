/**
 * `npm run cluster`: a local cluster to try kubesnap on, with the sample
 * namespaces `softwarefactory`, `jenkins` and `shop` (restricted) loaded and the namespace-only user
 * bound in each. Prints `KUBECONFIG=<admin>` and `KUBECONFIG=<user>` on stdout
 * (progress on stderr) and runs until SIGINT/SIGTERM, then stops everything.
 * A failure (packages.ts, a build, a port, a component) is one sentence, exit 2.
 * Test runs can share it: KUBESNAP_TEST_CLUSTER=<its dir>/cluster.json.
 *
 * Flags for sharedCluster(), which runs the cluster in a process of its own:
 *   --bare              no sample namespaces, nothing on stdout
 *   --quiet             no progress (errors are still printed)
 *   --state-file FILE   also write the state there once ready (removed on stop)
 */
import {copyFile, rename, rm} from 'node:fs/promises'
import path from 'node:path'
import {parseArgs} from 'node:util'
import {startTestCluster, type FixtureName} from './index.js'
import {ensurePackages} from './packages.js'
import {held} from './processes.js'
import {setupFailureMessage} from './setup-error.js'

const NAMESPACES: readonly FixtureName[] = ['softwarefactory', 'jenkins', 'shop']

const {values: flags} = parseArgs({
  options: {
    bare: {type: 'boolean', default: false},
    quiet: {type: 'boolean', default: false},
    'state-file': {type: 'string'},
  },
})

const report = (line: string): void => {
  process.stderr.write(`${line}\n`)
}
const progress = flags.quiet ? () => {} : report

async function main(): Promise<void> {
  // Before anything starts: the Debian packages, installed or named (exit 2).
  ensurePackages('cluster')
  // Signals are ours from the start, so one during start-up still stops what has started.
  let signalled: NodeJS.Signals | undefined
  let wake: () => void = () => {}
  const stopRequested = new Promise<void>((resolve) => (wake = resolve))
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled) {
      // Ctrl-C twice: an impatient person; exiting kills the children (processes.ts). A repeated
      // SIGTERM is not: the kernel sends the parent-death signal again each time the dead
      // parent's exiting threads hand us on, so it can come twice within milliseconds.
      if (signal === 'SIGINT') {
        report('SIGINT again: killing the cluster')
        process.exit(130)
      }
      return
    }
    signalled = signal
    progress(`${signal}: stopping the cluster`)
    wake()
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)

  const started = Date.now()
  const starting = startTestCluster({log: progress})
  const cluster = await Promise.race([starting, stopRequested.then(() => undefined)])
  if (!cluster) {
    // Interrupted while starting: let the start finish or fail, then stop what it started.
    await starting.then((c) => c.stop(), () => {})
    return
  }
  const stateFile = flags['state-file']
  try {
    if (!flags.bare) {
      for (const name of NAMESPACES) {
        if (signalled) break
        progress(`creating namespace ${name} with its fixture`)
        await cluster.createNamespace({name, fixture: name})
      }
    }
    if (stateFile) {
      // Written whole under another name first: the waiting process polls for this file.
      await copyFile(path.join(cluster.dir, 'cluster.json'), `${stateFile}.tmp`)
      await rename(`${stateFile}.tmp`, stateFile)
    }
    if (!signalled) {
      progress(`cluster ready in ${((Date.now() - started) / 1000).toFixed(1)} s; state: ${path.join(cluster.dir, 'cluster.json')}; Ctrl-C stops it`)
      if (!flags.bare) process.stdout.write(`KUBECONFIG=${cluster.kubeconfigs.admin}\nKUBECONFIG=${cluster.kubeconfigs.user}\n`)
      // Nothing else keeps Node running: the components are unreferenced children (processes.ts).
      await held(stopRequested)
    }
  } finally {
    if (stateFile) await rm(stateFile, {force: true})
    await cluster.stop()
  }
  progress('cluster stopped')
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    // Everything before Ctrl-C is setting up: packages, build, components, namespaces.
    report(setupFailureMessage(err))
    process.exit(2)
  },
)
