/**
 * Where a Secret keeps its values, for every place kubesnap shows objects
 * (inspect --show, the restore plan's diffs): those places print sizes or
 * "changed", never the values.
 */

/** `kubectl apply` keeps the whole object it applied in this annotation: for a Secret, its values too. */
export const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration'

/** Whether the field at `path` of a Secret holds values: `data`, `stringData`, or kubectl's last-applied copy. */
export function holdsSecretValues(path: readonly string[]): boolean {
  return path[0] === 'data' || path[0] === 'stringData' || (path[0] === 'metadata' && path[1] === 'annotations' && path[2] === LAST_APPLIED)
}
