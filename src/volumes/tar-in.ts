/**
 * Streams an archived volume back into a claim: the archive's tar stream goes
 * to `tar xf -` over exec, framed by its length (`head -c N`), so the same
 * command ends on v5 (stdin closed) and on v4 (where stdin cannot be closed),
 * and is accepted only when the pod hashed exactly the bytes the archive
 * holds and the exec ended with Success.
 *
 * Before any of that, scanVolumeTar reads the stream once on this side and
 * refuses members that would land outside the mount: absolute paths, `..`,
 * links that leave the mount, anything written through a symlink, device
 * nodes (kubectl cp's rules, but refusing instead of skipping: a restore that
 * silently drops files is not exact).
 */
import path from 'node:path/posix'
import {Transform, type Readable} from 'node:stream'
import type {KubeApi} from '../cluster/api.js'
import {execInPod, type ExecResult} from '../cluster/exec.js'
import {walkTar} from './tar-walk.js'

/** A member of a tar stream, as far as safety is concerned. */
export interface TarMember {
  path: string
  /** tar's type name: File, Directory, SymbolicLink, Link, CharacterDevice… */
  type: string
  linkpath?: string
}

/** A member that must not be extracted, and why. */
export interface UnsafeMember {
  path: string
  reason: string
}

export interface TarScanResult {
  members: number
  /** The first member refused; undefined when every member stays inside the mount. */
  unsafe?: UnsafeMember
  /** The archived owners: how many members each uid:gid has, and the first of them. */
  owners: MemberOwner[]
  /** The bytes of file content the members hold: what the claim must have room for. */
  contentBytes: number
}

/** One archived owner of a volume's members. */
export interface MemberOwner {
  uid: number
  gid: number
  members: number
  /** The first member with this owner, for messages. */
  example: string
}

/** Types tar may create in the mount. Devices are refused: a node of the host's disk would be a way out. */
const SAFE_TYPES = new Set(['File', 'OldFile', 'ContiguousFile', 'Directory', 'GNUDumpDir', 'SymbolicLink', 'Link', 'FIFO'])

/**
 * Why `member` would land outside the mount (or write through a link), or
 * undefined when it is safe. `symlinks` holds the paths of the symlinks seen
 * earlier in the stream (normalized); a safe symlink is added to it.
 */
export function unsafeMemberReason(member: TarMember, symlinks: Set<string>): string | undefined {
  const where = memberPath(member.path)
  if (typeof where !== 'string') return where.reason
  if (!SAFE_TYPES.has(member.type)) return `it is a ${member.type}, which a volume restore does not create`
  const through = throughSymlink(where, symlinks)
  if (through) return `it would be written through the symlink ${through}`
  if (member.type === 'SymbolicLink') {
    const target = member.linkpath ?? ''
    if (target.startsWith('/')) return `it is a symlink to the absolute path ${target}, outside the mount`
    // Lexically, from the link's directory: a later member cannot go through it anyway.
    const resolved = path.normalize(path.join(path.dirname(where) || '.', target))
    if (resolved === '..' || resolved.startsWith('../')) return `it is a symlink to ${target}, which leaves the mount`
    symlinks.add(where)
  }
  if (member.type === 'Link') {
    // A hard link's target is another member's path, from the archive's root.
    const target = memberPath(member.linkpath ?? '')
    if (typeof target !== 'string') return `it is a hard link to ${member.linkpath}: ${target.reason.replace(/^it /, 'that ')}`
    const via = throughSymlink(target, symlinks)
    if (via) return `it is a hard link through the symlink ${via}`
  }
  return undefined
}

/** The member's path inside the mount (`a/b`, `.` for the root), or why it has none. */
function memberPath(raw: string): string | {reason: string} {
  if (raw.startsWith('/')) return {reason: 'it has an absolute path'}
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.')
  if (parts.includes('..')) return {reason: 'its path has a .. component'}
  return parts.length === 0 ? '.' : parts.join('/')
}

/** The symlink among `where`'s parent directories (or `where` itself, replaced by a directory or file), if any. */
function throughSymlink(where: string, symlinks: Set<string>): string | undefined {
  if (symlinks.size === 0 || where === '.') return undefined
  const parts = where.split('/')
  for (let i = 1; i <= parts.length; i++) {
    const prefix = parts.slice(0, i).join('/')
    // `where` itself may be a symlink that a later member re-declares: tar would follow it.
    if (symlinks.has(prefix)) return prefix
  }
  return undefined
}

