/**
 * A real Kubernetes v1.20.2 control plane on loopback: etcd, kube-apiserver,
 * kube-controller-manager and kube-scheduler, built once from Debian's source
 * package by build.sh and started here in seconds. Flags and their reasons are
 * in /work/shared/TEST-CLUSTER.md; what a kubelet and storage would add comes
 * from node/ and storage/.
 */
import {randomBytes} from 'node:crypto'
import {constants, rmSync} from 'node:fs'
import {access, mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {KubeConfig} from '@kubernetes/client-node'
import yaml from 'js-yaml'
import {createPki, issueCert, type IssuedCert, type Pki} from './pki.js'
import {installPodSecurity} from './podsecurity.js'
import {freePorts} from './ports.js'
import {held, onAbandon, startProcess, tailLog, waitForHealthy, type ManagedProcess} from './processes.js'
import {SetupError} from './setup-error.js'

/** The Kubernetes version build.sh makes. */
export const KUBERNETES_VERSION = 'v1.20.2'

/** The namespace-only user the apiserver knows by a static token. */
export const USER_NAME = 'kubesnap-user'

/** The cluster-admin user (group `system:masters`). */
export const ADMIN_NAME = 'kubesnap-admin'

/** The range Services get their ClusterIPs from. */
export const SERVICE_CLUSTER_IP_RANGE = '10.96.0.0/16'

/** Where build.sh puts the binaries (it reads the same variable). */
export function binaryDir(): string {
  return path.join(process.env.KUBESNAP_TEST_CACHE ?? path.join(os.homedir(), '.cache', 'kubesnap-test'), KUBERNETES_VERSION)
}

/** A running control plane. */
export interface ControlPlane {
  /** State directory: certificates, kubeconfigs, etcd data, one log per component. */
  dir: string
  /** The apiserver's URL, `https://127.0.0.1:<port>`. */
  server: string
  caCertFile: string
  /** The CA and service-account keys, to issue more certificates (the node's) from. */
  pki: Pki
  kubeconfigs: {admin: string; user: string}
  userName: string
  /** Bearer tokens of the two static users. */
  tokens: {admin: string; user: string}
  /** The component processes, for inspection (pids, logs). */
  processes: ManagedProcess[]
  /** Stops every component, newest first, then removes the state directory unless it was given or KUBESNAP_KEEP_CLUSTER=1. */
  stop(): Promise<void>
}

/** How to start a control plane. */
export interface ControlPlaneOptions {
  /** State directory to use (created if missing, never removed); default a fresh `kubesnap-cluster-*` under the temp dir, removed on stop. */
  dir?: string
  /** Receives one line per step (component started, healthy). */
  log?: (line: string) => void
  /** How long each component may take to become healthy. */
  timeoutMs?: number
}

const BINARIES = ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler'] as const

/** Starts etcd, kube-apiserver, kube-controller-manager and kube-scheduler; builds them first if they are missing. */
export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  if (process.env.KUBESNAP_TEST_UNIT === '1') {
    throw new SetupError('A unit test tried to start the test cluster: a test that needs it is not a unit test, so move it out of src/ and fixtures/ (or drop .unit from its name).')
  }
  const log = options.log ?? (() => {})
  const timeoutMs = options.timeoutMs ?? 60_000
  await ensureBinaries()
  const ownDir = options.dir === undefined
  const dir = options.dir ?? (await mkdtemp(path.join(os.tmpdir(), 'kubesnap-cluster-')))
  await mkdir(dir, {recursive: true})

  const keep = !ownDir || process.env.KUBESNAP_KEEP_CLUSTER === '1'
  // If this process ends without stop(), the children are killed anyway; take the temp dir with them.
  const forget = keep ? () => {} : onAbandon(() => rmSync(dir, {recursive: true, force: true}))
  const processes: ManagedProcess[] = []
  let stopped: Promise<void> | undefined
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      // Clients first, etcd last, so no component spends its last seconds in error loops.
      for (const proc of [...processes].reverse()) await proc.stop()
      forget()
      if (keep) log(`cluster state kept in ${dir}`)
      else await rm(dir, {recursive: true, force: true})
    })()
    return stopped
  }

  try {
    const [etcdClient, etcdPeer, apiserverPort, controllerManagerPort, schedulerPort] = await freePorts(5)
    const server = `https://127.0.0.1:${apiserverPort}`
    const etcdUrl = `http://127.0.0.1:${etcdClient}`

    // etcd needs no certificate: start it while openssl works.
    const etcd = startProcess({
      name: 'etcd',
      command: 'etcd',
      logDir: dir,
      args: [
        '--name=kubesnap', `--data-dir=${path.join(dir, 'etcd')}`,
        `--listen-client-urls=${etcdUrl}`, `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`, `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-cluster=kubesnap=http://127.0.0.1:${etcdPeer}`,
      ],
    })
    processes.push(etcd)
    log(`etcd started (pid ${etcd.pid}, ${etcdUrl})`)

    const certs = await createCertificates(path.join(dir, 'pki'))
    const {pki} = certs
    const tokens = {admin: randomToken(), user: randomToken()}
    const tokenFile = path.join(dir, 'tokens.csv')
    // Static token file: token,user,uid[,"groups"]. The user has no group: only its RoleBindings give it rights.
    await writeFile(tokenFile, `${tokens.admin},${ADMIN_NAME},${ADMIN_NAME},"system:masters"\n${tokens.user},${USER_NAME},${USER_NAME}\n`, {mode: 0o600})
    await waitForHealthy(etcd, {url: `${etcdUrl}/health`, timeoutMs})

    const bin = binaryDir()
    const apiserver = startProcess({
      name: 'kube-apiserver',
      command: path.join(bin, 'kube-apiserver'),
      logDir: dir,
      args: [
        '--bind-address=127.0.0.1', `--secure-port=${apiserverPort}`, '--advertise-address=127.0.0.1',
        // 1.20 would otherwise also serve unauthenticated HTTP on 8080.
        '--insecure-port=0',
        // The `kubernetes` Endpoints cannot hold a loopback IP.
        '--endpoint-reconciler-type=none',
        `--etcd-servers=${etcdUrl}`,
        `--tls-cert-file=${certs.apiserver.certFile}`, `--tls-private-key-file=${certs.apiserver.keyFile}`,
        `--client-ca-file=${pki.ca.certFile}`,
        `--token-auth-file=${tokenFile}`,
        '--authorization-mode=Node,RBAC',
        // NodeRestriction as kubeadm does: the Node authorizer's partner, limiting a node to its own
        // objects. PodSecurityPolicy: pods must pass a policy their creator may use (podsecurity.ts).
        '--enable-admission-plugins=NodeRestriction,PodSecurityPolicy',
        '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
        `--service-account-key-file=${pki.serviceAccount.publicKeyFile}`,
        `--service-account-signing-key-file=${pki.serviceAccount.privateKeyFile}`,
        `--service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGE}`,
        '--kubelet-preferred-address-types=InternalIP',
        `--kubelet-client-certificate=${certs.kubeletClient.certFile}`, `--kubelet-client-key=${certs.kubeletClient.keyFile}`,
        // Without it 1.20 does not verify the kubelet's serving certificate at all.
        `--kubelet-certificate-authority=${pki.ca.certFile}`,
        '--allow-privileged=true',
      ],
    })
    processes.push(apiserver)
    log(`kube-apiserver started (pid ${apiserver.pid}, ${server})`)
    const ca = await readFile(pki.ca.certFile, 'utf8')
    await waitForHealthy(apiserver, {url: `${server}/readyz`, ca, token: tokens.admin, timeoutMs})
    log('kube-apiserver ready')

    const kubeconfigs = {
      admin: await writeKubeconfig(path.join(dir, 'admin.kubeconfig'), {server, ca, user: ADMIN_NAME, auth: {token: tokens.admin}}),
      user: await writeKubeconfig(path.join(dir, 'user.kubeconfig'), {server, ca, user: USER_NAME, auth: {token: tokens.user}}),
    }
    // Before any controller runs: from now on no pod is admitted without a policy it may use.
    const adminConfig = new KubeConfig()
    adminConfig.loadFromFile(kubeconfigs.admin)
    await installPodSecurity(adminConfig)
    log('pod security policies installed')
    const controllerManagerKubeconfig = await writeKubeconfig(path.join(dir, 'kube-controller-manager.kubeconfig'),
      {server, ca, user: 'system:kube-controller-manager', auth: certs.controllerManager})
    const schedulerKubeconfig = await writeKubeconfig(path.join(dir, 'kube-scheduler.kubeconfig'),
      {server, ca, user: 'system:kube-scheduler', auth: certs.scheduler})

    const controllerManager = startProcess({
      name: 'kube-controller-manager',
      command: path.join(bin, 'kube-controller-manager'),
      logDir: dir,
      args: [
        ...componentArgs(controllerManagerKubeconfig, controllerManagerPort, pki.ca.certFile, path.join(dir, 'kube-controller-manager')),
        '--controllers=*',
        // Each controller acts as its own ServiceAccount, as in a real cluster, so RBAC is exercised.
        '--use-service-account-credentials=true',
        `--service-account-private-key-file=${pki.serviceAccount.privateKeyFile}`,
        `--root-ca-file=${pki.ca.certFile}`,
        `--cluster-signing-cert-file=${pki.ca.certFile}`, `--cluster-signing-key-file=${pki.ca.keyFile}`,
      ],
    })
    processes.push(controllerManager)
    log(`kube-controller-manager started (pid ${controllerManager.pid})`)
    const scheduler = startProcess({
      name: 'kube-scheduler',
      command: path.join(bin, 'kube-scheduler'),
      logDir: dir,
      args: componentArgs(schedulerKubeconfig, schedulerPort, pki.ca.certFile, path.join(dir, 'kube-scheduler')),
    })
    processes.push(scheduler)
    log(`kube-scheduler started (pid ${scheduler.pid})`)
    await Promise.all([
      waitForHealthy(controllerManager, {url: `https://127.0.0.1:${controllerManagerPort}/healthz`, timeoutMs}),
      waitForHealthy(scheduler, {url: `https://127.0.0.1:${schedulerPort}/healthz`, timeoutMs}),
    ])
    log('kube-controller-manager and kube-scheduler healthy')

    return {dir, server, caCertFile: pki.ca.certFile, pki, kubeconfigs, userName: USER_NAME, tokens, processes, stop}
  } catch (err) {
    await stop()
    throw err
  }
}

