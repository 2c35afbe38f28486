import { loadTemporal } from '../../config/connection';
import { encryptionCodec } from '../../infra/codec';
import { startCodecServer } from '../../infra/codec-server';
import { UsageError, type Command } from '../args';

const MIN_TOKEN_CHARS = 16;

export const codecServerCommands: Command[] = [
  {
    path: ['codec-server'],
    summary: "Serve Temporal's remote codec endpoint (POST /decode, /encode) so the web UI and `temporal` CLI show encrypted payloads",
    usage:
      'codec-server [--port N] [--host ADDR] [--ui-origin URL]... [--token-env VAR]\n\n' +
      'Decrypts with the keys of T1_PAYLOAD_KEYS (or T1_PAYLOAD_KEYS_FILE). Every request needs the token in the variable\n' +
      'named by --token-env (default T1_CODEC_TOKEN, at least 16 characters): `Authorization: Bearer TOKEN`, or the endpoint\n' +
      'URL http://HOST:PORT/TOKEN for a UI without login (e.g. T1_UI_CODEC_ENDPOINT for `t1 stack up`). Browsers may call\n' +
      'it from --ui-origin only (repeatable; default: the origin of the Temporal UI URL). Listens on 127.0.0.1:8234 by default.',
    options: {
      port: { type: 'string', default: '8234' },
      host: { type: 'string', default: '127.0.0.1' },
      'ui-origin': { type: 'string', multiple: true },
      'token-env': { type: 'string', default: 'T1_CODEC_TOKEN' },
    },
    async run(v) {
      const port = Number(v.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port: expected a port number, got "${v.port}"`);
      const token = process.env[v['token-env']] ?? '';
      if (token.length < MIN_TOKEN_CHARS)
        throw new UsageError(
          `${v['token-env']}: set it to a random token of at least ${MIN_TOKEN_CHARS} characters (e.g. openssl rand -hex 24)`,
        );
      const temporal = loadTemporal();
      if (!temporal.payloadKeys)
        throw new UsageError(
          'temporal.payloadKeys [T1_PAYLOAD_KEYS]: no keys are set (or T1_PAYLOAD_KEYS_FILE), so there is nothing to decrypt',
        );
      const uiOrigins = ((v['ui-origin'] as string[] | undefined) ?? [temporal.uiUrl]).map((u) => {
        try {
          return new URL(u).origin;
        } catch {
          throw new UsageError(`--ui-origin: expected a URL such as http://127.0.0.1:8233, got "${u}"`);
        }
      });
      const server = await startCodecServer({
        codec: encryptionCodec(temporal),
        token,
        uiOrigins,
        host: v.host,
        port,
        log: (l) => console.error(`[codec-server] ${l}`),
      });
      const ids = temporal.payloadKeys.map((k, i) => (i === 0 ? `${k.id} (encrypts)` : k.id)).join(', ');
      console.error(`[codec-server] ${server.url} (keys ${ids}; browsers from ${uiOrigins.join(', ')}); Ctrl-C stops it`);
      console.error(
        `[codec-server] UI endpoint: ${server.url}/<token of ${v['token-env']}>; CLI: temporal --codec-endpoint ${server.url} --codec-auth "Bearer <token>"`,
      );
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await server.close();
    },
  },
];
