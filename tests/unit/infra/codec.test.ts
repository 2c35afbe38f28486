import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultPayloadConverter, METADATA_ENCODING_KEY, type Payload } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadTemporal, redacted, loadConnection, type PayloadKey } from '../../../config/connection';
import { ENCRYPTED_ENCODING, EncryptionCodec, METADATA_KEY_ID } from '../../../infra/codec';
import { startCodecServer, type CodecServer } from '../../../infra/codec-server';

const key = (id: string): PayloadKey => ({ id, key: randomBytes(32).toString('base64') });
const k1 = key('k1');
const k2 = key('k2');
const env = (keys: PayloadKey[]) => keys.map((k) => `${k.id}:${k.key}`).join(',');
const text = (b?: Uint8Array | null) => Buffer.from(b ?? []).toString('utf8');
const secretValue = { campaign: 'secret-campaign-name', checkpoint: 'ckpt/step-42' };
const errorOf = async (f: () => unknown) => {
  try {
    await f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
};

describe('payload encryption codec', () => {
  it('encrypts the whole payload: binary/encrypted, the key id in metadata, no plaintext; decodes back', async () => {
    const codec = new EncryptionCodec([k1]);
    const plain = defaultPayloadConverter.toPayload(secretValue);
    const [enc] = await codec.encode([plain]);
    expect(text(enc!.metadata![METADATA_ENCODING_KEY])).toBe(ENCRYPTED_ENCODING);
    expect(text(enc!.metadata![METADATA_KEY_ID])).toBe('k1');
    expect(Object.keys(enc!.metadata!)).toEqual([METADATA_ENCODING_KEY, METADATA_KEY_ID]); // json/plain is inside
    expect(text(enc!.data)).not.toContain('secret-campaign');
    const [again] = await codec.encode([plain]);
    expect(Buffer.from(again!.data!).equals(Buffer.from(enc!.data!))).toBe(false); // a fresh nonce each time
    const [dec] = await codec.decode([enc!]);
    expect(defaultPayloadConverter.fromPayload(dec!)).toEqual(secretValue);
  });

  it('rotation: a new key first encrypts, the old one still decrypts; dropping it too early names the missing id', async () => {
    const [old] = await new EncryptionCodec([k1]).encode([defaultPayloadConverter.toPayload(secretValue)]);
    const rotated = new EncryptionCodec([k2, k1]);
    const [fresh] = await rotated.encode([defaultPayloadConverter.toPayload(1)]);
    expect(text(fresh!.metadata![METADATA_KEY_ID])).toBe('k2');
    expect(defaultPayloadConverter.fromPayload((await rotated.decode([old!]))[0]!)).toEqual(secretValue);
    const e = await errorOf(() => new EncryptionCodec([k2]).decode([old!]));
    expect(e.message).toMatch(/key "k1", which temporal\.payloadKeys \[T1_PAYLOAD_KEYS\] does not hold \(it holds k2\)/);
  });

  it('refuses altered data and a different key under the same id, without showing either key', async () => {
    const [enc] = await new EncryptionCodec([k1]).encode([defaultPayloadConverter.toPayload(secretValue)]);
    const tampered: Payload = { ...enc!, data: Buffer.from(enc!.data!).map((b, i) => (i === 20 ? b ^ 1 : b)) };
    for (const [codec, p] of [
      [new EncryptionCodec([k1]), tampered],
      [new EncryptionCodec([{ id: 'k1', key: k2.key }]), enc!],
    ] as const) {
      const e = await errorOf(() => codec.decode([p]));
      expect(e.message).toMatch(/failed authentication/);
      expect(e.message).not.toContain(k1.key);
      expect(e.message).not.toContain(k2.key);
    }
  });

  it('without keys: payloads pass through; an encrypted one is refused naming the setting; plaintext is always readable', async () => {
    const off = new EncryptionCodec([]);
    const plain = defaultPayloadConverter.toPayload(secretValue);
    expect(await off.encode([plain])).toEqual([plain]);
    const [enc] = await new EncryptionCodec([k1]).encode([plain]);
    expect((await errorOf(() => off.decode([enc!]))).message).toMatch(/T1_PAYLOAD_KEYS.*no keys are set/);
    // Histories from before encryption was turned on still decode.
    expect(await new EncryptionCodec([k1]).decode([plain])).toEqual([plain]);
  });
});

describe('payload key settings', () => {
  const load = (e: Record<string, string>) => loadTemporal({}, { T1_STATE_DIR: '/nonexistent-t1', ...e });

  it('T1_PAYLOAD_KEYS: ID:BASE64 entries, newest first; off when unset', () => {
    expect(load({}).payloadKeys).toBeUndefined();
    expect(load({ T1_PAYLOAD_KEYS: env([k2, k1]) }).payloadKeys).toEqual([k2, k1]);
    expect(load({ T1_PAYLOAD_KEYS: ` ${env([k2])}\n${env([k1])}\n` }).payloadKeys).toEqual([k2, k1]);
  });

  it.each([
    ['k1', /entry 1: expected ID:BASE64KEY/],
    [`k1:${randomBytes(16).toString('base64')}`, /key "k1": expected 32 bytes .* got 16/],
    [`${env([k1])},${env([k1])}`, /key id "k1" appears twice/],
    [`bad id:${k1.key}`, /entry 1: expected ID:BASE64KEY/],
  ])('refuses %#, naming the setting and never the value', (value, pattern) => {
    let e: unknown;
    try {
      load({ T1_PAYLOAD_KEYS: value });
    } catch (err) {
      e = err;
    }
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as Error).message).toMatch(/temporal\.payloadKeys \[T1_PAYLOAD_KEYS\]/);
    expect((e as Error).message).toMatch(pattern);
    const keyText = value.split(/[:,]/)[1];
    if (keyText) expect((e as Error).message).not.toContain(keyText);
  });

  it('T1_PAYLOAD_KEYS_FILE: the same entries from a file (a mounted Secret); not together with T1_PAYLOAD_KEYS', () => {
    const dir = mkdtempSync(join(tmpdir(), 't1-keys-'));
    try {
      const file = join(dir, 'keys');
      writeFileSync(file, `${env([k2])}\n${env([k1])}\n`, { mode: 0o600 });
      expect(load({ T1_PAYLOAD_KEYS_FILE: file }).payloadKeys).toEqual([k2, k1]);
      expect(() => load({ T1_PAYLOAD_KEYS_FILE: file, T1_PAYLOAD_KEYS: env([k1]) })).toThrow(/not both/);
      expect(() => load({ T1_PAYLOAD_KEYS_FILE: join(dir, 'missing') })).toThrow(/T1_PAYLOAD_KEYS_FILE\]: cannot read .*ENOENT/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('redacted() keeps key ids and hides keys and the UI codec endpoint', () => {
    const c = loadConnection(
      {},
      {
        T1_STATE_DIR: '/nonexistent-t1',
        T1_S3_ACCESS_KEY_ID: 'AKID',
        T1_S3_SECRET_ACCESS_KEY: 'sk',
        T1_PAYLOAD_KEYS: env([k1]),
        T1_UI_CODEC_ENDPOINT: 'http://127.0.0.1:8234/the-codec-token',
      },
    );
    expect(c.stack.uiCodecEndpoint).toBe('http://127.0.0.1:8234/the-codec-token');
    const shown = JSON.stringify(redacted(c));
    expect(shown).toContain('"id":"k1"');
    expect(shown).not.toContain(k1.key);
    expect(shown).not.toContain('the-codec-token');
  });
});

describe('codec server (HTTP, remote codec protocol)', () => {
  const token = 'a-token-of-enough-length-0123';
  const ui = 'http://127.0.0.1:8233';
  let server: CodecServer;
  const refused: string[] = [];
  beforeAll(async () => {
    server = await startCodecServer({ codec: new EncryptionCodec([k2, k1]), token, uiOrigins: [ui], log: (l) => refused.push(l) });
  });
  afterAll(() => server.close());

  const toJson = (p: Payload) => ({
    metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
    data: Buffer.from(p.data ?? []).toString('base64'),
  });
  type Reply = { payloads: { metadata: Record<string, string>; data: string }[]; error?: string };
  const json = async (r: Response) => (await r.json()) as Reply;
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });

  it('decodes with a bearer token or the token in the path; encodes; refuses without or with a wrong token', async () => {
    const [enc] = await new EncryptionCodec([k1]).encode([defaultPayloadConverter.toPayload(secretValue)]);
    const body = { payloads: [toJson(enc!)] };
    for (const r of [await post('/decode', body, { Authorization: `Bearer ${token}` }), await post(`/${token}/decode`, body)]) {
      expect(r.status).toBe(200);
      const [p] = (await json(r)).payloads;
      expect(Buffer.from(p.metadata.encoding, 'base64').toString()).toBe('json/plain');
      expect(JSON.parse(Buffer.from(p.data, 'base64').toString())).toEqual(secretValue);
    }
    const encoded = await json(
      await post('/encode', { payloads: [toJson(defaultPayloadConverter.toPayload(7))] }, { Authorization: `Bearer ${token}` }),
    );
    expect(Buffer.from(encoded.payloads[0].metadata[METADATA_KEY_ID], 'base64').toString()).toBe('k2');

    for (const r of [
      await post('/decode', body),
      await post('/decode', body, { Authorization: `Bearer ${token}x` }),
      await post('/wrong-token/decode', body),
    ]) {
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toBe('Bearer');
      expect(await r.text()).not.toContain('json/plain');
    }
    expect(refused.join('\n')).not.toContain(token);
    expect(refused.join('\n')).not.toContain('wrong-token');
  });

  it('answers a preflight from the UI origin only, and CORS-marks the real response', async () => {
    const preflight = (origin: string) =>
      fetch(`${server.url}/decode`, {
        method: 'OPTIONS',
        headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type,x-namespace' },
      });
    const ok = await preflight(ui);
    expect(ok.status).toBe(204);
    expect(ok.headers.get('access-control-allow-origin')).toBe(ui);
    expect(ok.headers.get('access-control-allow-headers')).toBe('Content-Type, X-Namespace, Authorization');
    expect(ok.headers.get('access-control-allow-methods')).toContain('POST');
    const other = await preflight('http://evil.example');
    expect(other.status).toBe(403);
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    const r = await post(`/${token}/decode`, { payloads: [] }, { Origin: ui });
    expect(r.headers.get('access-control-allow-origin')).toBe(ui);
  });

  it('says what is wrong with a bad request: path, method, body, an unknown key id', async () => {
    const auth = { Authorization: `Bearer ${token}` };
    expect((await post('/nothing', {}, auth)).status).toBe(404);
    expect((await fetch(`${server.url}/decode`, { headers: auth })).status).toBe(405);
    expect((await post('/decode', { wrong: 1 }, auth)).status).toBe(400);
    const [foreign] = await new EncryptionCodec([key('k0')]).encode([defaultPayloadConverter.toPayload(1)]);
    const r = await post('/decode', { payloads: [toJson(foreign!)] }, auth);
    expect(r.status).toBe(422);
    expect((await json(r)).error).toMatch(/key "k0".*it holds k2, k1/);
  });
});
