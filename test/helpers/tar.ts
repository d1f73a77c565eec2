/**
 * Tar streams built byte by byte, as a hostile archive holds them, and the
 * trees tar extracts from them described in full (owners, modes, mtimes,
 * links, hard-link groups, names as bytes).
 */
import {createHash} from 'node:crypto'
import {lstat, readdir, readFile, readlink} from 'node:fs/promises'
import {join} from 'node:path'
import {Header} from 'tar'

/** A tar stream of simple members, encoded by node-tar (what an ordinary archive holds). */
export function tarOf(members: Array<{path: string; type?: string; linkpath?: string; content?: string}>): Buffer {
  const blocks: Buffer[] = []
  for (const m of members) {
    const body = Buffer.from(m.content ?? '')
    const header = Buffer.alloc(512)
    new Header({path: m.path, type: (m.type ?? 'File') as 'File', linkpath: m.linkpath, size: body.length, mode: 0o644, mtime: new Date(0), uid: 0, gid: 0}).encode(header)
    blocks.push(header, body, Buffer.alloc((512 - (body.length % 512)) % 512))
  }
  return Buffer.concat([...blocks, Buffer.alloc(1024)])
}

/** One raw header's fields: strings are written as latin1 bytes; a Buffer is written as is (to forge a number field). */
export interface RawFields {
  name: string
  /** The type flag: '0', '5', 'L', 'x', 'S'… */
  flag?: string
  mode?: number | Buffer
  uid?: number | Buffer
  gid?: number | Buffer
  size?: number | Buffer
  mtime?: number | Buffer
  linkname?: string
  /** 'gnu' (`ustar  `, default) or 'posix' (`ustar\0` `00`, with a prefix field). */
  magic?: 'gnu' | 'posix'
  prefix?: string
  devmajor?: number
  devminor?: number
  /** Break the checksum. */
  badChecksum?: boolean
}

/** A 512-byte header block with a correct checksum (unless asked otherwise). */
export function rawHeader(f: RawFields): Buffer {
  const block = Buffer.alloc(512)
  const number = (offset: number, length: number, value: number | Buffer | undefined) => {
    if (Buffer.isBuffer(value)) value.copy(block, offset, 0, length)
    else block.write(`${(value ?? 0).toString(8).padStart(length - 1, '0')}\u0000`, offset, length, 'latin1')
  }
  block.write(f.name, 0, 100, 'latin1')
  number(100, 8, f.mode ?? 0o644)
  number(108, 8, f.uid)
  number(116, 8, f.gid)
  number(124, 12, f.size)
  number(136, 12, f.mtime ?? 1_700_000_000)
  block.write(f.flag ?? '0', 156, 1, 'latin1')
  block.write(f.linkname ?? '', 157, 100, 'latin1')
  block.write(f.magic === 'posix' ? 'ustar\u000000' : 'ustar  \u0000', 257, 8, 'latin1')
  number(329, 8, f.devmajor)
  number(337, 8, f.devminor)
  if (f.prefix) block.write(f.prefix, 345, 155, 'latin1')
  block.fill(0x20, 148, 156)
  let sum = 0
  for (const byte of block) sum += byte
  block.write(`${(sum + (f.badChecksum ? 1 : 0)).toString(8).padStart(6, '0')}\u0000 `, 148, 8, 'latin1')
  return block
}

/** A header and its data, padded to whole blocks; the header's size is the data's unless given. */
export function rawEntry(f: RawFields, data: Buffer | string = ''): Buffer {
  const body = Buffer.isBuffer(data) ? data : Buffer.from(data, 'latin1')
  return Buffer.concat([rawHeader({size: body.length, ...f}), body, Buffer.alloc((512 - (body.length % 512)) % 512)])
}

/** PAX records, `LEN key=value\n` each. */
export function paxData(records: Array<[string, string]>): Buffer {
  return Buffer.concat(records.map(([key, value]) => {
    const body = ` ${key}=${value}\n`
    let length = body.length + 1
    while (String(length).length + body.length !== length) length++
    return Buffer.from(`${length}${body}`, 'latin1')
  }))
}

/** A GNU long name (`L`) or long link name (`K`) entry for `value`. */
export function longEntry(flag: 'L' | 'K', value: string): Buffer {
  return rawEntry({name: '././@LongLink', flag, mode: 0}, `${value}\u0000`)
}

/** Entries followed by the end-of-archive marker. */
export function rawTar(...entries: Buffer[]): Buffer {
  return Buffer.concat([...entries, Buffer.alloc(1024)])
}

/**
 * Every path under `dir` (bytes shown as latin1, the root as `.`) with its
 * type, mode, owner, size, content sha256 or link target, file mtime, and
 * for files with more than one link the first path of its inode.
 */
export async function describeTree(dir: string): Promise<Record<string, string>> {
  const tree: Record<string, string> = {}
  const inodes = new Map<number, string>()
  const walk = async (relative: Buffer): Promise<void> => {
    const names = (await readdir(Buffer.from(join(dir, relative.toString('latin1')), 'latin1'), {encoding: 'buffer'})).sort(Buffer.compare)
    for (const name of names) {
      const path = relative.length === 0 ? name : Buffer.concat([relative, Buffer.from('/'), name])
      const full = Buffer.concat([Buffer.from(`${dir}/`), path])
      const stats = await lstat(full)
      const key = path.toString('latin1')
      const owner = `${(stats.mode & 0o7777).toString(8).padStart(4, '0')} ${stats.uid}:${stats.gid}`
      if (stats.isSymbolicLink()) tree[key] = `symlink ${stats.uid}:${stats.gid} -> ${(await readlink(full, {encoding: 'buffer'})).toString('latin1')}`
      else if (stats.isDirectory()) {
        tree[key] = `dir ${owner}`
        await walk(path)
      } else {
        const kind = stats.isFile() ? `file ${createHash('sha256').update(await readFile(full)).digest('hex').slice(0, 16)}` : stats.isFIFO() ? 'fifo' : 'special'
        const first = stats.nlink > 1 ? inodes.get(stats.ino) : undefined
        if (stats.nlink > 1 && !first) inodes.set(stats.ino, key)
        tree[key] = `${kind} ${owner} mtime=${Math.floor(stats.mtimeMs / 1000)}${first ? ` link-of ${first}` : ''}`
      }
    }
  }
  await walk(Buffer.alloc(0))
  return tree
}