/**
 * Runs build.sh when a binary is missing, its output in `<cache>/<version>.build.log`;
 * a failure is a SetupError with the log's path and last lines.
 */
async function ensureBinaries(): Promise<void> {
  const present = await Promise.all(BINARIES.map((b) => access(path.join(binaryDir(), b)).then(() => true, () => false)))
  if (present.every(Boolean)) return
  const cache = path.dirname(binaryDir())
  await writableDirectory(cache)
  const script = fileURLToPath(new URL('build.sh', import.meta.url))
  const name = `${KUBERNETES_VERSION}.build`
  const logFile = path.join(cache, `${name}.log`)
  // A first build is long and silent otherwise: one line on stderr says why we wait (stdout stays the caller's).
  process.stderr.write(`building the ${KUBERNETES_VERSION} control plane into ${binaryDir()} (first time only, several minutes; log: ${logFile})\n`)
  // Test processes started together must not build into the same tree at once: the
  // lock makes the later ones wait, then build.sh finds the binaries and returns.
  // startProcess: the build dies with us, as every component does.
  const build = startProcess({name, command: 'flock', args: [`${binaryDir()}.lock`, script], logDir: cache})
  // Its child is unreferenced (processes.ts): hold the event loop while it builds.
  const code = await held(build.exited)
  if (code !== 0) {
    throw new SetupError(`Building the control plane failed (${code === null ? 'killed' : `exit ${code}`}): read ${logFile}, fix what it says, then run again; its last lines:\n${await tailLog(logFile, 10)}`)
  }
}

