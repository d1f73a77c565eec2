/**
 * The seam between what produces archive entries (resources, volumes, dumps)
 * and what stores them (the archive writer): producers take an EntrySink and
 * never import the writer.
 */
import type {Readable} from 'node:stream'
import type {ObjectEntry, StreamCompression, StreamEntry} from './manifest.js'

/** What addObject needs to know about an object. */
export interface ObjectMeta {
  /** 'crd' files the object under `crds/` (CustomResourceDefinition definitions). */
  type?: 'object' | 'crd'
  kind: string
  group: string
  version: string
  resource: string
  name: string
}

/** What addStream needs to know about a stream. */
export type StreamMeta = Pick<StreamEntry, 'type' | 'name' | 'kind' | 'group' | 'version' | 'resource' | 'extra'>

export interface StreamOptions {
  /** Compress the input with gzip or store it as is (default: the writer's `compression`, else gzip). */
  compress?: StreamCompression
  /**
   * Called when the input has ended, before the entry is recorded: throw to
   * discard it. The place to check the exec status and compare rawSize/rawSha256
   * with what the pod counted, since an exec stream can lose its tail and end cleanly.
   */
  confirm?: (entry: StreamEntry) => void | Promise<void>
}

/** Where producers put archive entries: the archive writer implements it. */
export interface EntrySink {
  /** Adds one object (the raw JSON the server returned); returns its manifest entry. */
  addObject(meta: ObjectMeta, content: Buffer | string): Promise<ObjectEntry>
  /**
   * Adds a stream of unknown length (a volume's tar, a dump); returns its
   * manifest entry. A function for `input` opens the source only when the
   * sink is ready to read it. A failed stream leaves no trace in the archive.
   */
  addStream(meta: StreamMeta, input: Readable | (() => Readable | Promise<Readable>), options?: StreamOptions): Promise<StreamEntry>
}
