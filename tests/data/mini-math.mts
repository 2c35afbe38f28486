/**
 * Writes tests/data/mini-math.jsonl: 400 short arithmetic word problems in the JSONL task format,
 * with the field variety real files have (problem/question, numeric answers, ids, GSM8K-style
 * `####` solutions, a Unicode times sign, difficulty 1-3), three in four with a worked solution.
 * Run: npx tsx tests/data/mini-math.mts
 */
import { writeFileSync } from 'node:fs';
import { Prng } from '../../util/prng';

const rng = new Prng(20261203);
const seen = new Set<string>();
const lines: string[] = [];
while (lines.length < 400) {
  const difficulty = 1 + rng.int(3);
  const [a, b] =
    difficulty === 1
      ? [1 + rng.int(9), 1 + rng.int(9)]
      : difficulty === 2
        ? [10 + rng.int(40), 1 + rng.int(9)]
        : [2 + rng.int(8), 2 + rng.int(8)];
  const times = difficulty === 3;
  const sign = times ? (rng.int(4) === 0 ? '\u00d7' : '*') : '+';
  const c = times ? a * b : a + b;
  const text = `What is ${a} ${sign} ${b}?`;
  if (seen.has(text.replace('\u00d7', '*'))) continue;
  seen.add(text.replace('\u00d7', '*'));
  const i = lines.length;
  const row: Record<string, unknown> = { [i % 5 === 0 ? 'question' : 'problem']: text, answer: i % 3 === 0 ? c : String(c), difficulty };
  if (i % 7 === 0) row.id = `mm-${i}`;
  if (i % 4 !== 3)
    row.solution = i % 6 === 0 ? `${a} ${times ? '*' : '+'} ${b} = ${c}\n#### ${c}` : `${a} ${times ? '*' : '+'} ${b} = ${c}`;
  lines.push(JSON.stringify(row));
}
writeFileSync(new URL('./mini-math.jsonl', import.meta.url), lines.join('\n') + '\n');
