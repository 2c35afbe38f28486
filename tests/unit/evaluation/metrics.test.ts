import { describe, expect, it } from 'vitest';
import {
  accuracyBySteps,
  defaultKs,
  majAtK,
  majorityVote,
  passAtK,
  summarise,
  type ProblemRecord,
  type SampleRecord,
} from '../../../evaluation/metrics';

function binomial(n: number, k: number): bigint {
  if (k < 0 || k > n) return 0n;
  let r = 1n;
  for (let i = 1; i <= k; i++) r = (r * BigInt(n - k + i)) / BigInt(i);
  return r;
}

/** 1 - C(n-c,k)/C(n,k) from exact binomials (30 decimal digits kept). */
function passAtKExact(n: number, c: number, k: number): number {
  return 1 - Number((binomial(n - c, k) * 10n ** 30n) / binomial(n, k)) / 1e30;
}

const s = (answer: string | null, correct = false, extra: Partial<SampleRecord> = {}): SampleRecord => ({
  correct,
  garbage: null,
  answer,
  length: 1,
  steps: 0,
  ...extra,
});

describe('pass@k', () => {
  it.each([
    // n, c, k, value by hand
    [1, 0, 1, 0],
    [1, 1, 1, 1],
    [5, 2, 1, 2 / 5],
    [5, 2, 2, 1 - 3 / 10], // C(3,2)/C(5,2)
    [5, 2, 3, 1 - 1 / 10], // C(3,3)/C(5,3)
    [5, 2, 4, 1], // n - c < k: every 4-subset holds a correct sample
    [5, 2, 5, 1],
    [5, 0, 3, 0],
    [5, 5, 1, 1],
    [4, 1, 2, 1 - 3 / 6],
    [10, 3, 5, 1 - 21 / 252],
  ])('n=%i c=%i k=%i -> %f', (n, c, k, want) => {
    expect(passAtK(n, c, k)).toBeCloseTo(want, 14);
  });

  it('matches exact binomials for every n <= 12, and stays accurate at n = 200', () => {
    for (let n = 1; n <= 12; n++)
      for (let c = 0; c <= n; c++) for (let k = 1; k <= n; k++) expect(passAtK(n, c, k)).toBeCloseTo(passAtKExact(n, c, k), 12);
    // C(200, 50) ~ 4.5e47: the product form never builds it.
    for (const [c, k] of [
      [1, 1],
      [3, 50],
      [100, 50],
      [150, 60],
    ])
      expect(passAtK(200, c, k)).toBeCloseTo(passAtKExact(200, c, k), 12);
  });

  it('rejects k outside 1..n and c outside 0..n', () => {
    expect(() => passAtK(4, 1, 5)).toThrow(/1 <= k <= n/);
    expect(() => passAtK(4, 1, 0)).toThrow(RangeError);
    expect(() => passAtK(4, 5, 1)).toThrow(RangeError);
  });

  it('default ks are powers of two below n, then n', () => {
    expect(defaultKs(1)).toEqual([1]);
    expect(defaultKs(8)).toEqual([1, 2, 4, 8]);
    expect(defaultKs(6)).toEqual([1, 2, 4, 6]);
  });
});

describe('maj@k', () => {
  const arith = (answers: (string | null)[]) => answers.map((a) => s(a));

  it('counts formatting variants as one answer (the task parses them)', () => {
    // arithmetic: "= 7", " 7" and "7" are all 7
    expect(majorityVote('arithmetic', arith(['5', '= 7', ' 7', '5', '7']), 5)).toBe(1);
    // countdown: spacing, redundant parentheses and order agree (the same value from the same numbers)
    expect(majorityVote('countdown', arith(['4+3', '3+4', '(3 + 4)']), 3)).toBe(0);
  });

  it('breaks ties in favour of the answer that appeared first', () => {
    const votes = arith(['5', '7', '= 7', '5']);
    expect(majorityVote('arithmetic', votes, 4)).toBe(0); // 5 and 7 tie 2-2: 5 came first
    expect(majorityVote('arithmetic', votes, 3)).toBe(1); // 7 leads 2-1
    expect(majorityVote('arithmetic', votes, 2)).toBe(0); // 1-1: 5 came first
    expect(majorityVote('arithmetic', votes, 1)).toBe(0);
  });

  it('missing and unparseable answers abstain; no votes, no winner', () => {
    expect(majorityVote('arithmetic', arith([null, 'seven', '9']), 3)).toBe(2);
    expect(majorityVote('arithmetic', arith([null, 'seven', '9']), 2)).toBeNull();
  });

  it('scores the winning answer per problem', () => {
    const problems: ProblemRecord[] = [
      // right answer 7, minority at k = 4 after the tie rule
      { task: 'arithmetic', id: 'a', difficulty: 1, samples: [s('5'), s('7', true), s('= 7', true), s('5')] },
      // right answer 3, majority
      { task: 'arithmetic', id: 'b', difficulty: 1, samples: [s('2'), s('3', true), s('3', true), s(null)] },
    ];
    expect(majAtK(problems, 1)).toBe(0);
    expect(majAtK(problems, 3)).toBe(1);
    expect(majAtK(problems, 4)).toBe(0.5);
  });
});

describe('summarise', () => {
  const problems: ProblemRecord[] = [
    {
      task: 'arithmetic',
      id: 'p1',
      difficulty: 3,
      samples: [s('7', true, { length: 10, steps: 2 }), s(null, false, { garbage: 'truncated', length: 20, steps: 4 })],
    },
    {
      task: 'arithmetic',
      id: 'p2',
      difficulty: 4,
      samples: [s('5', false, { length: 6, steps: 0 }), s('x', false, { garbage: 'unparseable', length: 8, steps: 2 })],
    },
  ];

  it('matches hand-computed values', () => {
    expect(summarise(problems)).toEqual({
      problems: 2,
      samples: 2,
      passAt1: 0.25,
      passAtK: { '1': 0.25, '2': 0.5 },
      majAtK: { '1': 0.5, '2': 0.5 },
      byDifficulty: [
        { difficulty: 3, problems: 1, accuracy: 0.5 },
        { difficulty: 4, problems: 1, accuracy: 0 },
      ],
      garbageRate: 0.5,
      meanLength: 11,
      meanSteps: 2,
    });
  });

  it('steps view: accuracy of the samples by reasoning steps', () => {
    expect(accuracyBySteps(problems)).toEqual([
      { steps: 0, samples: 1, accuracy: 0 },
      { steps: 2, samples: 2, accuracy: 0.5 },
      { steps: 4, samples: 1, accuracy: 0 },
    ]);
  });

  it('needs problems with equal sample counts', () => {
    expect(() => summarise([])).toThrow(/no problems/);
    expect(() => summarise([problems[0], { ...problems[1], samples: [problems[1].samples[0]] }])).toThrow(/same number/);
  });
});
