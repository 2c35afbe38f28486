/**
 * A campaign's training curves as TensorBoard event files in the checkpoint bucket, so researchers
 * follow a run in the tracker they know without another server:
 *
 *   tb/<campaign>/sft/events.out.tfevents.<first step>-<last step>.t1   SFT, steps 1..sft.steps
 *   tb/<campaign>/rl/events.out.tfevents.<first step>-<last step>.t1    RL, steps counted across epochs
 *
 * Each file is one part of a run's log, written once (If-None-Match) and never rewritten: a run
 * appends parts as it trains. Steps are zero-padded so parts sort by step. Training is
 * deterministic, so a retried attempt recomputes the values an earlier one logged: it writes only
 * steps after the last one any part holds (one LIST when it starts).
 *
 * The format (tensorflow/core/lib/io/record_writer.cc, tensorflow/core/util/event.proto): a TFRecord
 * stream, each record `uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)`
 * (little-endian), each data a `tensorflow.Event` proto; the first holds `file_version`, every
 * other one step's scalars as `Summary.Value.simple_value` (float32).
 */
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';

export const TB_PREFIX = 'tb';
const FILE_VERSION = 'brain.Event:2';
/** How often a run writes a part between checkpoints (it also writes one before each checkpoint and at its end). */
export const FLUSH_EVERY_MS = 30_000;

/** Where a campaign's event files are (a TensorBoard logdir: one run per subfolder). */
export const tensorboardPrefix = (campaign: string) => `${TB_PREFIX}/${campaign}/`;
export const tensorboardUrl = (bucket: string, campaign: string) => `s3://${bucket}/${tensorboardPrefix(campaign)}`;

const pad = (step: number) => String(step).padStart(9, '0');
const PART_RE = /events\.out\.tfevents\.(\d+)-(\d+)\.t1$/;
export const partKey = (campaign: string, run: string, first: number, last: number) =>
  `${tensorboardPrefix(campaign)}${run}/events.out.tfevents.${pad(first)}-${pad(last)}.t1`;

/** One step's scalars by tag; `wallTime` in seconds since the epoch. */
export interface ScalarEvent {
  wallTime: number;
  step: number;
  values: Record<string, number>;
}

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord checksums use.
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** TFRecord's masked CRC: a CRC of data that itself holds CRCs would be weak; rotating and adding a constant avoids that. */
export function maskedCrc32c(bytes: Uint8Array): number {
  const c = crc32c(bytes);
  return (((c >>> 15) | (c << 17)) + 0xa282ead8) >>> 0;
}

/** Just enough of the protobuf wire format for Event, Summary and Summary.Value. */
class ProtoWriter {
  private readonly parts: Uint8Array[] = [];

  private varint(v: bigint | number): void {
    let n = BigInt.asUintN(64, BigInt(v));
    const out: number[] = [];
    while (n >= 0x80n) {
      out.push(Number(n & 0x7fn) | 0x80);
      n >>= 7n;
    }
    out.push(Number(n));
    this.parts.push(Uint8Array.from(out));
  }

  private key(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  double(field: number, v: number): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, true);
    this.key(field, 1);
    this.parts.push(b);
  }

  float(field: number, v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.key(field, 5);
    this.parts.push(b);
  }

  int64(field: number, v: number): void {
    this.key(field, 0);
    this.varint(v);
  }

  bytes(field: number, b: Uint8Array): void {
    this.key(field, 2);
    this.varint(b.length);
    this.parts.push(b);
  }

  string(field: number, s: string): void {
    this.bytes(field, new TextEncoder().encode(s));
  }

  finish(): Uint8Array {
    return Buffer.concat(this.parts);
  }
}

/** One Event proto, fields in number order as protobuf serializers write them (proto3: a zero step is left out). */
function encodeEvent(e: { wallTime: number; step?: number; fileVersion?: string; values?: Record<string, number> }): Uint8Array {
  const w = new ProtoWriter();
  w.double(1, e.wallTime);
  if (e.step) w.int64(2, e.step);
  if (e.fileVersion !== undefined) w.string(3, e.fileVersion);
  if (e.values) {
    const summary = new ProtoWriter();
    for (const [tag, v] of Object.entries(e.values)) {
      const value = new ProtoWriter();
      value.string(1, tag);
      value.float(2, v); // a oneof member: written even when 0
      summary.bytes(1, value.finish());
    }
    w.bytes(5, summary.finish());
  }
  return w.finish();
}

function record(data: Uint8Array): Uint8Array {
  const head = new Uint8Array(12);
  const view = new DataView(head.buffer);
  view.setBigUint64(0, BigInt(data.length), true);
  view.setUint32(8, maskedCrc32c(head.subarray(0, 8)), true);
  const tail = new Uint8Array(4);
  new DataView(tail.buffer).setUint32(0, maskedCrc32c(data), true);
  return Buffer.concat([head, data, tail]);
}

/** An event file: the file-version record (at `wallTime`), then one record per step. */
export function encodeEventFile(wallTime: number, events: readonly ScalarEvent[]): Uint8Array {
  return Buffer.concat([
    record(encodeEvent({ wallTime, fileVersion: FILE_VERSION })),
    ...events.map((e) => record(encodeEvent({ wallTime: e.wallTime, step: e.step, values: e.values }))),
  ]);
}

export interface DecodedEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  values: Record<string, number>;
}

