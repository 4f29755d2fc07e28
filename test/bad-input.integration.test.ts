import { randomUUID } from 'node:crypto';
import { Wallet } from 'ethers';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BEARER_PROTOCOL_PREFIX, ERRORS, SUBPROTOCOL, requestSchemas, type ErrorBody, type ErrorCode, type RequestType } from '../protocol/index.ts';
import { signIn, signSiwe } from '../testkit/client.ts';
import { migrate, startNode, type NodeProcess } from '../testkit/node.ts';
import { createTestDatabase } from '../testkit/pg.ts';
import { REDIS_URL, clearPrefix, testPrefix } from '../testkit/redis.ts';

/**
 * Malformed values for every field of every request type and every HTTP route: each gets a
 * clean error from the catalogue (a 4xx; never INTERNAL) and the node logs no error.
 */

/** A mixed-case address whose EIP-55 checksum is wrong (the EIP's example, one letter flipped). */
const WRONG_CHECKSUM = '0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed';
const INT8_MAX = '9223372036854775807';

const BAD_ADDRESSES = [WRONG_CHECKSUM, '0x1234', '5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed', `0x${'g'.repeat(40)}`, `0X${'a'.repeat(40)}`, ` 0x${'a'.repeat(40)}`];
const BAD_MESSAGE_IDS = ['9223372036854775808', '9999999999999999999', '18446744073709551615', '99999999999999999999', '-1', '1.5', '1e3', '', ' 1', '0x10', 'abc'];
const EDGE_MESSAGE_IDS = [INT8_MAX, '0', '0000000000000000001'];
const BAD_UUIDS = ['not-a-uuid', '00000000-0000-0000-0000-00000000000', `${randomUUID()}x`, "'; drop table calls; --"];
const BAD_OPAQUE = ['x', 5, null];
/** Values of the wrong type or size for any field; some are valid for some fields, so they only have to be answered cleanly. */
const GENERIC: unknown[] = [null, 12345, -1, 1.5, true, {}, [], 'x'.repeat(5000), '', 'a\u0000b', '\ud800'];

interface FieldCases {
  /** Must be refused with INVALID_FIELDS. */
  invalid: unknown[];
  /** Valid by the schema but at an edge: answered with a result or a clean error. */
  edge?: unknown[];
}

type Valid = Record<string, unknown>;

