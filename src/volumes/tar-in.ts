/**
 * Streams an archived volume back into a claim: not the archived tar stream
 * itself but its canonical re-encoding (canonical-tar.ts), so the pod's tar
 * extracts exactly the members scanVolumeTar approved, whatever its own
 * reading of the archived headers would have been. It goes to `tar xf -` over
 * exec, framed by its length (`head -c N`), so the same command ends on v5
 * (stdin closed) and on v4 (where stdin cannot be closed), and is accepted
 * only when the pod hashed exactly the canonical bytes and the exec ended
 * with Success.
 *
 * Before any of that, scanVolumeTar reads the stream once on this side,
 * re-encoding it as it will be sent (its length and sha256 are what the pod
 * must receive), and refuses members that would land outside the mount:
 * absolute paths, `..`, links that leave the mount, anything written through
 * a symlink, device nodes, hard links to anything but an earlier member,
 * repeated paths (kubectl cp's rules, but refusing instead of skipping: a
 * restore that silently drops files is not exact), and headers tars read
 * differently.
 */
import {createHash} from 'node:crypto'
import path from 'node:path/posix'
import {Readable} from 'node:stream'
import type {KubeApi} from '../cluster/api.js'
import {execInPod, type ExecResult} from '../cluster/exec.js'
import {canonicalTar, displayName, normalize, RefusedMember, TarFormatError, type CanonicalMember} from './canonical-tar.js'
import {parsePodReport} from './pod-report.js'

/** A member of a tar stream, as far as safety is concerned. */
export interface TarMember {
  /** As archived; names are bytes held as latin1 strings (canonical-tar.ts). */
  path: string
  /** tar's type name: File, Directory, SymbolicLink, Link, FIFO, CharacterDevice… */
  type: string
  linkpath?: string
}

/** A member that must not be extracted, and why. */
export interface UnsafeMember {
  path: string
  reason: string
}

/** The canonical stream restore sends for a volume: exactly this many bytes, with this sha256. */
export interface CanonicalDigest {
  bytes: number
  sha256: string
}

export interface TarScanResult {
  members: number
  /** The first member refused; undefined when every member stays inside the mount. */
  unsafe?: UnsafeMember
  /** The archived owners: how many members each uid:gid has, and the first of them. */
  owners: MemberOwner[]
  /** The bytes of file content the members hold: what the claim must have room for. */
  contentBytes: number
  /** The canonical stream streamVolumeIn sends; undefined when a member is refused. */
  canonical?: CanonicalDigest
  /** Symlinks owned by someone other than root: tar sets no owner on a link it makes (busybox), fixUpMembers does after a root copy. */
  symlinkOwners: SymlinkOwner[]
  /** The archived mount root (the `./` member), when the stream has one. */
  root?: FileOwner
  /** Every directory but the root, with its archived mode: a copy by anyone but root sets them after tar (setModes). */
  dirModes: MemberMode[]
}

/** A file's owner and permission bits (with setuid, setgid and sticky). */
export interface FileOwner {
  uid: number
  gid: number
  mode: number
}

/** A member's archived permission bits; `path` holds its bytes as latin1. */
export interface MemberMode {
  path: string
  mode: number
}

/** A symlink's archived owner; `path` holds the member's bytes as latin1. */
export interface SymlinkOwner {
  path: string
  uid: number
  gid: number
}

/** One archived owner of a volume's members. */
export interface MemberOwner {
  uid: number
  gid: number
  members: number
  /** The first member with this owner, for messages. */
  example: string
}

/**
 * The types a volume restore creates (all a canonical stream holds). Devices
 * are refused: a node of the host's disk would be a way out. FIFOs are not:
 * one names no device and reaches no other file, and anyone may mkfifo where
 * they can write.
 */
const SAFE_TYPES = new Set(['File', 'Directory', 'SymbolicLink', 'Link', 'FIFO'])

/** In `seen`: a directory no member declared, which tar creates on the way to a member inside it. */
const IMPLICIT = 'implicit directory'

/**
 * Why `member` would land outside the mount, write through a link, or be
 * read two ways by tars, or undefined when it is safe. `seen` holds the
 * members earlier in the stream (normalized path → type, a hard link as the
 * type of what it links to); a safe member is added to it.
 */
