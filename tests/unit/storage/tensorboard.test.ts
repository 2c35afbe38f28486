/**
 * TensorBoard event files (storage/tensorboard.ts): CRC-32C against RFC 3720's test vectors, byte
 * equality with a file that TensorBoard's own writer made (tests/fixtures/tensorboard/make-fixture.py),
 * the reader on both, and a run's log in parts that are written once and never overlap.
 */
import { readFileSync } from 'node:fs';
import type { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import {
  crc32c,
  decodeEventFile,
  encodeEventFile,
  FLUSH_EVERY_MS,
  partKey,
  ScalarLog,
  tagOf,
  type EventStore,
  type ScalarEvent,
} from '../../../storage/tensorboard';

const fixture = readFileSync(new URL('../../fixtures/tensorboard/real-writer.tfevents', import.meta.url));
// The events make-fixture.py wrote, after its file-version record (wall time 1700000000).
const EVENTS: ScalarEvent[] = [
  { wallTime: 1700000000.25, step: 1, values: { loss: 2.5, lr: 0.003 } },
  { wallTime: 1700000001.5, step: 2, values: { loss: 0, tokens_per_s: 1234.5 } },
  { wallTime: 1700000002.75, step: 300, values: { reward: -0.25 } },
];

describe('event files', () => {
  it('CRC-32C matches the iSCSI test vectors (RFC 3720 B.4)', () => {
    expect(crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i))).toBe(0x113fdb5c);
  });

  it("writes the same bytes as TensorBoard's own writer for the same events", () => {
    expect(Buffer.from(encodeEventFile(1700000000, EVENTS)).equals(fixture)).toBe(true);
  });

  it("reads TensorBoard's file back: the file version, then each step's scalars as float32", () => {
    const events = decodeEventFile(fixture);
    expect(events[0]).toEqual({ wallTime: 1700000000, step: 0, fileVersion: 'brain.Event:2', values: {} });
    expect(events.slice(1)).toEqual(
      EVENTS.map((e) => ({ ...e, values: Object.fromEntries(Object.entries(e.values).map(([k, v]) => [k, Math.fround(v)])) })),
    );
  });

  it('refuses a file with a flipped bit or a cut-off record', () => {
    const flipped = Buffer.from(fixture);
    flipped[60] ^= 1;
    expect(() => decodeEventFile(flipped)).toThrow(/bad data CRC/);
    expect(() => decodeEventFile(fixture.subarray(0, fixture.length - 2))).toThrow(/truncated/);
  });

  it('tags in snake case', () => {
    expect(['loss', 'tokensPerS', 'valAccuracy', 'stepSeconds'].map(tagOf)).toEqual([
      'loss',
      'tokens_per_s',
      'val_accuracy',
      'step_seconds',
    ]);
  });
});

/** A bucket in memory: write-once puts, and LIST by prefix. */
function memoryStore() {
  const objects = new Map<string, Uint8Array>();
  const store: EventStore = {
    bucket: 'b',
    client: {
      send: async (c: ListObjectsV2Command) => ({
        Contents: [...objects.keys()].filter((k) => k.startsWith(c.input.Prefix ?? '')).map((Key) => ({ Key })),
      }),
    } as unknown as S3Client,
    async putOnce(key, body) {
      if (!objects.has(key)) objects.set(key, body);
    },
  };
  return { store, objects };
}

describe('a run log in parts', () => {
  it('writes each flush as a new part named by its steps; a retried attempt writes only steps no part holds', async () => {
    const { store, objects } = memoryStore();
    let now = 1_000_000;
    const clock = () => now;
    const log = await ScalarLog.open(store, 'c1', 'sft', clock);
    for (let s = 1; s <= 4; s++) log.add(s, { loss: 1 / s, tokensPerS: 100 });
    expect(log.due).toBe(false);
    now += FLUSH_EVERY_MS;
    expect(log.due).toBe(true);
    await log.flush();
    log.add(5, { loss: 0.2, valLoss: NaN });
    await log.flush();
    await log.flush(); // nothing new: no part
    expect([...objects.keys()]).toEqual([partKey('c1', 'sft', 1, 4), partKey('c1', 'sft', 5, 5)]);
    expect(partKey('c1', 'sft', 1, 4)).toBe('tb/c1/sft/events.out.tfevents.000000001-000000004.t1');

    // The retry resumes from a checkpoint at step 4 and recomputes step 5: only step 6 is new.
    const retry = await ScalarLog.open(store, 'c1', 'sft', clock);
    retry.add(5, { loss: 0.2 });
    retry.add(6, { loss: 0.1 });
    await retry.flush();
    expect([...objects.keys()]).toHaveLength(3);
    const steps = [...objects.values()].flatMap((b) => decodeEventFile(b).slice(1));
    expect(steps.map((e) => e.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(steps[1].values).toEqual({ loss: 0.5, tokens_per_s: 100 });
    expect(steps[4].values).toEqual({ loss: Math.fround(0.2) }); // NaN left out
    // Another run of the campaign has its own parts.
    expect(await (await ScalarLog.open(store, 'c1', 'rl', clock)).flush()).toBeUndefined();
    expect([...objects.keys()].filter((k) => k.startsWith('tb/c1/rl/'))).toEqual([]);
  });

  it('keeps the steps of a failed write for the next flush', async () => {
    const { store, objects } = memoryStore();
    let fail = true;
    const flaky: EventStore = {
      ...store,
      putOnce: (k, b) => (fail ? Promise.reject(new Error('S3 down')) : store.putOnce(k, b)),
    };
    const log = await ScalarLog.open(flaky, 'c2', 'rl', () => 0);
    log.add(1, { reward: 0.5 });
    await expect(log.flush()).rejects.toThrow('S3 down');
    log.add(2, { reward: 0.75 });
    fail = false;
    await log.flush();
    expect([...objects.keys()]).toEqual([partKey('c2', 'rl', 1, 2)]);
  });
});