describe('bad input is a 4xx, never INTERNAL', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  const prefix = testPrefix('badinput');
  let node: NodeProcess;
  let token: string;
  let me: string;
  let peer: string;
  const sockets: WebSocket[] = [];

  beforeAll(async () => {
    db = await createTestDatabase('badinput');
    await migrate(db.url);
    node = await startNode('signaling', {
      DATABASE_URL: db.url,
      REDIS_URL,
      REDIS_KEY_PREFIX: prefix,
      RATE_LIMIT_AUTH: '100000/60',
      RATE_LIMIT_CONNECT: '100000/60',
      RATE_LIMIT_MESSAGES: '100000/10',
      WS_MAX_FRAMES_PER_SECOND: '1000',
      UPLOAD_MAX_BYTES: '65536',
    });
    const t = await signIn(node.url, Wallet.createRandom());
    token = t.token;
    me = t.address;
    peer = (await signIn(node.url, Wallet.createRandom())).address;
  }, 120_000);

  afterAll(async () => {
    for (const s of sockets) s.terminate();
    await node?.kill('SIGKILL');
    await clearPrefix(prefix);
    await db?.drop();
  });

  /** A raw socket: frames go out exactly as given, answers are matched on `re`. */
  async function open(bearer = token): Promise<{ ws: WebSocket; send(frame: string | Buffer, re: string | null): Promise<Record<string, unknown>> }> {
    const ws = new WebSocket(`${node.url.replace(/^http/, 'ws')}/ws`, [SUBPROTOCOL, `${BEARER_PROTOCOL_PREFIX}${bearer}`], { perMessageDeflate: false });
    sockets.push(ws);
    const frames: Record<string, unknown>[] = [];
    let wake: (() => void) | null = null;
    ws.on('message', (raw) => {
      frames.push(JSON.parse(raw.toString()) as Record<string, unknown>);
      wake?.();
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return {
      ws,
      async send(frame, re) {
        ws.send(frame, { binary: Buffer.isBuffer(frame) });
        const until = Date.now() + 10_000;
        for (;;) {
          const i = frames.findIndex((f) => 're' in f && f.re === re);
          if (i >= 0) return frames.splice(i, 1)[0]!;
          if (Date.now() > until || ws.readyState !== WebSocket.OPEN) throw new Error(`no answer to ${String(frame).slice(0, 200)}`);
          await new Promise<void>((r) => {
            wake = r;
            setTimeout(r, 200);
          });
        }
      },
    };
  }

  function isCatalogueCode(code: unknown): code is ErrorCode {
    return typeof code === 'string' && Object.hasOwn(ERRORS, code);
  }

  it('answers malformed values for every field of every request type with a clean 4xx', async () => {
    const callId = randomUUID();
    const groupId = randomUUID();
    const valid: Record<RequestType, Valid> = {
      'chat.send': { to: peer, clientId: randomUUID(), kind: 'text', text: 'hello' },
      'chat.history': { peer, before: '100', limit: 10 },
      'chat.sync': { after: '0', limit: 10 },
      'chat.delivered': { peer, ids: ['1'] },
      'chat.read': { peer, upTo: '1' },
      'chat.typing': { to: peer, typing: true },
      'contacts.list': {},
      'contacts.add': { address: peer },
      'presence.query': { addresses: [peer] },
      'session.refresh': {},
      'session.signOut': {},
      'call.start': { to: [peer], kind: 'audio' },
      'call.accept': { callId },
      'call.reject': { callId },
      'call.cancel': { callId },
      'call.join': { callId, device: 'tab-1' },
      'call.leave': { callId },
      'call.turnCredentials': { callId },
      'call.history': { before: '2024-01-01T00:00:00Z', limit: 10 },
      'call.createTransport': { callId, direction: 'send' },
      'call.connectTransport': { callId, transportId: randomUUID(), dtlsParameters: { role: 'client', fingerprints: [] } },
      'call.restartIce': { callId, transportId: randomUUID() },
      'call.produce': { callId, transportId: randomUUID(), kind: 'audio', rtpParameters: { codecs: [], encodings: [] }, source: 'mic' },
      'call.pauseProducer': { callId, producerId: randomUUID(), paused: true },
      'call.closeProducer': { callId, producerId: randomUUID() },
      'call.consume': { callId, transportId: randomUUID(), producerId: randomUUID(), rtpCapabilities: { codecs: [] } },
      'call.resumeConsumer': { callId, consumerId: randomUUID() },
      'call.setPreferredLayers': { callId, consumerId: randomUUID(), spatialLayer: 1, temporalLayer: 1 },
      'requests.list': {},
      'requests.accept': { address: peer },
      'requests.delete': { address: peer },
      'blocks.list': {},
      'blocks.add': { address: peer },
      'blocks.remove': { address: peer },
      'group.create': { name: 'team', description: 'about', picture: '#00aaff', members: [peer] },
      'group.get': { group: groupId },
      'group.list': {},
      'group.addMembers': { group: groupId, members: [peer] },
      'group.removeMember': { group: groupId, member: peer },
      'group.leave': { group: groupId },
      'group.update': { group: groupId, name: 'renamed' },
      'group.setRole': { group: groupId, member: peer, role: 'admin' },
      'group.accept': { group: groupId },
      'group.decline': { group: groupId },
      'group.send': { group: groupId, clientId: randomUUID(), kind: 'text', text: 'hello group' },
      'group.history': { group: groupId, before: '100', limit: 10 },
      'group.delivered': { group: groupId, upTo: '1' },
      'group.read': { group: groupId, upTo: '1' },
      'group.receipts': { group: groupId, ids: ['1'] },
      'group.typing': { group: groupId, typing: true },
      'group.call': { group: groupId, kind: 'audio' },
      'ens.names': { addresses: [peer] },
      'ens.resolve': { name: 'alice.eth' },
    };
    const lower = peer.toLowerCase();
    const upper = `0x${peer.slice(2).toUpperCase()}`;
    const addressCases: FieldCases = { invalid: BAD_ADDRESSES, edge: [lower, upper, `0x${'0'.repeat(40)}`] };
    const idCases: FieldCases = { invalid: BAD_MESSAGE_IDS, edge: EDGE_MESSAGE_IDS };
    const uuidCases: FieldCases = { invalid: BAD_UUIDS, edge: [randomUUID().toUpperCase()] };
    const fields: Record<string, FieldCases> = {
      to: addressCases,
      peer: addressCases,
      address: addressCases,
      'call.start.to': { invalid: [[WRONG_CHECKSUM], [peer, WRONG_CHECKSUM], [], Array(64).fill(peer), peer, ...BAD_ADDRESSES.map((a) => [a])], edge: [[lower], [upper, peer], [me]] },
      addresses: { invalid: [[WRONG_CHECKSUM], [peer, '0x12'], [], Array(501).fill(peer), peer], edge: [[lower, upper], Array(500).fill(upper)] },
      before: idCases,
      after: idCases,
      upTo: idCases,
      ids: { invalid: [[], Array(501).fill('1'), '1', ...BAD_MESSAGE_IDS.map((v) => [v]), ['1', INT8_MAX.replace(/7$/, '8')]], edge: [[INT8_MAX], [INT8_MAX, '0', '1']] },
      limit: { invalid: [0, -1, 1_000_000, 1.5, '5'], edge: [1] },
      clientId: { invalid: ['short', 'x'.repeat(65), 'has space!', 'ümlaut12345'], edge: ['x'.repeat(64)] },
      kind: { invalid: ['image', 'TEXT'] },
      'call.start.kind': { invalid: ['screen', 'TEXT'], edge: ['video'] },
      'call.produce.kind': { invalid: ['data', 'text'] },
      text: { invalid: ['', '   ', 'x'.repeat(8001), 'nul \u0000 inside'], edge: ['x'.repeat(8000), 'emoji \u{1F600}', 'lone \ud800 surrogate'] },
      attachmentId: { invalid: BAD_UUIDS, edge: [randomUUID()] },
      typing: { invalid: ['yes', 1] },
      callId: uuidCases,
      transportId: uuidCases,
      producerId: uuidCases,
      consumerId: uuidCases,
      device: { invalid: ['', 'x'.repeat(65), 'a b', 'ä'], edge: ['x'.repeat(64)] },
      direction: { invalid: ['both', 'SEND'] },
      dtlsParameters: { invalid: BAD_OPAQUE },
      rtpParameters: { invalid: BAD_OPAQUE },
      rtpCapabilities: { invalid: BAD_OPAQUE },
      source: { invalid: ['webcam'] },
      paused: { invalid: ['true', 1] },
      spatialLayer: { invalid: [-1, 4, 1.5, '1'] },
      temporalLayer: { invalid: [-1, 4, 1.5, '1'] },
      'call.history.before': {
        invalid: ['yesterday', '2024-13-45T00:00:00Z', '2024-01-01', '2024-01-01T00:00:00+02:00', INT8_MAX, '0000-01-01T00:00:00Z'],
        edge: ['0001-01-01T00:00:00Z', '1970-01-01T00:00:00Z', '9999-12-31T23:59:59.999Z'],
      },
      'chat.history.before': idCases,
      'group.history.before': idCases,
      group: uuidCases,
      member: addressCases,
      members: { invalid: [[WRONG_CHECKSUM], [peer, '0x12'], Array(1001).fill(peer), peer], edge: [[lower, upper], [me], Array(1000).fill(upper)] },
      'group.addMembers.members': { invalid: [[], [WRONG_CHECKSUM], Array(1001).fill(peer), peer], edge: [[lower, upper], [me]] },
      name: { invalid: ['', '   ', 'x'.repeat(65), 'nul \u0000', 5], edge: ['x'.repeat(64), '\u{1F600} club'] },
      description: { invalid: ['x'.repeat(281), 'nul \u0000', 5], edge: ['', 'x'.repeat(280)] },
      'group.update.description': { invalid: ['x'.repeat(281), 5], edge: [null, ''] },
      picture: { invalid: ['', 'red', '#12345', '#1234567', 'a\u{1F600}', '\u{1F600}x', 5, null], edge: ['#A0b1C2', '\u{1F600}', '\u{1F468}\u200D\u{1F469}\u200D\u{1F467}'] },
      'group.update.picture': { invalid: ['', 'red', '#12345'], edge: [null, '\u{1F600}'] },
      role: { invalid: ['owner', 'ADMIN', ''], edge: ['member'] },
      'group.call.kind': { invalid: ['screen', 'TEXT'], edge: ['video'] },
      details: { invalid: ['yes', 1], edge: [true] },
      'group.receipts.ids': { invalid: [[], Array(101).fill('1'), '1', ...BAD_MESSAGE_IDS.map((v) => [v])], edge: [[INT8_MAX], [INT8_MAX, '0', '1']] },
      groups: { invalid: ['yes', 1], edge: [true] },
      gate: {
        invalid: [
          'any',
          { match: 'any', rules: [] },
          { match: 'some', rules: [{ standard: 'erc721', chainId: 1, contract: lower }] },
          { match: 'any', rules: [{ standard: 'erc20', chainId: 1, contract: WRONG_CHECKSUM, minAmount: '1' }] },
          { match: 'any', rules: [{ standard: 'erc20', chainId: 1, contract: lower, minAmount: '0' }] },
          { match: 'any', rules: [{ standard: 'erc1155', chainId: 1, contract: lower, minAmount: '1' }] },
          { match: 'all', rules: Array(11).fill({ standard: 'erc721', chainId: 1, contract: lower }) },
          null,
        ],
        // This node has no CHAIN_RPC_URLS: a well-formed gate is CHAIN_NOT_CONFIGURED, never INTERNAL.
        edge: [{ match: 'all', rules: [{ standard: 'erc721', chainId: 1, contract: lower, tokenId: '0' }] }],
      },
      'group.update.gate': { invalid: [{ match: 'any', rules: [] }, 'none'], edge: [null] },
      'ens.names.addresses': { invalid: [[WRONG_CHECKSUM], [peer, '0x12'], [], Array(51).fill(peer), peer], edge: [[lower, upper], Array(50).fill(upper)] },
      'ens.resolve.name': { invalid: ['', 'eth', 'no dots', 'a'.repeat(256), 'bad\u0000.eth', '\ud800.eth', 'x..eth'], edge: ['ALICE.eth', 'sub.alice.eth'] },
    };

    interface Case {
      label: string;
      frame: string | Buffer;
      re: string | null;
      /** invalid: must be INVALID_FIELDS; refused: must be a 4xx error; clean: a result or a non-INTERNAL error. */
      expect: 'invalid' | 'refused' | 'clean';
    }
    // The server counts a terminated socket out when it sees the close; on a loaded machine a
    // few may still count against MAX_CONNECTIONS_PER_USER (429): wait for them.
    const reopen = async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await open();
        } catch (err) {
          if (attempt >= 50 || !String((err as Error).message).includes('429')) throw err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    };
    const cases: Case[] = [];
    let seq = 0;
    const frameOf = (type: string, body: Valid, label: string, expect: Case['expect']) => {
      const id = `c${++seq}`;
      cases.push({ label, frame: JSON.stringify({ id, type, ...body }), re: id, expect });
    };

    const uncovered: string[] = [];
    for (const [type, schema] of Object.entries(requestSchemas) as [RequestType, (typeof requestSchemas)[RequestType]][]) {
      const base = valid[type];
      // A valid sign-out would end the session every other case uses: it runs on its own below.
      if (type !== 'session.signOut') frameOf(type, base, `${type} valid`, 'clean');
      frameOf(type, { ...base, from: peer }, `${type} unknown field`, 'invalid');
      for (const field of Object.keys(schema.shape)) {
        if (field === 'type' || field === 'id') continue;
        const spec = fields[`${type}.${field}`] ?? fields[field];
        if (!spec) uncovered.push(`${type}.${field}`);
        for (const v of spec?.invalid ?? []) frameOf(type, { ...base, [field]: v }, `${type}.${field} = ${JSON.stringify(v)?.slice(0, 60)}`, 'invalid');
        for (const v of spec?.edge ?? []) frameOf(type, { ...base, [field]: v }, `${type}.${field} = ${JSON.stringify(v)?.slice(0, 60)} (edge)`, 'clean');
        for (const v of GENERIC) frameOf(type, { ...base, [field]: v }, `${type}.${field} = ${JSON.stringify(v)?.slice(0, 60)} (generic)`, 'clean');
        if (field in base) {
          const rest = { ...base };
          delete rest[field];
          frameOf(type, rest, `${type}.${field} missing`, schema.shape[field as keyof typeof schema.shape]?.safeParse(undefined).success ? 'clean' : 'invalid');
        }
      }
    }
    // Every field has its own malformed values (a new field needs a row above).
    expect(uncovered).toEqual([]);

    // Frames that are not requests at all.
    const wire: [string, string | Buffer, string | null][] = [
      ['not JSON', 'not json', null],
      ['JSON array', '[1,2]', null],
      ['JSON string', '"chat.sync"', null],
      ['JSON null', 'null', null],
      ['no id', '{"type":"chat.sync"}', null],
      ['numeric id', '{"id":5,"type":"chat.sync"}', null],
      ['id too long', JSON.stringify({ id: 'x'.repeat(65), type: 'chat.sync' }), null],
      ['binary frame', Buffer.from('{"id":"b1","type":"chat.sync"}'), null],
      ['unknown type', '{"id":"w1","type":"chat.delete"}', 'w1'],
      ['numeric type', '{"id":"w2","type":5}', 'w2'],
      ['prototype type', '{"id":"w3","type":"__proto__"}', 'w3'],
      ['inherited type', '{"id":"w4","type":"toString"}', 'w4'],
      ['__proto__ field', '{"id":"w5","type":"chat.sync","__proto__":{"limit":1}}', 'w5'],
      ['missing type', '{"id":"w6"}', 'w6'],
    ];
    for (const [label, frame, re] of wire) cases.push({ label: `frame: ${label}`, frame, re, expect: label === '__proto__ field' ? 'clean' : 'refused' });

    // A connection is closed after 10 refused frames in 10 s: a fresh one every 8 cases.
    const failures: string[] = [];
    let conn: Awaited<ReturnType<typeof open>> | null = null;
    for (let i = 0; i < cases.length; i++) {
      const c = cases[i]!;
      if (i % 8 === 0) {
        conn?.ws.terminate();
        conn = await reopen();
      }
      let answer: Record<string, unknown>;
      try {
        answer = await conn!.send(c.frame, c.re);
      } catch (err) {
        failures.push(`${c.label}: ${(err as Error).message}`);
        conn?.ws.terminate();
        conn = await reopen();
        continue;
      }
      const error = answer.error as ErrorBody | undefined;
      if (answer.ok === true) {
        if (c.expect !== 'clean') failures.push(`${c.label}: accepted`);
        // Later sockets open with the newest token: the one a refresh replaced lasts only 10 s more.
        const fresh = (answer.data as { token?: unknown } | undefined)?.token;
        if (typeof fresh === 'string') token = fresh;
        continue;
      }
      if (!error || !isCatalogueCode(error.code)) {
        failures.push(`${c.label}: not a catalogue error: ${JSON.stringify(answer).slice(0, 200)}`);
        continue;
      }
      const status = ERRORS[error.code].status;
      if (error.code === 'INTERNAL') failures.push(`${c.label}: INTERNAL`);
      else if (c.expect === 'invalid' && error.code !== 'INVALID_FIELDS') failures.push(`${c.label}: ${error.code}, expected INVALID_FIELDS`);
      else if (c.expect === 'refused' && (status < 400 || status >= 500)) failures.push(`${c.label}: ${error.code} (${status})`);
      // Valid requests may meet a missing dependency (no SFU here: MEDIA_UNAVAILABLE; no
      // CHAIN_RPC_URLS: CHAIN_NOT_CONFIGURED), never a 500.
      else if (status >= 500 && error.code !== 'MEDIA_UNAVAILABLE' && error.code !== 'CHAIN_NOT_CONFIGURED') failures.push(`${c.label}: ${error.code} (${status})`);
      if (error.message.includes('\n    at ')) failures.push(`${c.label}: stack trace in the message`);
    }
    conn?.ws.terminate();
    const other = await signIn(node.url, Wallet.createRandom());
    const own = await open(other.token);
    const signedOut = await own.send(JSON.stringify({ id: 'so1', type: 'session.signOut' }), 'so1');
    if (signedOut.ok !== true) failures.push(`session.signOut valid: ${JSON.stringify(signedOut).slice(0, 200)}`);
    own.ws.terminate();
    expect(failures).toEqual([]);
    expect(cases.length).toBeGreaterThan(500);
  }, 300_000);

  it('answers malformed HTTP requests with a clean 4xx', async () => {
    // A session of its own: the frame table above refreshes (and so supersedes) the shared token.
    const mine = await signIn(node.url, Wallet.createRandom());
    const auth = { authorization: `Bearer ${mine.token}` };
    const siwe = await signSiwe(node.url, Wallet.createRandom());
    const json = (body: unknown) => ({ 'content-type': 'application/json', body: typeof body === 'string' ? body : JSON.stringify(body) });
    const audio = { 'content-type': 'audio/ogg', body: 'OggS-not-really' };
    const cases: { label: string; method: string; path: string; headers?: Record<string, string>; body?: { 'content-type': string; body: string }; expect: number | 'clean' }[] = [
      { label: 'nonce, no body', method: 'POST', path: '/auth/nonce', expect: 'clean' },
      { label: 'nonce, broken JSON', method: 'POST', path: '/auth/nonce', body: json('{"a":'), expect: 400 },
      { label: 'nonce, text body', method: 'POST', path: '/auth/nonce', body: { 'content-type': 'text/plain', body: 'hi' }, expect: 'clean' },
      { label: 'nonce, GET', method: 'GET', path: '/auth/nonce', expect: 404 },
      { label: 'verify, no body', method: 'POST', path: '/auth/verify', expect: 400 },
      { label: 'verify, empty object', method: 'POST', path: '/auth/verify', body: json({}), expect: 400 },
      { label: 'verify, array', method: 'POST', path: '/auth/verify', body: json([siwe.message, siwe.signature]), expect: 400 },
      { label: 'verify, broken JSON', method: 'POST', path: '/auth/verify', body: json('{"message":'), expect: 400 },
      { label: 'verify, numeric message', method: 'POST', path: '/auth/verify', body: json({ message: 5, signature: siwe.signature }), expect: 400 },
      { label: 'verify, short signature', method: 'POST', path: '/auth/verify', body: json({ message: siwe.message, signature: '0x1234' }), expect: 400 },
      { label: 'verify, signature not hex', method: 'POST', path: '/auth/verify', body: json({ message: siwe.message, signature: `0x${'z'.repeat(130)}` }), expect: 400 },
      { label: 'verify, impossible signature', method: 'POST', path: '/auth/verify', body: json({ message: siwe.message, signature: `0x${'ff'.repeat(65)}` }), expect: 'clean' },
      { label: 'verify, zero signature', method: 'POST', path: '/auth/verify', body: json({ message: siwe.message, signature: `0x${'00'.repeat(65)}` }), expect: 'clean' },
      { label: 'verify, not a SIWE message', method: 'POST', path: '/auth/verify', body: json({ message: 'hello', signature: siwe.signature }), expect: 400 },
      { label: 'verify, NUL in message', method: 'POST', path: '/auth/verify', body: json({ message: `${siwe.message}\u0000`, signature: siwe.signature }), expect: 'clean' },
      { label: 'verify, wrong-checksum address in message', method: 'POST', path: '/auth/verify', body: json({ message: siwe.message.replace(/0x[0-9a-fA-F]{40}/, WRONG_CHECKSUM), signature: siwe.signature }), expect: 'clean' },
      { label: 'verify, message too long', method: 'POST', path: '/auth/verify', body: json({ message: 'x'.repeat(5000), signature: siwe.signature }), expect: 400 },
      { label: 'verify, body too large', method: 'POST', path: '/auth/verify', body: json({ message: 'x'.repeat(20_000), signature: siwe.signature }), expect: 413 },
      { label: 'verify, text/plain', method: 'POST', path: '/auth/verify', body: { 'content-type': 'text/plain', body: 'hi' }, expect: 400 },
      { label: 'upload, no token', method: 'POST', path: `/media?to=${peer}`, body: audio, expect: 401 },
      { label: 'upload, bad token', method: 'POST', path: `/media?to=${peer}`, headers: { authorization: 'Bearer nope' }, body: audio, expect: 401 },
      { label: 'upload, no recipient', method: 'POST', path: '/media', headers: auth, body: audio, expect: 400 },
      ...BAD_ADDRESSES.map((a) => ({ label: `upload, to=${a}`, method: 'POST', path: `/media?to=${encodeURIComponent(a)}`, headers: auth, body: audio, expect: 400 as const })),
      { label: 'upload, two recipients', method: 'POST', path: `/media?to=${peer}&to=${peer}`, headers: auth, body: audio, expect: 400 },
      { label: 'upload, to myself', method: 'POST', path: `/media?to=${mine.address}`, headers: auth, body: audio, expect: 400 },
      { label: 'upload, text/plain', method: 'POST', path: `/media?to=${peer}`, headers: auth, body: { 'content-type': 'text/plain', body: 'hi' }, expect: 415 },
      { label: 'upload, odd audio type', method: 'POST', path: `/media?to=${peer}`, headers: auth, body: { 'content-type': 'audio/<script>', body: 'x' }, expect: 'clean' },
      { label: 'upload, empty body', method: 'POST', path: `/media?to=${peer}`, headers: auth, body: { 'content-type': 'audio/ogg', body: '' }, expect: 400 },
      { label: 'upload, too large', method: 'POST', path: `/media?to=${peer}`, headers: auth, body: { 'content-type': 'audio/ogg', body: 'x'.repeat(70_000) }, expect: 413 },
      { label: 'upload, lowercase recipient', method: 'POST', path: `/media?to=${peer.toLowerCase()}`, headers: auth, body: audio, expect: 201 },
      { label: 'download, no token', method: 'GET', path: `/media/${randomUUID()}`, expect: 401 },
      { label: 'download, not a uuid', method: 'GET', path: '/media/not-a-uuid', headers: auth, expect: 400 },
      { label: 'download, traversal', method: 'GET', path: '/media/..%2F..%2Fetc%2Fpasswd', headers: auth, expect: 400 },
      { label: 'download, broken URL encoding', method: 'GET', path: '/media/%E0%A4%A', headers: auth, expect: 400 },
      { label: 'download, unknown', method: 'GET', path: `/media/${randomUUID()}`, headers: auth, expect: 404 },
      { label: 'healthz', method: 'GET', path: '/healthz?x=%ZZ', expect: 'clean' },
      { label: 'healthz, POST', method: 'POST', path: '/healthz', body: json('{'), expect: 'clean' },
      { label: 'readyz', method: 'GET', path: '/readyz', expect: 200 },
      { label: 'readyz, DELETE', method: 'DELETE', path: '/readyz', expect: 404 },
      { label: 'metrics on the public listener', method: 'GET', path: '/metrics', expect: 404 },
    ];
    const failures: string[] = [];
    for (const c of cases) {
      const res = await fetch(`${node.url}${c.path}`, {
        method: c.method,
        headers: { ...(c.headers ?? {}), ...(c.body ? { 'content-type': c.body['content-type'] } : {}) },
        ...(c.body ? { body: c.body.body } : {}),
      });
      const text = await res.text();
      if (typeof c.expect === 'number' && res.status !== c.expect) failures.push(`${c.label}: ${res.status}, expected ${c.expect}: ${text.slice(0, 200)}`);
      if (res.status >= 500) failures.push(`${c.label}: ${res.status}: ${text.slice(0, 200)}`);
      if (res.status >= 400) {
        let code: unknown;
        try {
          code = (JSON.parse(text) as { error?: { code?: unknown } }).error?.code;
        } catch {
          code = undefined;
        }
        if (!isCatalogueCode(code)) failures.push(`${c.label}: ${res.status} without a catalogue code: ${text.slice(0, 200)}`);
        else if (ERRORS[code].status !== res.status) failures.push(`${c.label}: ${code} answered with ${res.status}`);
      }
      if (text.includes('\n    at ')) failures.push(`${c.label}: stack trace in the answer`);
    }
    expect(failures).toEqual([]);
  }, 120_000);

  it('logs no error for any of it, and counts no INTERNAL', async () => {
    const errors = node.logs.filter((l) => /"level":(50|60)/.test(l));
    expect(errors).toEqual([]);
    const metrics = await (await fetch(`${node.metricsUrl}/metrics`)).text();
    expect(metrics).not.toMatch(/blockrtc_ws_request_errors_total\{code="INTERNAL"\} [1-9]/);
    expect(metrics).toMatch(/blockrtc_ws_request_errors_total\{code="INVALID_FIELDS"\} [1-9]/);
  });

  /** Frames a client keeps sending after the server closed its connection count for nothing. */
  describe('a closed socket stops counting', () => {
    const sample = async (name: string) => {
      const text = await (await fetch(`${node.metricsUrl}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith(`${name} `));
      return line ? Number(line.slice(name.length + 1)) : 0;
    };
    const abuseWarnings = (address: string) => node.logs.filter((l) => l.includes('closing abusive connection') && l.includes(address));

    it('a flood is closed with 1008 once: one warning, no frames handled after the close', async () => {
      const t = await signIn(node.url, Wallet.createRandom());
      const errorsBefore = await sample('blockrtc_ws_request_errors_total{code="UNKNOWN_TYPE"}');
      const conn = await open(t.token);
      const closed = new Promise<number>((r) => conn.ws.once('close', (code) => r(code)));
      // 2,000 frames in one burst: the 11th bad one closes the connection.
      const burst = Array.from({ length: 2000 }, (_, i) => JSON.stringify({ id: `f${i}`, type: 'chat.flood' }));
      for (const f of burst) conn.ws.send(f);
      expect(await closed).toBe(1008);
      await new Promise((r) => setTimeout(r, 300));
      expect(abuseWarnings(t.address)).toHaveLength(1);
      const handled = (await sample('blockrtc_ws_request_errors_total{code="UNKNOWN_TYPE"}')) - errorsBefore;
      expect(handled).toBeGreaterThanOrEqual(10);
      expect(handled).toBeLessThanOrEqual(11);
    });

    it('a peer that never completes the close is cut after the grace period', async () => {
      const t = await signIn(node.url, Wallet.createRandom());
      const before = await sample('blockrtc_ws_connections');
      const conn = await open(t.token);
      await new Promise((r) => setTimeout(r, 200));
      expect(await sample('blockrtc_ws_connections')).toBe(before + 1);
      // Stop reading (so the close frame is never answered), then flood.
      const socket = (conn.ws as unknown as { _socket: import('node:net').Socket })._socket;
      const burst = Array.from({ length: 2000 }, (_, i) => JSON.stringify({ id: `g${i}`, type: 'chat.flood' })).map((f) => Buffer.from(f));
      for (const f of burst) conn.ws.send(f, { binary: false });
      socket.pause();
      const t0 = Date.now();
      while ((await sample('blockrtc_ws_connections')) > before && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 100));
      expect(await sample('blockrtc_ws_connections')).toBe(before);
      expect(Date.now() - t0).toBeLessThan(3000);
      expect(abuseWarnings(t.address)).toHaveLength(1);
      conn.ws.terminate();
    });
  });
});
