import { describe, expect, it } from 'vitest';
import { promotionDue } from '../../../rules/promotion';

describe('promotion gate', () => {
  it('promotes the first checkpoint, however it scored', () => {
    expect(promotionDue(0, null, 0)).toBe(true);
    expect(promotionDue(0.1, null, 0.5)).toBe(true);
  });

  it('gate 0: only a strictly better accuracy is promoted', () => {
    expect(promotionDue(0.61, { accuracy: 0.6 }, 0)).toBe(true);
    expect(promotionDue(0.6, { accuracy: 0.6 }, 0)).toBe(false);
    expect(promotionDue(0.59, { accuracy: 0.6 }, 0)).toBe(false);
  });

  it('a positive gate asks for more than that improvement', () => {
    // 0.5 + 0.25 = 0.75 exactly (binary fractions): equal to the gate is not enough.
    expect(promotionDue(0.75, { accuracy: 0.5 }, 0.25)).toBe(false);
    expect(promotionDue(0.8, { accuracy: 0.5 }, 0.25)).toBe(true);
    expect(promotionDue(0.7, { accuracy: 0.5 }, 0.25)).toBe(false);
  });

  it('a negative gate tolerates that loss', () => {
    // 0.5 - 0.125 = 0.375.
    expect(promotionDue(0.4, { accuracy: 0.5 }, -0.125)).toBe(true);
    expect(promotionDue(0.375, { accuracy: 0.5 }, -0.125)).toBe(false);
    expect(promotionDue(0.25, { accuracy: 0.5 }, -0.125)).toBe(false);
  });
});
