/**
 * Payload encryption: every payload t1 sends to Temporal (workflow and activity inputs, results,
 * signals, queries, memos) is AES-256-GCM ciphertext on the server, decrypted only by processes
 * that hold a key (workers, clients, `t1 codec-server` for the UI). The layout is the one of
 * Temporal's encryption samples: the whole Payload protobuf encrypted, `nonce(12) ‖ ciphertext ‖
 * tag(16)` as data, metadata `encoding: binary/encrypted` and `encryption-key-id`.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { METADATA_ENCODING_KEY, ValueError, type DataConverter, type Payload, type PayloadCodec } from '@temporalio/common';
import proto from '@temporalio/proto';
import type { PayloadKey, TemporalConfig } from '../config/connection';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const METADATA_KEY_ID = 'encryption-key-id';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
// A CommonJS module: Node's ESM loader sees its default export only.
const ProtoPayload = proto.temporal.api.common.v1.Payload;

const utf8 = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | null | undefined) => (b ? new TextDecoder().decode(b) : undefined);

export class EncryptionCodec implements PayloadCodec {
  private readonly keys: Map<string, Buffer>;
  private readonly current?: { id: string; key: Buffer };

  /**
   * `keys`: the first encrypts, all decrypt (rotation: put a new key first, keep the old ones
   * while histories they encrypted are still read). No keys: payloads pass through unencrypted,
   * and an encrypted one fails with a message that names the setting.
   */
  constructor(keys: readonly PayloadKey[]) {
    this.keys = new Map(keys.map((k) => [k.id, Buffer.from(k.key, 'base64')]));
    if (keys[0]) this.current = { id: keys[0].id, key: this.keys.get(keys[0].id)! };
  }

  get encrypting(): boolean {
    return this.current !== undefined;
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const current = this.current;
    if (!current) return payloads;
    return payloads.map((p) => {
      const nonce = randomBytes(NONCE_BYTES);
      const cipher = createCipheriv('aes-256-gcm', current.key, nonce);
      const body = Buffer.concat([cipher.update(ProtoPayload.encode(p).finish()), cipher.final()]);
      return {
        metadata: { [METADATA_ENCODING_KEY]: utf8(ENCRYPTED_ENCODING), [METADATA_KEY_ID]: utf8(current.id) },
        data: Buffer.concat([nonce, body, cipher.getAuthTag()]),
      };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => {
      if (text(p.metadata?.[METADATA_ENCODING_KEY]) !== ENCRYPTED_ENCODING) return p;
      const id = text(p.metadata?.[METADATA_KEY_ID]);
      if (id === undefined) throw new ValueError(`an encrypted payload carries no ${METADATA_KEY_ID}`);
      const key = this.keys.get(id);
      if (!key) {
        const held = [...this.keys.keys()];
        throw new ValueError(
          `a payload is encrypted with key "${id}", which temporal.payloadKeys [T1_PAYLOAD_KEYS] does not hold` +
            (held.length ? ` (it holds ${held.join(', ')}): keep old keys after the new one` : ' (no keys are set)'),
        );
      }
      const data = p.data ?? new Uint8Array();
      if (data.length < NONCE_BYTES + TAG_BYTES) throw new ValueError(`an encrypted payload (key "${id}") is truncated`);
      const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, NONCE_BYTES));
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      let plain: Buffer;
      try {
        plain = Buffer.concat([decipher.update(data.subarray(NONCE_BYTES, data.length - TAG_BYTES)), decipher.final()]);
      } catch {
        throw new ValueError(`an encrypted payload (key "${id}") failed authentication: a different key under that id, or altered data`);
      }
      return ProtoPayload.decode(plain);
    });
  }
}

/** The codec of a connection's settings (off without payload keys). */
export function encryptionCodec(t: TemporalConfig): EncryptionCodec {
  return new EncryptionCodec(t.payloadKeys ?? []);
}

/**
 * With keys, failures' messages and stack traces too: they travel as an encoded payload, which the
 * codec encrypts (without keys they stay readable as they are in the UI and CLI). A worker's workflow
 * bundle is built with the same path (workers/worker.ts).
 */
export const ENCODED_FAILURES = fileURLToPath(new URL('./failure-converter.cjs', import.meta.url));

/** What every client and worker of t1 converts payloads and failures with (codecs run outside the workflow sandbox). */
export function dataConverter(t: TemporalConfig): DataConverter {
  return { payloadCodecs: [encryptionCodec(t)], ...(t.payloadKeys?.length && { failureConverterPath: ENCODED_FAILURES }) };
}
