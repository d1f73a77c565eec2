/**
 * How the snapshot pipeline shows what it does, without knowing how: the
 * command implements it (listr2 on a terminal, timestamped lines in logs,
 * nothing with --json or --quiet).
 */

/** What a running phase tells the person watching: its title as it changes, and its latest line of output. */
export interface PhaseReport {
  title: string
  output: string
}

/** The pipeline's view of progress. */
export interface SnapshotProgress {
  /** Runs one phase under `title`; the phase fails when `run` throws. */
  phase<T>(title: string, run: (report: PhaseReport) => Promise<T>): Promise<T>
  /** A warning that does not stop the run (the command prints it on stderr). */
  note(message: string): void
}