/** Makes sure `dir` exists and this user can write in it, or throws a SetupError saying how to choose another. */
async function writableDirectory(dir: string): Promise<void> {
  try {
    await mkdir(dir, {recursive: true})
    await access(dir, constants.W_OK)
  } catch (err) {
    throw new SetupError(`The test cache directory ${dir} cannot be written (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): make it writable, or set KUBESNAP_TEST_CACHE to a directory that is.`, {cause: err})
  }
}

/** The certificates of the control plane's own identities. */
async function createCertificates(dir: string): Promise<{pki: Pki; apiserver: IssuedCert; kubeletClient: IssuedCert; controllerManager: IssuedCert; scheduler: IssuedCert}> {
  const pki = await createPki(dir)
  const [apiserver, kubeletClient, controllerManager, scheduler] = await Promise.all([
    issueCert(pki.ca, {
      name: 'kube-apiserver', cn: 'kube-apiserver', usage: 'server',
      // Loopback for us; the in-cluster names and the first service IP for pods that talk to the `kubernetes` Service.
      sans: {
        ip: ['127.0.0.1', '10.96.0.1'],
        dns: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local'],
      },
    }),
    // As kubeadm's apiserver-kubelet-client: the node may authorize it as an admin.
    issueCert(pki.ca, {name: 'kube-apiserver-kubelet-client', cn: 'kube-apiserver-kubelet-client', organizations: ['system:masters'], usage: 'client'}),
    issueCert(pki.ca, {name: 'kube-controller-manager', cn: 'system:kube-controller-manager', usage: 'client'}),
    issueCert(pki.ca, {name: 'kube-scheduler', cn: 'system:kube-scheduler', usage: 'client'}),
  ])
  return {pki, apiserver, kubeletClient, controllerManager, scheduler}
}

