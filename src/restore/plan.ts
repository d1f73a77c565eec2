/**
 * What one restore is asked to do: the typed input of its phases (open,
 * check, write, wait), built by the command from its flags and a --config
 * plan. No phase reads a flag.
 */
import type {TrustedKey} from '../archive/sign.js'
import type {ExistingPolicy} from '../resources/apply.js'
import type {LabelSelector} from '../resources/label-selector.js'
import type {VolumeMode} from '../volumes/tar-in.js'
import type {ResourceModifiers} from './modifiers.js'
import type {StorageClassMap} from './storage-classes.js'
import type {VOLUME_RESTORE_STRATEGIES} from './volumes.js'

export interface RestorePlan {
  /** The archive: a file or an s3:// object. */
  path: string
  /** --identity files that decrypt it. */
  identity?: string[]
  /** Keys the archive must be signed by (--trust, or the --config plan's trust list). */
  trust?: TrustedKey[]
  /** -n and --to-namespace (see restoreTarget). */
  namespace?: string
  toNamespace?: string
  createNamespace: boolean
  assignNodePorts: boolean
  existing: ExistingPolicy
  /** --selector: only objects whose stored labels match. */
  selector: LabelSelector
  /** Which archived objects: --include-kinds (with secrets for --only-secrets), --exclude-kinds, --resource. */
  select: {include: string[]; exclude: string[]; resources: string[]}
  onlySecrets: boolean
  dryRun: boolean
  /** Objects of one rank applied at once. */
  concurrency: number
  storageClasses: StorageClassMap
  modifiers?: ResourceModifiers
  volumes: (typeof VOLUME_RESTORE_STRATEGIES)[number]
  volumeMode: VolumeMode
  live: boolean
  helper: {image: string; asRoot: boolean}
  /** --timeout as given (for messages) and in milliseconds. */
  timeout: string
  timeoutMs: number
  wait: boolean
  dumps: boolean
}
