/** Formatting shared by the commands' human output. */

/** Formats a byte count for people, in powers of 1024: `512 B`, `1.2 MiB`, `3.0 GiB`. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  if (unit === 0) return `${bytes} B`
  // 1023.96 KiB would print as "1024.0 KiB": step up instead.
  if (Number(value.toFixed(1)) >= 1024 && unit < units.length - 1) return `1.0 ${units[unit + 1]}`
  return `${value.toFixed(1)} ${units[unit]}`
}
