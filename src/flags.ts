/**
 * oclif options that several commands share, so each reads and documents
 * them the same way.
 */
import {Flags} from '@oclif/core'

/**
 * The flags that pick an archive by number from a directory (the path is the
 * command's ARCHIVE argument). `-n` replaces the connection flag of the same
 * name: these commands read no kubeconfig, so it has no default.
 */
export const archiveSelectionFlags = {
  namespace: Flags.string({char: 'n', summary: 'The namespace whose archive --number/--latest picks; needed when the directory holds several.'}),
  number: Flags.integer({summary: 'The snapshot with this number (of the namespace -n, in the directory -o).', min: 1}),
  latest: Flags.boolean({summary: 'The snapshot with the highest number (of the namespace -n, in the directory -o).'}),
  output: Flags.string({char: 'o', summary: 'The directory that holds the archives, for --number and --latest.', default: '.'}),
}

/** The --keep-* options of a retention policy, shared with snapshot --prune. */
export function keepFlags(helpGroup: string) {
  return {
    'keep-last': Flags.integer({summary: 'Keep the N newest snapshots.', min: 0, helpGroup}),
    'keep-hourly': Flags.integer({summary: 'Keep the newest snapshot of each of the last N hours that have one.', min: 0, helpGroup}),
    'keep-daily': Flags.integer({summary: 'Keep the newest snapshot of each of the last N days that have one.', min: 0, helpGroup}),
    'keep-weekly': Flags.integer({summary: 'Keep the newest snapshot of each of the last N ISO weeks that have one.', min: 0, helpGroup}),
    'keep-monthly': Flags.integer({summary: 'Keep the newest snapshot of each of the last N months that have one.', min: 0, helpGroup}),
    'keep-yearly': Flags.integer({summary: 'Keep the newest snapshot of each of the last N years that have one.', min: 0, helpGroup}),
  }
}
