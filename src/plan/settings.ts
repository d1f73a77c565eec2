/**
 * What a snapshot run does, from its flags and its plan: a flag given on the
 * command line wins, then the plan, then the default. Pure, so the precedence
 * is a table test rather than a cluster test.
 */
import {resolve} from 'node:path'
import {policyFromFlags, type RetentionPolicy} from '../archive/retention.js'
import {isS3Url, joinS3} from '../archive/s3-url.js'
import {dumpPlanOfFlags, type DumpPlan} from '../dumps/index.js'
import {EXIT, KubesnapError} from '../errors.js'
import {DEFAULT_HELPER_IMAGE, type VolumeStrategy} from '../volumes/index.js'
import type {StreamCompression} from '../archive/manifest.js'
import type {Plan} from './plan.js'

/** The snapshot flags this merge reads (oclif's parsed flags fit it). */
export interface SnapshotFlags {
  kubeconfig?: string
  context?: string
  namespace?: string
  output?: string
  'include-kinds'?: string[]
  'exclude-kinds'?: string[]
  selector?: string
  volumes?: string
  'helper-image'?: string
  'helper-as-root'?: boolean
  'volumes-required'?: boolean
  compression?: string
  'snapshot-class'?: string
  'snapshot-timeout'?: number
  dump?: string[]
  load?: string[]
  'pre-hook'?: string[]
  'post-hook'?: string[]
  prune?: boolean
  'keep-last'?: number
  'keep-hourly'?: number
  'keep-daily'?: number
  'keep-weekly'?: number
  'keep-monthly'?: number
  'keep-yearly'?: number
  'encrypt-to'?: string[]
  'recipients-file'?: string[]
  'sign-with'?: string
  pushgateway?: string
}

export interface SnapshotSettings {
  connection: {kubeconfig?: string; context?: string; namespace?: string}
  output: string
  /** Where every written snapshot is copied to as well (the plan's copyTo), or undefined. */
  copyTo?: string
  includeKinds?: string[]
  excludeKinds?: string[]
  selector?: string
  volumes: {
    strategy: VolumeStrategy
    /** Claims whose strategy differs from `strategy` (from the plan; empty when --volumes is given). */
    claims: Record<string, VolumeStrategy>
    helperImage: string
    helperAsRoot: boolean
    snapshotClass?: string
    snapshotTimeoutSeconds: number
    /** A claim whose data cannot be copied fails the run (no archive), instead of leaving the snapshot partial. */
    required: boolean
    /** How volume data is stored: gzip, or as it came. */
    compression: StreamCompression
  }
  dumps: DumpPlan
  /** Retention to apply after a successful run (--prune), or undefined. */
  prune?: RetentionPolicy
  encryption: {recipients: string[]; recipientsFiles: string[]}
  /** The private key that signs the manifest, or undefined. */
  signWith?: string
  pushgateway?: string
}

export const DEFAULT_SNAPSHOT_TIMEOUT_SECONDS = 300

/** Merges flags over a plan over defaults; throws a usage error (exit 2) for what cannot be combined. */
export function snapshotSettings(flags: SnapshotFlags, plan?: Plan): SnapshotSettings {
  const has = (list: string[] | undefined) => list !== undefined && list.length > 0
  const dumpsFromFlags = has(flags.dump) || has(flags.load) || has(flags['pre-hook']) || has(flags['post-hook'])
  const dumps = dumpsFromFlags || !plan
    ? dumpPlanOfFlags({dump: flags.dump, load: flags.load, preHook: flags['pre-hook'], postHook: flags['post-hook']})
    : {dumps: plan.dumps, preHooks: plan.hooks.pre, postHooks: plan.hooks.post}

  const keepFlags = policyFromFlags(flags as Record<string, unknown>)
  const policy = Object.keys(keepFlags).length > 0 ? keepFlags : plan?.retention
  if (Object.keys(keepFlags).length > 0 && !flags.prune) {
    throw new KubesnapError('The --keep-* options apply with --prune; add --prune, or run kubesnap prune.', {exit: EXIT.usage})
  }
  if (flags.prune && !policy) {
    throw new KubesnapError('--prune needs a retention policy; give --keep-last/--keep-daily/… or a retention section in the --config plan.', {exit: EXIT.usage})
  }

  const output = flags.output ?? plan?.output ?? '.'
  if (plan?.copyTo !== undefined && sameLocation(plan.copyTo, output)) {
    throw new KubesnapError(`The plan's copyTo (${plan.copyTo}) is where the snapshot is written; give copyTo another directory or s3:// location.`, {exit: EXIT.usage})
  }

  const recipientsFromFlags = has(flags['encrypt-to']) || has(flags['recipients-file'])
  return {
    connection: {
      kubeconfig: flags.kubeconfig ?? plan?.kubeconfig,
      context: flags.context ?? plan?.context,
      namespace: flags.namespace ?? plan?.namespace,
    },
    output,
    copyTo: plan?.copyTo,
    includeKinds: has(flags['include-kinds']) ? flags['include-kinds'] : plan?.selection.includeKinds,
    excludeKinds: has(flags['exclude-kinds']) ? flags['exclude-kinds'] : plan?.selection.excludeKinds,
    selector: flags.selector ?? plan?.selection.selector,
    volumes: {
      // --volumes sets every claim; the plan's per-claim choices stand only without it.
      strategy: (flags.volumes as VolumeStrategy | undefined) ?? plan?.volumes.strategy ?? 'tar',
      claims: flags.volumes === undefined ? {...plan?.volumes.claims} : {},
      helperImage: flags['helper-image'] ?? plan?.volumes.helperImage ?? DEFAULT_HELPER_IMAGE,
      helperAsRoot: flags['helper-as-root'] || (plan?.volumes.helperAsRoot ?? false),
      snapshotClass: flags['snapshot-class'] ?? plan?.volumes.snapshotClass,
      snapshotTimeoutSeconds: flags['snapshot-timeout'] ?? plan?.volumes.snapshotTimeout ?? DEFAULT_SNAPSHOT_TIMEOUT_SECONDS,
      required: flags['volumes-required'] || (plan?.volumes.required ?? false),
      compression: (flags.compression as StreamCompression | undefined) ?? plan?.volumes.compression ?? 'gzip',
    },
    dumps,
    prune: flags.prune ? policy : undefined,
    encryption: recipientsFromFlags
      ? {recipients: flags['encrypt-to'] ?? [], recipientsFiles: flags['recipients-file'] ?? []}
      : {recipients: plan?.encryption.recipients ?? [], recipientsFiles: plan?.encryption.recipientsFiles ?? []},
    signWith: flags['sign-with'] ?? plan?.signWith,
    pushgateway: flags.pushgateway ?? plan?.metrics.pushgateway,
  }
}

/** The strategy of one claim under the settings. */
export function strategyOf(settings: Pick<SnapshotSettings['volumes'], 'strategy' | 'claims'>, claim: string): VolumeStrategy {
  return settings.claims[claim] ?? settings.strategy
}

/** Whether two directories, or two s3:// locations, are the same place. */
function sameLocation(a: string, b: string): boolean {
  if (isS3Url(a) !== isS3Url(b)) return false
  return isS3Url(a) ? joinS3(a, '') === joinS3(b, '') : resolve(a) === resolve(b)
}
