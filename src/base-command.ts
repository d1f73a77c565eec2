/**
 * The base of every kubesnap command: kubectl's connection flags, `--json`,
 * and exit codes that hold in `--json` mode too.
 */
import {Command, Flags, type Interfaces} from '@oclif/core'
import type {Connection} from './cluster/index.js'
import {checkNamespace} from './archive/naming.js'
import {configureS3} from './archive/s3-url.js'
import {EXIT, KubesnapError} from './errors.js'

export type CommandFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof KubesnapCommand)['baseFlags'] & T['flags']>
export type CommandArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>

export abstract class KubesnapCommand<T extends typeof Command> extends Command {
  static override enableJsonFlag = true

  static override baseFlags = {
    kubeconfig: Flags.string({
      summary: 'Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster).',
      helpGroup: 'CONNECTION',
    }),
    context: Flags.string({
      summary: 'The kubeconfig context to use (default: its current context).',
      helpGroup: 'CONNECTION',
    }),
    namespace: Flags.string({
      char: 'n',
      summary: "The namespace (default: the context's namespace, then default).",
      helpGroup: 'CONNECTION',
    }),
    's3-endpoint': Flags.string({
      summary: 'The S3-compatible endpoint for s3:// locations, e.g. https://minio.example:9000 (default: $AWS_ENDPOINT_URL, else AWS); path-style addressing.',
      helpGroup: 'S3',
    }),
    profile: Flags.string({
      summary: 'The AWS profile (in ~/.aws/credentials and config) for s3:// locations (default: $AWS_PROFILE, else default).',
      helpGroup: 'S3',
    }),
  }

  protected flags!: CommandFlags<T>
  protected args!: CommandArgs<T>

  public override async init(): Promise<void> {
    await super.init()
    const {args, flags} = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (super.ctor as typeof KubesnapCommand).baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      args: this.ctor.args,
      strict: this.ctor.strict,
    })
    this.flags = flags as CommandFlags<T>
    this.args = args as CommandArgs<T>
    // A namespace Kubernetes cannot have is a typo: a usage error before anything runs.
    if (this.flags.namespace !== undefined) checkNamespace(this.flags.namespace, '-n')
    // Only recorded here: the AWS SDK is loaded when an s3:// location is used.
    configureS3({endpoint: this.flags['s3-endpoint'], profile: this.flags.profile})
  }

  /**
   * Opens the connection the flags describe, or `settings` when a command
   * merged them with a plan. The cluster code is loaded here, so commands
   * that only read archives never load it (test/module-graph.test.ts).
   */
  protected async connect(settings?: {kubeconfig?: string; context?: string; namespace?: string}): Promise<Connection> {
    const {connect} = await import('./cluster/index.js')
    const connection = connect(settings ?? {kubeconfig: this.flags.kubeconfig, context: this.flags.context, namespace: this.flags.namespace})
    if (connection.config.namespaceSource === 'context') checkNamespace(connection.namespace, `The namespace of context ${connection.config.context}`)
    this.connections.push(connection)
    return connection
  }

  private connections: Connection[] = []

  /** Prints a warning on stderr unless `--json` is on (then it belongs in the result). */
  protected note(message: string): void {
    if (!this.jsonEnabled()) this.logToStderr(`Warning: ${message}`)
  }

  public override async catch(err: Error & {exitCode?: number; oclif?: {exit?: number}; skipOclifErrorHandling?: boolean}): Promise<unknown> {
    // oclif's --json path reads exitCode, its text path reads oclif.exit: keep both.
    const exit = err.exitCode ?? err.oclif?.exit ?? EXIT.failed
    if (!(err instanceof KubesnapError)) {
      err.exitCode = exit
      err.oclif = {...err.oclif, exit}
    }
    process.exitCode = exit
    if (this.jsonEnabled()) return super.catch(err)
    // One unwrapped line that logs and runbooks can grep; oclif would wrap it at
    // 80 columns behind " ›" marks. Unexpected errors keep their stack for reports.
    this.logToStderr(`Error: ${err.message}`)
    if (!(err instanceof KubesnapError) && !err.oclif?.exit && process.env.DEBUG) this.logToStderr(err.stack ?? '')
    err.skipOclifErrorHandling = true
    throw err
  }

  /** The `--json` error shape: the sentence, the exit code, and a code when there is one. */
  protected override toErrorJson(err: Error & {exitCode?: number; code?: string}): unknown {
    return {error: {message: err.message, exitCode: err.exitCode ?? EXIT.failed, ...(err.code ? {code: err.code} : {})}}
  }

  public override async finally(err: Error | undefined): Promise<unknown> {
    for (const c of this.connections) c.api.close()
    return super.finally(err)
  }
}
