import { describe, expect, it } from 'vitest';
import { stateBytes, stateObjectOf, STATE_OBJECTS } from '../../../activities/cache';

describe("a checkpoint's model object", () => {
  it('is its training state, else its anchor weights: the one rule every reader of a checkpoint follows', () => {
    expect(STATE_OBJECTS).toEqual(['state', 'anchor']);
    expect(stateObjectOf(['curve.json', 'state'])).toBe('state');
    expect(stateObjectOf(['anchor'])).toBe('anchor');
    expect(stateObjectOf(['anchor', 'state'])).toBe('state');
    expect(stateObjectOf(['sft.jsonl'])).toBeUndefined();
    const state = new Uint8Array([1]);
    const anchor = new Uint8Array([2]);
    expect(stateBytes('c/rl-e0001', { state, 'metrics.json': new Uint8Array() })).toBe(state);
    expect(stateBytes('c/anchor-e1-0123', { anchor })).toBe(anchor);
    expect(() => stateBytes('c/dataset', { 'sft.jsonl': new Uint8Array() })).toThrow('checkpoint c/dataset holds no training state');
  });
});