/**
 * Reads a volume's tar stream to its end and returns the first member that
 * would leave the mount. Rejects when the stream is not a readable tar.
 */
export async function scanVolumeTar(stream: Readable): Promise<TarScanResult> {
  const symlinks = new Set<string>()
  const owners = new Map<string, MemberOwner>()
  let members = 0
  let contentBytes = 0
  let unsafe: UnsafeMember | undefined
  await walkTar(stream, (entry) => {
    members++
    if (entry.type === 'File' || entry.type === 'OldFile' || entry.type === 'ContiguousFile') contentBytes += entry.size ?? 0
    if (!unsafe) {
      const reason = unsafeMemberReason({path: entry.path, type: entry.type, linkpath: entry.linkpath}, symlinks)
      if (reason) unsafe = {path: entry.path, reason}
    }
    const uid = entry.header.uid ?? 0
    const gid = entry.header.gid ?? 0
    const owner = owners.get(`${uid}:${gid}`)
    if (owner) owner.members++
    else owners.set(`${uid}:${gid}`, {uid, gid, members: 1, example: entry.path})
  })
  return {members, unsafe, owners: [...owners.values()], contentBytes}
}

/**
 * The members that cannot keep their archived owner when extracted by a
 * process with `uid` and groups `gids`: root (with CAP_CHOWN) gives every
 * file its owner; anyone else can only own files itself, with one of its
 * own groups. Returns how many, and the first owner that loses.
 */
export function ownersNotKept(owners: MemberOwner[], uid: number, gids: number[]): {members: number; first?: MemberOwner} {
  if (uid === 0) return {members: 0}
  const lost = owners.filter((o) => o.uid !== uid || !gids.includes(o.gid))
  return {members: lost.reduce((sum, o) => sum + o.members, 0), first: lost[0]}
}

/** How a claim's existing files are treated: removed first (the claim ends up as archived), or kept and overwritten. */
export const VOLUME_MODES = ['replace', 'merge'] as const
export type VolumeMode = (typeof VOLUME_MODES)[number]

/**
 * The pod-side script, run as `sh -c SCRIPT kubesnap-untar DIR BYTES MODE`
 * (arguments as `$1…`, never pasted into shell code). POSIX sh, as TAR_OUT_SCRIPT.
 * It empties DIR first in replace mode (hidden names too, DIR itself kept: it
 * is the mount point), reads exactly BYTES of stdin, extracts them with
 * numeric owners (a name in the container's /etc/passwd must never remap an
 * archived id), drains what tar leaves unread (the end-of-archive padding),
 * and, when it has the tools, hashes what it received. It reports on stderr,
 * with the ids it ran as (which files can keep their owners depends on them):
 *
 *   kubesnap-untar: tar-exit=0 uid=999 gids=999,1000 sha256=<hex>     (or `unhashed`)
 *
 * No byte count, as in TAR_OUT_SCRIPT: `head -c N` bounds what is read, equal
 * sha256 means equal bytes, and a busybox `wc -c` reading a FIFO nearly
 * doubled the script's CPU (measured: 256 MiB in 5.2 s of CPU instead of 2.8).
 */
export const TAR_IN_SCRIPT = `d=$1 n=$2 m=$3
have() { command -v "$1" >/dev/null 2>&1; }
have tar || { echo "kubesnap: this container has no tar" >&2; exit 127; }
have head || { echo "kubesnap: this container has no head" >&2; exit 127; }
cd "$d" || exit 1
if [ "$m" = replace ]; then
  rm -rf -- "$d"/* "$d"/.[!.]* "$d"/..?* || { echo "kubesnap: could not empty $d" >&2; exit 1; }
fi
t=
if have sha256sum && have tee && have mkfifo && have mktemp; then
  t=$(mktemp -d 2>/dev/null) && mkfifo "$t/sum" 2>/dev/null || { [ -n "$t" ] && rm -rf "$t"; t=; }
fi
ids="uid=$(id -u 2>/dev/null) gids=$(id -G 2>/dev/null | tr ' ' ,)"
if [ -z "$t" ]; then
  head -c "$n" | { tar --numeric-owner -xf - -C "$d"; e=$?; cat >/dev/null; echo "kubesnap-untar: tar-exit=$e $ids unhashed" >&2; exit $e; }
  exit $?
fi
trap 'rm -rf "$t"' EXIT
sha256sum < "$t/sum" > "$t/sum.out" &
head -c "$n" | tee "$t/sum" | { tar --numeric-owner -xf - -C "$d"; echo $? > "$t/exit"; cat >/dev/null; }
wait
read s _ < "$t/sum.out"; read e < "$t/exit"
echo "kubesnap-untar: tar-exit=$e $ids sha256=$s" >&2
exit $e
`

