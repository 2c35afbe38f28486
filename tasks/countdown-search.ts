/**
 * Countdown searches over non-negative integer intermediates (classic rules; the verifier is more
 * permissive, so anything found here is a valid answer): an exhaustive solver, and a myopic
 * randomized search whose misses are the teacher's failed attempts.
 */
import type { Prng } from '../util/prng';
import { bin, num, type Expr } from './expr';
import { sampleWeighted } from './weighted';

export interface Item {
  value: number;
  expr: Expr;
}

/** Every useful way to combine two values: x*1, x/1 and zero results never help reach a target >= 1. */
function combine(a: Item, b: Item): Item[] {
  const [big, small] = a.value >= b.value ? [a, b] : [b, a];
  const out: Item[] = [{ value: a.value + b.value, expr: bin('+', a.expr, b.expr) }];
  if (big.value > small.value) out.push({ value: big.value - small.value, expr: bin('-', big.expr, small.expr) });
  if (small.value > 1) {
    const product = a.value * b.value;
    if (Number.isSafeInteger(product)) out.push({ value: product, expr: bin('*', a.expr, b.expr) });
    if (big.value % small.value === 0) out.push({ value: big.value / small.value, expr: bin('/', big.expr, small.expr) });
  }
  return out;
}

/**
 * Depth-first over all ways to merge two values into one, with dead states memoised by their
 * value multiset. Returns the first expression reaching `target`; `rng` randomises which one.
 */
export function solveCountdown(numbers: readonly number[], target: number, rng?: Prng): Expr | null {
  const dead = new Set<string>();
  const search = (items: Item[]): Expr | null => {
    if (items.length < 2) return null;
    const key = items
      .map((i) => i.value)
      .sort((x, y) => x - y)
      .join(',');
    if (dead.has(key)) return null;
    const pairs: [number, number][] = [];
    for (let i = 0; i < items.length; i++) for (let j = i + 1; j < items.length; j++) pairs.push([i, j]);
    if (rng) rng.shuffle(pairs);
    for (const [i, j] of pairs) {
      const rest = items.filter((_, k) => k !== i && k !== j);
      const merged = combine(items[i], items[j]);
      if (rng) rng.shuffle(merged);
      for (const next of merged) {
        if (next.value === target) return next.expr;
        const found = search([...rest, next]);
        if (found) return found;
      }
    }
    dead.add(key);
    return null;
  };
  return search(numbers.map((v) => ({ value: v, expr: num(v) })));
}

/**
 * One run of a myopic search: start from a random number, then repeatedly apply the
 * (operation, number) whose result lands nearest the target, sampled softly, or stop. It commits
 * early to partial results that look close, so its misses are the near misses a person makes.
 */
export function greedyAttempt(numbers: readonly number[], target: number, rng: Prng): Item {
  const pool = rng.shuffle(numbers.slice());
  const first = pool.pop()!;
  let current: Item = { value: first, expr: num(first) };
  const scale = Math.max(2, target / 10);
  for (let ops = 0; pool.length > 0; ops++) {
    const options: { item: Item; used: number }[] = ops > 0 ? [{ item: current, used: -1 }] : [];
    pool.forEach((x, used) => {
      for (const item of combine(current, { value: x, expr: num(x) })) options.push({ item, used });
    });
    const distance = options.map((o) => Math.abs(o.item.value - target));
    const nearest = Math.min(...distance);
    const choice =
      options[
        sampleWeighted(
          distance.map((d) => Math.exp((nearest - d) / scale)),
          rng,
        )
      ];
    if (choice.used < 0) break;
    pool.splice(choice.used, 1);
    current = choice.item;
    if (current.value === target) break;
  }
  return current;
}
