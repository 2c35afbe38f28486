import { describe, expect, it } from 'vitest';
import { show, bin, num, type Expr, type Op } from '../../../tasks/expr';
import { jsonlVerifier, type JsonlData } from '../../../tasks/jsonl';
import { getVerifier } from '../../../tasks/registry';
import { problemId, type Problem, type Verifier } from '../../../tasks/types';
import { Prng } from '../../../util/prng';

const key = (v: Verifier, text: string) => v.voteKey!(v.parseAnswer(text)!);

function cd(numbers: number[], target: number): Problem {
  const prompt = `${numbers.join(' ')} -> ${target}`;
  return { task: 'countdown', id: problemId('countdown', prompt), prompt, difficulty: numbers.length, data: { numbers, target } };
}

describe('countdown voteKey', () => {
  const countdown = getVerifier('countdown');

  it('is the exact value and the numbers used: reorderings and regroupings of the same numbers agree', () => {
    expect(key(countdown, '3+4')).toBe(key(countdown, '4+3'));
    expect(key(countdown, '2*(3+4)')).toBe(key(countdown, '(4+3)*2'));
    expect(key(countdown, '6/(1-3/4)')).toBe(key(countdown, '6/(1-3/4)=24'));
    expect(key(countdown, '10/4')).toBe(key(countdown, '(10/4)'));
  });

  it('keeps apart what may verify differently: other numbers, a wrong claim, a division by zero', () => {
    expect(key(countdown, '3+4')).not.toBe(key(countdown, '7')); // 7 may not be given
    expect(key(countdown, '3+4')).not.toBe(key(countdown, '3+3+1'));
    expect(key(countdown, '3+4')).not.toBe(key(countdown, '2+5'));
    expect(key(countdown, '2*(3+4)')).not.toBe(key(countdown, '4*2+3*2')); // uses 2 twice
    expect(key(countdown, '3+4')).not.toBe(key(countdown, '3+4=8'));
    expect(key(countdown, '3/(4-4)')).not.toBe(key(countdown, '3+4-4'));
  });

  it('equal keys verify alike on every problem (random expressions over random problems)', () => {
    const rng = new Prng(31);
    const ops: Op[] = ['+', '-', '*', '/'];
    const tree = (leaves: number): Expr => {
      if (leaves === 1) return num(1 + rng.int(6));
      const left = 1 + rng.int(leaves - 1);
      return bin(rng.pick(ops), tree(left), tree(leaves - left));
    };
    const answers = Array.from({ length: 3000 }, () => {
      const text = show(tree(1 + rng.int(3)));
      return rng.int(4) === 0 ? `${text}=${rng.int(12)}` : text;
    });
    const problems = Array.from({ length: 40 }, () =>
      cd(
        Array.from({ length: 3 + rng.int(3) }, () => 1 + rng.int(6)).sort((a, b) => a - b),
        rng.int(12),
      ),
    );
    const groups = new Map<string, string[]>();
    for (const a of answers) groups.set(key(countdown, a), [...(groups.get(key(countdown, a)) ?? []), a]);
    const pooled = [...groups.values()].filter((g) => new Set(g).size > 1);
    expect(pooled.length).toBeGreaterThan(50); // the check has distinct answers sharing keys to compare
    for (const g of pooled) for (const p of problems) expect(new Set(g.map((a) => countdown.verify(p, a))).size, g.join(' ')).toBe(1);
  });
});

describe('arithmetic votes', () => {
  it('need no voteKey: the parsed answer is already the number, and -0 serialises as 0', () => {
    const arithmetic = getVerifier('arithmetic');
    expect(arithmetic.voteKey).toBeUndefined();
    expect(new Set(['0', '-0', '= 0', ' 0'].map((a) => JSON.stringify(arithmetic.parseAnswer(a))))).toEqual(new Set(['0']));
  });
});

describe('jsonl voteKey', () => {
  it('is the normalised answer: the same number in any notation agrees, as does the same text', () => {
    expect(key(jsonlVerifier, '0.5')).toBe(key(jsonlVerifier, '1/2'));
    expect(key(jsonlVerifier, '\\frac12')).toBe(key(jsonlVerifier, '$\\dfrac{1}{2}$'));
    expect(key(jsonlVerifier, '1,234')).toBe(key(jsonlVerifier, '1234.0'));
    expect(key(jsonlVerifier, '\\sqrt{2}')).toBe(key(jsonlVerifier, '\\sqrt2'));
  });

  it("keeps apart what answersMatch may tell apart: units, percent, the variable's name", () => {
    expect(key(jsonlVerifier, '50')).not.toBe(key(jsonlVerifier, '50\\%'));
    expect(key(jsonlVerifier, '5\\text{cm}')).not.toBe(key(jsonlVerifier, '5\\text{m}'));
    expect(key(jsonlVerifier, 'x = 2')).not.toBe(key(jsonlVerifier, 'y = 2'));
    expect(key(jsonlVerifier, '\\sqrt{2}')).not.toBe(key(jsonlVerifier, '\\sqrt{3}'));
  });

  it('equal keys match the same references', () => {
    const answers = ['0.5', '1/2', '\\frac{1}{2}', '50', '50\\%', '50 \\text{cm}', 'x = 2', '2', 'y=2', '2.0', '\\pi', ' \\pi '];
    for (const a of answers) {
      for (const b of answers) {
        if (key(jsonlVerifier, a) !== key(jsonlVerifier, b)) continue;
        for (const ref of answers) {
          const p: Problem<JsonlData> = { task: 'jsonl', id: ref, prompt: '', difficulty: 1, data: { answer: ref, line: 1 } };
          expect(jsonlVerifier.verify(p, a), `${a} / ${b} against ${ref}`).toBe(jsonlVerifier.verify(p, b));
        }
      }
    }
  });
});