/** Reads the protobuf fields of one message: field number -> raw values (bigints for varints, views for the rest). */
function fields(buf: Uint8Array): Map<number, (bigint | Uint8Array)[]> {
  const out = new Map<number, (bigint | Uint8Array)[]>();
  let i = 0;
  const varint = (): bigint => {
    let v = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (i >= buf.length) throw new Error('event file: truncated varint');
      const b = buf[i++];
      v |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
  };
  const take = (n: number) => {
    if (i + n > buf.length) throw new Error('event file: truncated field');
    const v = buf.subarray(i, i + n);
    i += n;
    return v;
  };
  while (i < buf.length) {
    const k = Number(varint());
    const [field, wire] = [k >>> 3, k & 7];
    const v = wire === 0 ? varint() : wire === 1 ? take(8) : wire === 2 ? take(Number(varint())) : wire === 5 ? take(4) : undefined;
    if (v === undefined) throw new Error(`event file: unsupported wire type ${wire}`);
    out.set(field, [...(out.get(field) ?? []), v]);
  }
  return out;
}

const f64 = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, true);
const f32 = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, 4).getFloat32(0, true);

/** Every event of an event file, checking each record's length and data CRCs; scalars from `simple_value` only. */
export function decodeEventFile(bytes: Uint8Array): DecodedEvent[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const events: DecodedEvent[] = [];
  for (let i = 0; i < bytes.length;) {
    if (i + 12 > bytes.length) throw new Error(`event file: truncated record header at byte ${i}`);
    const length = Number(view.getBigUint64(i, true));
    if (view.getUint32(i + 8, true) !== maskedCrc32c(bytes.subarray(i, i + 8))) throw new Error(`event file: bad length CRC at byte ${i}`);
    const data = bytes.subarray(i + 12, i + 12 + length);
    if (data.length !== length || i + 16 + length > bytes.length) throw new Error(`event file: truncated record at byte ${i}`);
    if (view.getUint32(i + 12 + length, true) !== maskedCrc32c(data)) throw new Error(`event file: bad data CRC at byte ${i}`);
    const ev = fields(data);
    const values: Record<string, number> = {};
    for (const summary of (ev.get(5) ?? []) as Uint8Array[])
      for (const value of (fields(summary).get(1) ?? []) as Uint8Array[]) {
        const v = fields(value);
        const tag = v.get(1)?.[0] as Uint8Array | undefined;
        const simple = v.get(2)?.[0] as Uint8Array | undefined;
        if (tag && simple) values[new TextDecoder().decode(tag)] = f32(simple);
      }
    const version = ev.get(3)?.[0] as Uint8Array | undefined;
    events.push({
      wallTime: ev.has(1) ? f64(ev.get(1)![0] as Uint8Array) : 0,
      step: Number(BigInt.asIntN(64, (ev.get(2)?.[0] as bigint | undefined) ?? 0n)),
      ...(version && { fileVersion: new TextDecoder().decode(version) }),
      values,
    });
    i += 16 + length;
  }
  return events;
}

/** `tokensPerS` -> `tokens_per_s`: TensorBoard tags in the usual style. */
export const tagOf = (key: string) => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** What a run's log needs of the store: its bucket's client (for one LIST) and write-once puts. */
export interface EventStore {
  readonly client: S3Client;
  readonly bucket: string;
  putOnce(key: string, body: Uint8Array): Promise<void>;
}

/** The last step that a run's parts in the bucket hold (0: none). */
export async function loggedThrough(store: EventStore, campaign: string, run: string): Promise<number> {
  let last = 0;
  let token: string | undefined;
  do {
    const r = await store.client.send(
      new ListObjectsV2Command({ Bucket: store.bucket, Prefix: `${tensorboardPrefix(campaign)}${run}/`, ContinuationToken: token }),
    );
    for (const o of r.Contents ?? []) last = Math.max(last, Number(PART_RE.exec(o.Key ?? '')?.[2] ?? 0));
    token = r.IsTruncated ? r.NextContinuationToken : undefined;
  } while (token);
  return last;
}

/**
 * The log of one run of a campaign (`sft`, `rl`): `add` each step's scalars, `flush` to write what
 * was added as a new part. Non-finite values are left out (a step without an update has no loss).
 */
export class ScalarLog {
  private pending: ScalarEvent[] = [];
  private lastFlush: number;

  private constructor(
    private readonly store: EventStore,
    private readonly campaign: string,
    private readonly run: string,
    /** Steps up to here are in the bucket already (an earlier attempt logged them). */
    private logged: number,
    private readonly now: () => number,
  ) {
    this.lastFlush = now();
  }

  static async open(store: EventStore, campaign: string, run: string, now: () => number = Date.now): Promise<ScalarLog> {
    return new ScalarLog(store, campaign, run, await loggedThrough(store, campaign, run), now);
  }

  add(step: number, values: Record<string, number>): void {
    if (step <= this.logged) return;
    const finite = Object.entries(values).filter(([, v]) => Number.isFinite(v));
    this.pending.push({ wallTime: this.now() / 1000, step, values: Object.fromEntries(finite.map(([k, v]) => [tagOf(k), v])) });
  }

  /** Whether a part is due by time (FLUSH_EVERY_MS since the last one). */
  get due(): boolean {
    return this.pending.length > 0 && this.now() - this.lastFlush >= FLUSH_EVERY_MS;
  }

  /** Writes the steps added since the last flush as one part (nothing when there are none). */
  async flush(): Promise<void> {
    this.lastFlush = this.now();
    if (!this.pending.length) return;
    const events = this.pending;
    const first = events[0].step;
    const last = events[events.length - 1].step;
    await this.store.putOnce(partKey(this.campaign, this.run, first, last), encodeEventFile(events[0].wallTime, events));
    this.pending = [];
    this.logged = last;
  }
}
