/**
 * The archive layer's public API: write, open, verify and list kubesnap
 * archives (format version 1). No Kubernetes access happens here.
 */
export {ArchiveError, type ArchiveProblem} from './errors.js'
export {AGE_SUFFIX, ageCipher, ageDecrypt, AgeIdentities, loadIdentities, parseRecipients, type AgeCipher, type AgeRecipient} from './crypto.js'
export {acquireLock, isProcessAlive, LOCK_FILE, LockedError, type DirLock, type LockHolder} from './lock.js'
export {listArchives, type ArchiveListing} from './list.js'
export * from './manifest.js'
export {
  ARCHIVE_SUFFIX,
  formatArchiveName,
  listArchiveFiles,
  nextNumber,
  parseArchiveName,
  type ArchiveFile,
  type ArchiveName,
} from './naming.js'
export {ArchiveReader, openArchive, type OpenOptions} from './reader.js'
export {
  checkArchiveSignature,
  fingerprint,
  loadSigningKey,
  loadTrustedKeys,
  ManifestSigner,
  SIGNATURE_NAMESPACE,
  type SignatureCheck,
  type TrustedKey,
} from './sign.js'
export {verifyArchive, type VerifyOptions, type VerifyResult} from './verify.js'
export {
  ArchiveWriter,
  createArchiveWriter,
  DEFAULT_GZIP_LEVEL,
  DEFAULT_PART_SIZE,
  type ArchiveWriterOptions,
  type EntryCipher,
  type FinishFields,
  type FinishResult,
  type ManifestSigning,
  type ObjectMeta,
  type StreamMeta,
  type StreamOptions,
} from './writer.js'
