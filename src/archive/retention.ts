/**
 * Retention: which snapshots of one namespace a policy keeps, with the
 * semantics of `restic forget` (internal/restic/snapshot_policy.go), counted
 * in UTC. Pure: `kubesnap prune` lists the files and deletes what this says.
 *
 * Snapshots are walked newest first. `keepLast` keeps the N newest. Each
 * calendar rule (hourly, daily, weekly by ISO week, monthly, yearly) keeps the
 * newest snapshot of each of its N most recent buckets that hold a snapshot,
 * so gaps (days without snapshots) do not use up the count. A rule that still
 * has counts left when it reaches the oldest snapshot keeps that one too, as
 * restic does since 0.17: the history kept is as long as the policy allows.
 * A snapshot kept by any rule is kept, with every rule that kept it as a
 * reason. The newest snapshot (highest number) is never removed, nor is the
 * newest complete one: a run of partial snapshots (a claim's data missing)
 * never costs the last whole one.
 */

export interface RetentionPolicy {
  keepLast?: number
  keepHourly?: number
  keepDaily?: number
  keepWeekly?: number
  keepMonthly?: number
  keepYearly?: number
}

export interface RetentionSnapshot {
  number: number
  /** When the snapshot was taken (from the archive name). */
  time: Date
  /** A partial snapshot (some of what it should hold is missing); absent: complete. */
  partial?: boolean
}

export interface RetentionPlan {
  /** Newest first, with every reason it is kept. */
  keep: {number: number; reasons: string[]}[]
  /** Snapshot numbers to delete, newest first. */
  remove: number[]
}

/** The rules in restic's order: a reason names the rule and the bucket that kept the snapshot. */
const RULES: readonly {key: keyof RetentionPolicy; name: string; bucket: (time: Date, number: number) => string}[] = [
  {key: 'keepLast', name: 'last', bucket: (_, number) => `#${number}`},
  {key: 'keepHourly', name: 'hourly', bucket: (t) => t.toISOString().slice(0, 13)},
  {key: 'keepDaily', name: 'daily', bucket: (t) => t.toISOString().slice(0, 10)},
  {key: 'keepWeekly', name: 'weekly', bucket: isoWeek},
  {key: 'keepMonthly', name: 'monthly', bucket: (t) => t.toISOString().slice(0, 7)},
  {key: 'keepYearly', name: 'yearly', bucket: (t) => t.toISOString().slice(0, 4)},
]

/** The policy's option names as the command spells them, for messages. */
export const POLICY_FLAGS: Readonly<Record<keyof RetentionPolicy, string>> = {
  keepLast: '--keep-last',
  keepHourly: '--keep-hourly',
  keepDaily: '--keep-daily',
  keepWeekly: '--keep-weekly',
  keepMonthly: '--keep-monthly',
  keepYearly: '--keep-yearly',
}

/** The rules given as --keep-* flags (`{'keep-daily': 7}`), with the rules not given left out. */
export function policyFromFlags(flags: Readonly<Record<string, unknown>>): RetentionPolicy {
  const policy: RetentionPolicy = {}
  for (const [rule, flag] of Object.entries(POLICY_FLAGS) as [keyof RetentionPolicy, string][]) {
    const count = flags[flag.slice(2)]
    if (typeof count === 'number') policy[rule] = count
  }
  return policy
}

/** Whether a policy keeps nothing by any rule (then nothing may be removed). */
export function isEmptyPolicy(policy: RetentionPolicy): boolean {
  return RULES.every((r) => !(policy[r.key]! > 0))
}

/**
 * Plans which snapshots of one namespace to keep and which to remove. With an
 * empty policy everything is kept (reason "no policy"), as restic does.
 */
export function planRetention(snapshots: readonly RetentionSnapshot[], policy: RetentionPolicy): RetentionPlan {
  for (const rule of RULES) {
    const count = policy[rule.key]
    if (count !== undefined && (!Number.isSafeInteger(count) || count < 0)) {
      throw new RangeError(`${POLICY_FLAGS[rule.key]} must be a whole number of 0 or more, not ${count}.`)
    }
  }
  // Newest first; equal times by number, so the order is total.
  const sorted = [...snapshots].sort((a, b) => b.time.getTime() - a.time.getTime() || b.number - a.number)
  if (isEmptyPolicy(policy)) return {keep: sorted.map((s) => ({number: s.number, reasons: ['no policy']})), remove: []}

  const state = RULES.map((rule) => ({rule, left: policy[rule.key] ?? 0, last: undefined as string | undefined}))
  const newest = Math.max(...sorted.map((s) => s.number))
  const newestComplete = Math.max(...sorted.filter((s) => !s.partial).map((s) => s.number))
  const plan: RetentionPlan = {keep: [], remove: []}
  sorted.forEach((snapshot, index) => {
    const reasons: string[] = []
    const oldest = index === sorted.length - 1
    for (const s of state) {
      if (s.left <= 0) continue
      const bucket = s.rule.bucket(snapshot.time, snapshot.number)
      // Same bucket as a newer kept one: only the oldest snapshot is kept again.
      const repeat = bucket === s.last
      if (repeat && !oldest) continue
      s.last = bucket
      s.left--
      reasons.push(s.rule.name === 'last' ? 'last' : `${s.rule.name} ${bucket}${repeat ? ' (oldest)' : ''}`)
    }
    if (reasons.length === 0 && snapshot.number === newest) reasons.push('newest (always kept)')
    if (reasons.length === 0 && snapshot.number === newestComplete) reasons.push('newest complete (always kept)')
    if (reasons.length > 0) plan.keep.push({number: snapshot.number, reasons})
    else plan.remove.push(snapshot.number)
  })
  return plan
}

/** The ISO 8601 week of a UTC time: `2026-W01` (the week with the year's first Thursday). */
export function isoWeek(time: Date): string {
  const day = new Date(Date.UTC(time.getUTCFullYear(), time.getUTCMonth(), time.getUTCDate()))
  // Move to the Thursday of this week (Monday = 1 … Sunday = 7): its year is the week's year.
  const weekday = day.getUTCDay() || 7
  day.setUTCDate(day.getUTCDate() + 4 - weekday)
  const year = day.getUTCFullYear()
  const week = Math.ceil(((day.getTime() - Date.UTC(year, 0, 1)) / 86_400_000 + 1) / 7)
  return `${year}-W${String(week).padStart(2, '0')}`
}