export function unsafeMemberReason(member: TarMember, seen: Map<string, string>): string | undefined {
  const where = memberPath(member.path)
  if (typeof where !== 'string') return where.reason
  if (!SAFE_TYPES.has(member.type)) return `it is a ${member.type}, which a volume restore does not create`
  const through = throughSymlink(where, seen)
  if (through) return `it would be written through the symlink ${displayName(through)}`
  if (where === '.' && member.type !== 'Directory') return 'it names the mount itself but is not a directory'
  const parts = where === '.' ? [] : where.split('/')
  const ancestors = parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join('/'))
  const notDirectory = ancestors.find((a) => ![undefined, 'Directory', IMPLICIT].includes(seen.get(a)))
  if (notDirectory) return `its parent ${displayName(notDirectory)} is not a directory`
  const earlier = seen.get(where)
  if (earlier === IMPLICIT && member.type !== 'Directory') return 'earlier members are inside it, so it must be a directory'
  if (earlier !== undefined && earlier !== IMPLICIT) return 'it repeats the path of an earlier member'
  let type = member.type
  if (member.type === 'SymbolicLink') {
    const target = member.linkpath ?? ''
    if (target === '') return 'it is a symlink with an empty target'
    if (target.startsWith('/')) return `it is a symlink to the absolute path ${displayName(target)}, outside the mount`
    // Lexically, from the link's directory: a later member cannot go through it anyway.
    const resolved = path.normalize(path.join(path.dirname(where) || '.', target))
    if (resolved === '..' || resolved.startsWith('../')) return `it is a symlink to ${displayName(target)}, which leaves the mount`
  }
  if (member.type === 'Link') {
    // A hard link's target is another member's path, from the archive's root.
    const target = memberPath(member.linkpath ?? '')
    const shown = displayName(member.linkpath ?? '')
    if (typeof target !== 'string') return `it is a hard link to ${shown}: ${target.reason.replace(/^it /, 'that ')}`
    const via = throughSymlink(target, seen)
    if (via) return `it is a hard link through the symlink ${displayName(via)}`
    const linked = seen.get(target)
    if (linked === undefined || linked === IMPLICIT) return `it is a hard link to ${shown}, which is not an earlier member`
    if (linked === 'Directory') return `it is a hard link to the directory ${shown}`
    // A file or FIFO (a link to a symlink was refused above: a tar that follows it would link elsewhere).
    type = linked
  }
  seen.set(where, type)
  for (const ancestor of ancestors) if (!seen.has(ancestor)) seen.set(ancestor, IMPLICIT)
  return undefined
}

/** The member's path inside the mount (`a/b`, `.` for the root), or why it has none. */
function memberPath(raw: string): string | {reason: string} {
  if (raw.startsWith('/')) return {reason: 'it has an absolute path'}
  if (raw.split('/').includes('..')) return {reason: 'its path has a .. component'}
  return normalize(raw)
}

/** The symlink among `where`'s parent directories (or `where` itself, replaced by a directory or file), if any. */
function throughSymlink(where: string, seen: Map<string, string>): string | undefined {
  if (where === '.') return undefined
  const parts = where.split('/')
  for (let i = 1; i <= parts.length; i++) {
    const prefix = parts.slice(0, i).join('/')
    // `where` itself may be a symlink that a later member re-declares: tar would follow it.
    if (seen.get(prefix) === 'SymbolicLink') return prefix
  }
  return undefined
}

/** The canonical re-encoding of a volume's tar stream, each member checked by unsafeMemberReason; `onMember` sees each approved member. */
export function canonicalVolumeTar(stream: Readable, onMember?: (member: CanonicalMember) => void): AsyncGenerator<Buffer> {
  const seen = new Map<string, string>()
  return canonicalTar(stream, (member) => {
    const reason = unsafeMemberReason(member, seen)
    if (!reason) onMember?.(member)
    return reason
  })
}

/**
 * Reads a volume's tar stream to its end, re-encoding it as restore will
 * send it: returns the first member refused, or the canonical stream's
 * length and sha256. Rejects when the stream is not a readable tar.
 */
