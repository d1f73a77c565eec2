/**
 * Keys for the age tests (holds no tests itself), made by the real tools:
 * age-keygen and ssh-keygen, once per process, in a temporary directory. And
 * a runner for the real `age` CLI.
 */
import {execFileSync, spawn} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

export interface AgeKeys {
  dir: string
  /** age-keygen's file, and its public key. */
  ageKey: string
  agePublic: string
  /** A second age key that is no recipient of anything. */
  otherAgeKey: string
  ed25519: string
  rsa: string
  /** ssh-keygen -m PEM: the older `BEGIN RSA PRIVATE KEY` file. */
  rsaPem: string
  /** ssh-keygen -N: protected by a passphrase. */
  ed25519Protected: string
  ecdsa: string
  rsa1024: string
}

let keys: AgeKeys | undefined

/** The test keys; the public halves of the ssh keys are at `${path}.pub`. */
export function ageKeys(): AgeKeys {
  if (keys) return keys
  const dir = mkdtempSync(join(tmpdir(), 'kubesnap-age-'))
  process.on('exit', () => rmSync(dir, {recursive: true, force: true}))
  const path = (name: string) => join(dir, name)
  const sshKeygen = (name: string, ...args: string[]) => {
    execFileSync('ssh-keygen', ['-q', '-C', 'test@kubesnap', '-f', path(name), ...args])
    return path(name)
  }
  execFileSync('age-keygen', ['-o', path('key.txt')], {stdio: 'ignore'})
  execFileSync('age-keygen', ['-o', path('other.txt')], {stdio: 'ignore'})
  keys = {
    dir,
    ageKey: path('key.txt'),
    agePublic: /public key: (age1\S+)/.exec(readFileSync(path('key.txt'), 'utf8'))![1],
    otherAgeKey: path('other.txt'),
    ed25519: sshKeygen('id_ed25519', '-t', 'ed25519', '-N', ''),
    rsa: sshKeygen('id_rsa', '-t', 'rsa', '-b', '2048', '-N', ''),
    rsaPem: sshKeygen('id_rsa_pem', '-t', 'rsa', '-b', '2048', '-N', '', '-m', 'PEM'),
    ed25519Protected: sshKeygen('id_protected', '-t', 'ed25519', '-N', 'correct horse'),
    ecdsa: sshKeygen('id_ecdsa', '-t', 'ecdsa', '-N', ''),
    rsa1024: sshKeygen('id_rsa1024', '-t', 'rsa', '-b', '1024', '-N', ''),
  }
  return keys
}

/** Runs the age CLI with `input` on stdin; resolves with its exit code, stdout and stderr. */
export function runAge(args: string[], input?: Buffer): Promise<{code: number | null; stdout: Buffer; stderr: string}> {
  return new Promise((resolve, reject) => {
    const child = spawn('age', args, {stdio: ['pipe', 'pipe', 'pipe']})
    const out: Buffer[] = []
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => out.push(d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('error', (err) => reject(new Error(`Running age failed (${err.message}); the tests need the age CLI: apt-get install age.`)))
    child.on('close', (code) => resolve({code, stdout: Buffer.concat(out), stderr}))
    child.stdin.on('error', () => {}) // age may exit before reading all of it; its exit code says why
    child.stdin.end(input ?? Buffer.alloc(0))
  })
}
