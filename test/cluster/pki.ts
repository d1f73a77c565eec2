/**
 * The test cluster's certificates, made with `openssl`: one CA that every
 * component trusts (apiserver clients, kubelet serving certs, the cluster
 * signer), certificates issued from it, and the service-account key pair.
 */
import {randomBytes} from 'node:crypto'
import {mkdir, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {execa} from 'execa'

/** A certificate authority on disk: its certificate, key and the directory issued files go to. */
export interface CertificateAuthority {
  dir: string
  certFile: string
  keyFile: string
}

/** A certificate and its private key, PEM files. */
export interface IssuedCert {
  certFile: string
  keyFile: string
}

/** What a certificate is for: TLS client, TLS server, or both. */
export type CertUsage = 'client' | 'server' | 'both'

/** The request for one certificate. */
export interface CertRequest {
  /** File stem: `<name>.crt` and `<name>.key` in the CA's directory. */
  name: string
  /** Common name: the user name the apiserver sees for a client cert. */
  cn: string
  /** Organizations: the groups the apiserver sees for a client cert. */
  organizations?: string[]
  sans?: {dns?: string[]; ip?: string[]}
  usage: CertUsage
}

/** Everything the control plane and the node need to authenticate each other. */
export interface Pki {
  dir: string
  ca: CertificateAuthority
  serviceAccount: {publicKeyFile: string; privateKeyFile: string}
}

// Long enough for any test run, short enough that nothing mistakes these for real.
const DAYS = '30'
// P-256 keys: generated in milliseconds where RSA takes a noticeable share of start-up; Go and Node accept both.
const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1']

/** Creates a CA and the service-account key pair in `dir`. */
export async function createPki(dir: string): Promise<Pki> {
  await mkdir(dir, {recursive: true})
  const ca: CertificateAuthority = {dir, certFile: path.join(dir, 'ca.crt'), keyFile: path.join(dir, 'ca.key')}
  await openssl('req', '-x509', ...EC_KEY, '-nodes', '-days', DAYS,
    '-subj', '/CN=kubesnap-test-ca', '-keyout', ca.keyFile, '-out', ca.certFile,
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature')
  const serviceAccount = {publicKeyFile: path.join(dir, 'sa.pub'), privateKeyFile: path.join(dir, 'sa.key')}
  await openssl('genrsa', '-out', serviceAccount.privateKeyFile, '2048')
  await openssl('rsa', '-in', serviceAccount.privateKeyFile, '-pubout', '-out', serviceAccount.publicKeyFile)
  return {dir, ca, serviceAccount}
}

/** Issues a certificate signed by `ca`, written next to the CA's files. */
export async function issueCert(ca: CertificateAuthority, request: CertRequest): Promise<IssuedCert> {
  if (!/^[A-Za-z0-9._-]+$/.test(request.name)) throw new Error(`certificate name ${JSON.stringify(request.name)} is not a plain file name`)
  const base = path.join(ca.dir, request.name)
  const issued = {certFile: `${base}.crt`, keyFile: `${base}.key`}
  const csrFile = `${base}.csr`
  const extFile = `${base}.ext`
  const subject = [...(request.organizations ?? []).map((o) => `/O=${escapeRdn(o)}`), `/CN=${escapeRdn(request.cn)}`].join('')
  await openssl('req', '-new', ...EC_KEY, '-nodes', '-subj', subject, '-keyout', issued.keyFile, '-out', csrFile)
  await writeFile(extFile, extensions(request))
  await openssl('x509', '-req', '-in', csrFile, '-CA', ca.certFile, '-CAkey', ca.keyFile,
    // A random serial rather than a shared serial file: certs may be issued concurrently.
    '-set_serial', `0x${randomBytes(16).toString('hex')}`,
    '-days', DAYS, '-sha256', '-extfile', extFile, '-out', issued.certFile)
  return issued
}

/** The v3 extensions file for a request: usages and subject alternative names. */
function extensions(request: CertRequest): string {
  const usages = {client: 'clientAuth', server: 'serverAuth', both: 'serverAuth,clientAuth'}[request.usage]
  const lines = ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment', `extendedKeyUsage=${usages}`]
  const sans = [...(request.sans?.dns ?? []).map((d) => `DNS:${d}`), ...(request.sans?.ip ?? []).map((ip) => `IP:${ip}`)]
  if (sans.length > 0) lines.push(`subjectAltName=${sans.join(',')}`)
  return lines.join('\n') + '\n'
}

/** Escapes the characters `-subj` treats specially (names like `system:node:x` pass as they are). */
function escapeRdn(value: string): string {
  return value.replace(/[\\/=+]/g, (c) => `\\${c}`)
}

async function openssl(...args: string[]): Promise<void> {
  try {
    await execa('openssl', args)
  } catch (err) {
    const stderr = (err as {stderr?: string}).stderr ?? ''
    throw new Error(`openssl ${args[0]} failed: ${stderr.trim() || String(err)}`, {cause: err})
  }
}
