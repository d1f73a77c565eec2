import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {isEmptyPolicy, isoWeek, planRetention, type RetentionPlan, type RetentionPolicy, type RetentionSnapshot} from './retention.js'

/** Snapshots numbered 1… in the order of the given UTC times ('2026-11-21T16:30'). */
function snaps(...times: string[]): RetentionSnapshot[] {
  return times.map((t, i) => ({number: i + 1, time: new Date(`${t}:00Z`)}))
}

interface Case {
  name: string
  snapshots: RetentionSnapshot[]
  policy: RetentionPolicy
  keep: number[]
  /** Reasons of some kept snapshots, by number. */
  reasons?: Record<number, string[]>
}

const CASES: Case[] = [
  {
    name: 'keep-last keeps the N newest',
    snapshots: snaps('2026-01-01T00:00', '2026-01-02T00:00', '2026-01-03T00:00', '2026-01-04T00:00', '2026-01-05T00:00', '2026-01-06T00:00'),
    policy: {keepLast: 3},
    keep: [6, 5, 4],
    reasons: {6: ['last'], 4: ['last']},
  },
  {
    name: 'keep-last larger than the number of snapshots keeps all',
    snapshots: snaps('2026-01-01T00:00', '2026-01-02T00:00'),
    policy: {keepLast: 10},
    keep: [2, 1],
  },
  {
    name: 'keep-daily counts days that have snapshots, across gaps, newest of each day',
    snapshots: snaps('2026-03-01T08:00', '2026-03-01T20:00', '2026-03-02T08:00', '2026-03-05T08:00', '2026-03-09T08:00', '2026-03-10T08:00', '2026-03-10T20:00'),
    policy: {keepDaily: 3},
    keep: [7, 5, 4],
    reasons: {7: ['daily 2026-03-10'], 5: ['daily 2026-03-09'], 4: ['daily 2026-03-05']},
  },
  {
    name: 'keep-daily with counts left also keeps the oldest snapshot (restic ≥ 0.17)',
    snapshots: snaps('2026-03-01T08:00', '2026-03-01T20:00', '2026-03-02T08:00', '2026-03-02T20:00'),
    policy: {keepDaily: 5},
    keep: [4, 2, 1],
    reasons: {4: ['daily 2026-03-02'], 2: ['daily 2026-03-01'], 1: ['daily 2026-03-01 (oldest)']},
  },
  {
    name: 'days are UTC days: 23:30Z and 00:30Z the next day are two days',
    snapshots: snaps('2026-03-01T22:00', '2026-03-01T23:30', '2026-03-02T00:30'),
    policy: {keepDaily: 2},
    keep: [3, 2],
  },
  {
    name: 'keep-hourly keeps the newest of each hour',
    snapshots: snaps('2026-03-01T10:05', '2026-03-01T10:35', '2026-03-01T11:05', '2026-03-01T11:35', '2026-03-01T13:00'),
    policy: {keepHourly: 2},
    keep: [5, 4],
    reasons: {5: ['hourly 2026-03-01T13'], 4: ['hourly 2026-03-01T11']},
  },
  {
    name: 'keep-weekly uses ISO weeks: 2027-01-02 is in 2026-W53 with 2026-12-28',
    snapshots: snaps('2026-12-21T12:00', '2026-12-28T12:00', '2026-12-31T12:00', '2027-01-02T12:00', '2027-01-04T12:00', '2027-01-05T12:00'),
    policy: {keepWeekly: 2},
    keep: [6, 4],
    reasons: {6: ['weekly 2027-W01'], 4: ['weekly 2026-W53']},
  },
  {
    name: 'keep-monthly keeps the newest of each month',
    snapshots: snaps('2026-01-10T00:00', '2026-01-20T00:00', '2026-02-10T00:00', '2026-02-20T00:00', '2026-04-05T00:00', '2026-04-25T00:00'),
    policy: {keepMonthly: 2},
    keep: [6, 4],
    reasons: {6: ['monthly 2026-04'], 4: ['monthly 2026-02']},
  },
  {
    name: 'keep-yearly keeps the newest of each year',
    snapshots: snaps('2024-06-01T00:00', '2024-12-31T23:59', '2025-01-01T00:00', '2025-07-01T00:00', '2026-02-01T00:00'),
    policy: {keepYearly: 2},
    keep: [5, 4],
    reasons: {5: ['yearly 2026'], 4: ['yearly 2025']},
  },
  {
    name: 'combined policies: a snapshot kept by several rules lists every reason',
    snapshots: snaps('2026-03-01T08:00', '2026-03-01T20:00', '2026-03-02T08:00', '2026-03-02T20:00', '2026-03-03T08:00', '2026-03-03T20:00'),
    policy: {keepLast: 2, keepDaily: 2, keepMonthly: 1},
    keep: [6, 5, 4],
    reasons: {6: ['last', 'daily 2026-03-03', 'monthly 2026-03'], 5: ['last'], 4: ['daily 2026-03-02']},
  },
  {
    name: 'the GFS classic: last 1, daily 7, weekly 4, monthly 6 over 90 daily snapshots',
    snapshots: Array.from({length: 90}, (_, i) => ({number: i + 1, time: new Date(Date.UTC(2026, 0, 1 + i, 2, 0, 0))})),
    policy: {keepLast: 1, keepDaily: 7, keepWeekly: 4, keepMonthly: 6},
    // Days 90…84 (Mar 31…25); weeks W14 (90), W13 up to Sunday Mar 29 (88), W12 (81, Mar 22), W11 (74, Mar 15);
    // month ends Mar 31 (90), Feb 28 (59), Jan 31 (31); monthly has counts left, so the oldest (1) too.
    keep: [90, 89, 88, 87, 86, 85, 84, 81, 74, 59, 31, 1],
    reasons: {90: ['last', 'daily 2026-03-31', 'weekly 2026-W14', 'monthly 2026-03'], 1: ['monthly 2026-01 (oldest)']},
  },
  {
    name: 'the newest snapshot (highest number) is kept even when its time is older',
    snapshots: [
      {number: 1, time: new Date('2026-03-01T08:00:00Z')},
      {number: 2, time: new Date('2026-03-02T08:00:00Z')},
      // Taken on a host whose clock was a day behind.
      {number: 3, time: new Date('2026-03-01T09:00:00Z')},
    ],
    policy: {keepLast: 1},
    keep: [2, 3],
    reasons: {2: ['last'], 3: ['newest (always kept)']},
  },
  {
    name: 'the newest complete snapshot is kept when the newer ones are partial',
    snapshots: [
      {number: 1, time: new Date('2026-03-01T08:00:00Z')},
      {number: 2, time: new Date('2026-03-02T08:00:00Z')},
      {number: 3, time: new Date('2026-03-03T08:00:00Z'), partial: true},
      {number: 4, time: new Date('2026-03-04T08:00:00Z'), partial: true},
    ],
    policy: {keepLast: 2},
    keep: [4, 3, 2],
    reasons: {4: ['last'], 3: ['last'], 2: ['newest complete (always kept)']},
  },
  {
    name: 'a complete snapshot kept by a rule needs no second reason',
    snapshots: [
      {number: 1, time: new Date('2026-03-01T08:00:00Z')},
      {number: 2, time: new Date('2026-03-02T08:00:00Z')},
      {number: 3, time: new Date('2026-03-03T08:00:00Z'), partial: true},
    ],
    policy: {keepLast: 2},
    keep: [3, 2],
    reasons: {3: ['last'], 2: ['last']},
  },
  {
    name: 'no policy keeps everything',
    snapshots: snaps('2026-03-01T08:00', '2026-03-02T08:00', '2026-03-03T08:00'),
    policy: {},
    keep: [3, 2, 1],
    reasons: {1: ['no policy']},
  },
  {
    name: 'counts of 0 are no policy',
    snapshots: snaps('2026-03-01T08:00', '2026-03-02T08:00'),
    policy: {keepLast: 0, keepDaily: 0},
    keep: [2, 1],
  },
  {
    name: 'no snapshots: nothing to keep or remove',
    snapshots: [],
    policy: {keepLast: 1},
    keep: [],
  },
]