export async function scanVolumeTar(stream: Readable): Promise<TarScanResult> {
  const owners = new Map<string, MemberOwner>()
  let members = 0
  let contentBytes = 0
  const hash = createHash('sha256')
  let bytes = 0
  const symlinkOwners: SymlinkOwner[] = []
  let root: FileOwner | undefined
  const dirModes: MemberMode[] = []
  const found = () => ({members, owners: [...owners.values()], contentBytes, symlinkOwners, dirModes, ...(root ? {root} : {})})
  try {
    for await (const chunk of canonicalVolumeTar(stream, (member) => {
      members++
      if (member.type === 'File') contentBytes += member.size
      if (member.type === 'SymbolicLink' && (member.uid !== 0 || member.gid !== 0)) symlinkOwners.push({path: member.path, uid: member.uid, gid: member.gid})
      if (member.type === 'Directory' && normalize(member.path) === '.') root = {uid: member.uid, gid: member.gid, mode: member.mode & 0o7777}
      else if (member.type === 'Directory') dirModes.push({path: member.path, mode: member.mode & 0o7777})
      const owner = owners.get(`${member.uid}:${member.gid}`)
      if (owner) owner.members++
      else owners.set(`${member.uid}:${member.gid}`, {uid: member.uid, gid: member.gid, members: 1, example: displayName(member.path)})
    })) {
      hash.update(chunk)
      bytes += chunk.length
    }
  } catch (err) {
    if (err instanceof RefusedMember) return {...found(), unsafe: {path: displayName(err.path), reason: err.reason}}
    if (err instanceof TarFormatError) throw new Error(`the volume's tar stream is not readable (${err.message})`)
    throw err
  } finally {
    stream.destroy()
  }
  return {...found(), canonical: {bytes, sha256: hash.digest('hex')}}
}

/** Re-encodes the archived stream again, deterministically, and fails rather than send a byte the scan did not approve. */
export async function* approvedCanonicalTar(stream: Readable, approved: CanonicalDigest): AsyncGenerator<Buffer> {
  const hash = createHash('sha256')
  let bytes = 0
  const differs = (what: string) => new Error(`the archived volume re-encoded to ${what} than when it was scanned; the archive changed during the restore: restore again`)
  for await (const chunk of canonicalVolumeTar(stream)) {
    bytes += chunk.length
    if (bytes > approved.bytes) throw differs(`more than the ${approved.bytes} bytes`)
    hash.update(chunk)
    yield chunk
  }
  if (bytes !== approved.bytes) throw differs(`${bytes} bytes, fewer`)
  if (hash.digest('hex') !== approved.sha256) throw differs('other bytes')
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
 * is the mount point), reads exactly BYTES of stdin, extracts them (umask 0:
 * busybox tar run by anyone but root creates files with the header's mode
 * less the umask and never chmods them) with
 * numeric owners (a name in the container's /etc/passwd must never remap an
 * archived id), drains what tar leaves unread (the end-of-archive padding),
 * and, when it has the tools, hashes what it received. It reports on stderr,
 * with the ids it ran as (which files can keep their owners depends on them)
 * and the mount's root as it ended up (tar cannot change a root it does not
 * own, which the platform made):
 *
 *   kubesnap-untar: tar-exit=0 uid=999 gids=999,1000 root=0:999:2777 sha256=<hex>     (or `unhashed`)
 *
 * No byte count, as in TAR_OUT_SCRIPT: `head -c N` bounds what is read, equal
 * sha256 means equal bytes, and a busybox `wc -c` reading a FIFO nearly
 * doubled the script's CPU (measured: 256 MiB in 5.2 s of CPU instead of 2.8).
 */