/** Flags controller-manager and scheduler share: who they are, where they serve /healthz. */
function componentArgs(kubeconfig: string, port: number, caCertFile: string, certDir: string): string[] {
  return [
    `--kubeconfig=${kubeconfig}`, `--authentication-kubeconfig=${kubeconfig}`, `--authorization-kubeconfig=${kubeconfig}`,
    // Without these two it polls kube-system's extension-apiserver-authentication ConfigMap and logs warnings forever.
    '--authentication-skip-lookup=true', `--client-ca-file=${caCertFile}`,
    '--bind-address=127.0.0.1', `--secure-port=${port}`,
    // 1.20 otherwise also opens its old plain-HTTP port on 0.0.0.0.
    '--port=0',
    '--leader-elect=false',
    // Its self-signed serving cert goes here rather than /var/run/kubernetes.
    `--cert-dir=${certDir}`,
  ]
}

/** What a kubeconfig needs: one cluster, one user, one context. */
interface KubeconfigSpec {
  server: string
  /** PEM of the CA, embedded so the file works when copied elsewhere. */
  ca: string
  user: string
  auth: {token: string} | IssuedCert
  /** The context's namespace; omitted leaves it unset, as a fresh user's kubeconfig would. */
  namespace?: string
}

/** Writes a kubeconfig (mode 0600: it holds a credential) and returns its path. */
async function writeKubeconfig(file: string, spec: KubeconfigSpec): Promise<string> {
  const user = 'token' in spec.auth
    ? {token: spec.auth.token}
    : {'client-certificate': spec.auth.certFile, 'client-key': spec.auth.keyFile}
  const context: Record<string, string> = {cluster: 'kubesnap-test', user: spec.user}
  if (spec.namespace !== undefined) context.namespace = spec.namespace
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{name: 'kubesnap-test', cluster: {server: spec.server, 'certificate-authority-data': Buffer.from(spec.ca).toString('base64')}}],
    users: [{name: spec.user, user}],
    contexts: [{name: spec.user, context}],
    'current-context': spec.user,
  }
  await writeFile(file, yaml.dump(config), {mode: 0o600})
  return file
}

function randomToken(): string {
  return randomBytes(24).toString('hex')
}