for (const c of CASES) {
  test(`planRetention: ${c.name}`, () => {
    const plan: RetentionPlan = planRetention(c.snapshots, c.policy)
    assert.equal(plan.keep.map((k) => k.number), c.keep)
    const all = c.snapshots.map((s) => s.number)
    const removed = all.filter((n) => !c.keep.includes(n)).sort((a, b) => b - a)
    assert.equal([...plan.remove].sort((a, b) => b - a), removed)
    for (const [number, reasons] of Object.entries(c.reasons ?? {})) {
      assert.equal(plan.keep.find((k) => k.number === Number(number))?.reasons, reasons, `reasons of ${number}`)
    }
    // Whatever the policy, the highest number survives.
    if (all.length > 0) assert.ok(plan.keep.some((k) => k.number === Math.max(...all)))
  })
}

test('planRetention does not depend on the input order', () => {
  const s = CASES[2].snapshots
  assert.equal(planRetention([...s].reverse(), {keepDaily: 3}), planRetention(s, {keepDaily: 3}))
})

test('planRetention refuses negative or fractional counts', () => {
  assert.throws(() => planRetention(snaps('2026-03-01T08:00'), {keepLast: -1}), /--keep-last must be a whole number/)
  assert.throws(() => planRetention(snaps('2026-03-01T08:00'), {keepDaily: 1.5}), /--keep-daily/)
})

test('isEmptyPolicy', () => {
  assert.ok(isEmptyPolicy({}))
  assert.ok(isEmptyPolicy({keepLast: 0}))
  assert.not.ok(isEmptyPolicy({keepYearly: 1}))
})

const WEEKS: [string, string][] = [
  ['2026-11-21', '2026-W47'],
  ['2026-01-01', '2026-W01'], // a Thursday
  ['2027-01-03', '2026-W53'], // Sunday of 2026's 53rd week
  ['2027-01-04', '2027-W01'],
  ['2024-12-30', '2025-W01'], // Monday whose week belongs to the next year
  ['2021-01-03', '2020-W53'],
  ['2023-01-01', '2022-W52'],
]
for (const [day, week] of WEEKS) {
  test(`isoWeek(${day}) = ${week}`, () => {
    assert.is(isoWeek(new Date(`${day}T12:00:00Z`)), week)
    // The bucket is UTC: the first and last second of the day agree.
    assert.is(isoWeek(new Date(`${day}T00:00:00Z`)), week)
    assert.is(isoWeek(new Date(`${day}T23:59:59Z`)), week)
  })
}

test.run()