export const TAR_IN_SCRIPT = `d=$1 n=$2 m=$3
umask 0
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
root() { echo "root=$(stat -c %u:%g:%a "$d" 2>/dev/null)"; }
if [ -z "$t" ]; then
  head -c "$n" | { tar --numeric-owner -xf - -C "$d"; e=$?; cat >/dev/null; echo "kubesnap-untar: tar-exit=$e $ids $(root) unhashed" >&2; exit $e; }
  exit $?
fi
trap 'rm -rf "$t"' EXIT
sha256sum < "$t/sum" > "$t/sum.out" &
head -c "$n" | tee "$t/sum" | { tar --numeric-owner -xf - -C "$d"; echo $? > "$t/exit"; cat >/dev/null; }
wait
read s _ < "$t/sum.out"; read e < "$t/exit"
echo "kubesnap-untar: tar-exit=$e $ids $(root) sha256=$s" >&2
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
  /** The mount's root after the extraction, when the container has `stat`. */
  root?: FileOwner
  /** The ids tar ran with, when the container has `id`. */
  uid?: number
  gids?: number[]
}

/** Reads the script's report line out of stderr (pod-report.ts); undefined when there is none. */
export function parseUntarReport(stderr: string): PodUntarReport | undefined {
  const report = parsePodReport(stderr, 'kubesnap-untar', {uid: /^\d*$/, gids: /^[\d,]*$/, root: /^(\d+:\d+:[0-7]+)?$/})
  if (!report) return undefined
  const {uid, gids, root} = report.fields
  const [rootUid, rootGid, rootMode] = root ? root.split(':') : []
  return {
    tarExit: report.tarExit,
    ...(report.sha256 ? {sha256: report.sha256} : {}),
    ...(uid ? {uid: Number(uid), gids: (gids ?? '').split(',').filter(Boolean).map(Number)} : {}),
    ...(rootUid ? {root: {uid: Number(rootUid), gid: Number(rootGid), mode: parseInt(rootMode, 8)}} : {}),
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
  /** The archived tar stream (reader.readStream(entry)), opened once: it is re-encoded as it is sent. */
  stream: Readable
  /** What scanVolumeTar approved: the canonical stream's length and sha256, exactly what the pod must receive. */
  canonical: CanonicalDigest
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
  /** The mount's root as it ended up, when the pod could say. */
  root?: FileOwner
}

/** Streams one archived volume, re-encoded canonically, into the target's mount; throws unless the pod got every approved byte and tar succeeded. */
export async function streamVolumeIn(options: TarInOptions): Promise<TarInResult> {
  const {target, canonical} = options
  let sent = 0
  // Counted as it is handed out, for the progress line: no extra stream stage.
  const body = Readable.from((async function* () {
    for await (const chunk of approvedCanonicalTar(options.stream, canonical)) {
      sent += chunk.length
      yield chunk
    }
  })(), {objectMode: false})
  const timer = options.onProgress ? setInterval(() => options.onProgress!(sent), 500) : undefined
  try {
    const result = await execInPod(options.api, {
      namespace: options.namespace,
      pod: target.pod,
      container: target.container,
      command: tarInCommand(target.mountPath, canonical.bytes, options.mode),
      stdin: {length: canonical.bytes, stream: body},
      signal: options.signal,
      label: `\`tar xf - -C ${target.mountPath}\``,
    })
    const report = parseUntarReport(result.stderr)
    if (!report) throw new Error(`the pod did not report on the extraction (stderr: ${result.stderr.trim().slice(-200) || 'empty'})`)
    if (report.sha256 !== undefined && report.sha256 !== canonical.sha256) {
      throw new Error(`what the pod received has sha256 ${report.sha256.slice(0, 12)}…, the ${canonical.bytes} bytes approved by the scan have sha256 ${canonical.sha256.slice(0, 12)}…`)
    }
    if (result.stdinBytes !== canonical.bytes) throw new Error(`only ${result.stdinBytes} of ${canonical.bytes} bytes were sent`)
    return {bytes: result.stdinBytes, verified: report.sha256 ? 'pod-sha256' : 'exit-status', protocol: result.protocol, uid: report.uid, gids: report.gids, root: report.root}
  } finally {
    clearInterval(timer)
    options.stream.destroy()
    body.destroy()
  }
}

/**
 * The pod-side script that finishes what `tar x` leaves undone, one command
 * per member: `sh -c SCRIPT kubesnap-fixup DIR BYTES COMMAND…` reads BYTES of
 * stdin made of NUL-separated `ARG` and `./path` pairs (so no name is ever
 * parsed by a shell, and a name starting with `-` is no option) and runs
 * `COMMAND ARG ./path` for each (`chown -h 999:999`, `chmod 700`).
 */
export const FIXUP_SCRIPT = `cd "$1" || exit 1
n=$2
shift 2
head -c "$n" | xargs -0 -n 2 "$@"
`

/** The stdin of FIXUP_SCRIPT: each member's argument, then its path from the mount. */
export function fixupInput(members: Array<{arg: string; path: string}>): Buffer {
  return Buffer.concat(members.flatMap((m) => [Buffer.from(`${m.arg}\0`), Buffer.from('./', 'latin1'), Buffer.from(m.path.replace(/^(\.\/)+/, ''), 'latin1'), Buffer.from([0])]))
}

/** Runs `command ARG ./path` for each member in the target's mount (FIXUP_SCRIPT). */
export async function fixUpMembers(options: {api: KubeApi; namespace: string; target: TarTarget; command: string[]; members: Array<{arg: string; path: string}>; signal?: AbortSignal}): Promise<void> {
  const input = fixupInput(options.members)
  await execInPod(options.api, {
    namespace: options.namespace,
    pod: options.target.pod,
    container: options.target.container,
    command: ['sh', '-c', FIXUP_SCRIPT, 'kubesnap-fixup', options.target.mountPath, String(input.length), ...options.command],
    stdin: {length: input.length, stream: Readable.from([input])},
    signal: options.signal,
    label: `\`${options.command.join(' ')}\` on ${options.members.length} member(s)`,
  })
}