/** The exec command that extracts `bytes` bytes of tar from stdin into `dir`. */
export function tarInCommand(dir: string, bytes: number, mode: VolumeMode): string[] {
  return ['sh', '-c', TAR_IN_SCRIPT, 'kubesnap-untar', dir, String(bytes), mode]
}

/** What the script reported. */
export interface PodUntarReport {
  tarExit: number
  sha256?: string
  /** The ids tar ran with, when the container has `id`. */
  uid?: number
  gids?: number[]
}

/** Reads the script's report line out of stderr; undefined when there is none. */
export function parseUntarReport(stderr: string): PodUntarReport | undefined {
  const line = stderr.split('\n').reverse().find((l) => l.startsWith('kubesnap-untar: '))
  if (!line) return undefined
  const match = /^kubesnap-untar: tar-exit=(\d+)(?: uid=(\d*) gids=([\d,]*))? (?:sha256=([0-9a-f]{64})|unhashed)$/.exec(line)
  if (!match) return undefined
  const [, exit, uid, gids, sha256] = match
  return {
    tarExit: Number(exit),
    ...(sha256 ? {sha256} : {}),
    ...(uid ? {uid: Number(uid), gids: (gids ?? '').split(',').filter(Boolean).map(Number)} : {}),
  }
}

/** Where a volume is written. */
export interface TarTarget {
  pod: string
  container: string
  mountPath: string
}

export interface TarInOptions {
  api: KubeApi
  namespace: string
  claim: string
  target: TarTarget
  /** The archived tar stream (reader.readStream(entry)), opened once. */
  stream: Readable
  /** Its length and sha256 (entry.rawSize, entry.rawSha256). */
  bytes: number
  sha256: string
  mode: VolumeMode
  signal?: AbortSignal
  /** Told the bytes sent so far, about twice a second. */
  onProgress?: (bytes: number) => void
}

export interface TarInResult {
  bytes: number
  /** How the pod's copy was checked: its sha256, or only tar's exit and the Success status. */
  verified: 'pod-sha256' | 'exit-status'
  protocol: ExecResult['protocol']
  /** The ids tar ran with in the pod, when it could say. */
  uid?: number
  gids?: number[]
}

/** Streams one archived volume into the target's mount; throws unless the pod got every byte and tar succeeded. */
export async function streamVolumeIn(options: TarInOptions): Promise<TarInResult> {
  const {target} = options
  let sent = 0
  const counted = options.stream.pipe(new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      sent += chunk.length
      callback(null, chunk)
    },
  }))
  options.stream.on('error', (err) => counted.destroy(err))
  const timer = options.onProgress ? setInterval(() => options.onProgress!(sent), 500) : undefined
  try {
    const result = await execInPod(options.api, {
      namespace: options.namespace,
      pod: target.pod,
      container: target.container,
      command: tarInCommand(target.mountPath, options.bytes, options.mode),
      stdin: {length: options.bytes, stream: counted},
      signal: options.signal,
      label: `\`tar xf - -C ${target.mountPath}\``,
    })
    const report = parseUntarReport(result.stderr)
    if (!report) throw new Error(`the pod did not report on the extraction (stderr: ${result.stderr.trim().slice(-200) || 'empty'})`)
    if (report.sha256 !== undefined && report.sha256 !== options.sha256) {
      throw new Error(`what the pod received has sha256 ${report.sha256.slice(0, 12)}…, the archive's ${options.bytes} bytes have sha256 ${options.sha256.slice(0, 12)}…`)
    }
    if (result.stdinBytes !== options.bytes) throw new Error(`only ${result.stdinBytes} of ${options.bytes} bytes were sent`)
    return {bytes: result.stdinBytes, verified: report.sha256 ? 'pod-sha256' : 'exit-status', protocol: result.protocol, uid: report.uid, gids: report.gids}
  } finally {
    clearInterval(timer)
    options.stream.destroy()
    counted.destroy()
  }
}
