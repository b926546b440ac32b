// A real OpenID Connect provider (oidc-provider) on loopback for the tests: the SSO tests talk
// to it as they would to an identity provider, not to a mock. See README.md beside this file.
//
//   node provider.mjs [port] [--exit-with-stdin]      (or PORT=...; 0 picks a free one)
//
// Prints `ready <issuer>` once listening. Control endpoints under /__test__/ let a test add
// clients, make the token endpoint lie in one claim (wrong audience, expired) and count hits.
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const HOST = '127.0.0.1';
const [portArg, ...flags] = process.argv.slice(2);
const port = Number(portArg ?? process.env.PORT ?? 0);

// Keys made at start: nothing secret is committed, and each run proves the app reads the JWKS.
// POST /__test__/rotate_keys makes a new one (new kid) and drops the current one from the JWKS.
function newSigningKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = {
    ...privateKey.export({ format: 'jwk' }),
    kid: `test-${randomBytes(6).toString('hex')}`,
    alg: 'RS256',
    use: 'sig',
  };
  return { privateKey, jwk };
}
let signingKey = newSigningKey();
let droppedKey = null; // the key the last rotation dropped: mode `old_key` signs with it

const clients = new Map();
const MODES = new Set(['normal', 'wrong_aud', 'expired', 'old_key']);
const WRONG_AUDIENCE = 'another-client';
let mode = 'normal';
let amr = null; // POST /__test__/amr: the `amr` claim (RFC 8176) every id_token then carries
let stats = { jwks_requests: 0, discovery_requests: 0, token_requests: 0 };

// One Map per model, no expiry: the process lives as long as one pytest session. `Client`
// reads the clients added through POST /__test__/clients.
const stores = new Map();
class MapAdapter {
  constructor(name) {
    this.name = name;
    if (!stores.has(name)) stores.set(name, new Map());
    this.store = name === 'Client' ? clients : stores.get(name);
  }

  async upsert(id, payload) {
    this.store.set(id, payload);
  }

  async find(id) {
    return this.store.get(id);
  }

  async findByUid(uid) {
    return [...this.store.values()].find((payload) => payload.uid === uid);
  }

  async findByUserCode(userCode) {
    return [...this.store.values()].find((payload) => payload.userCode === userCode);
  }

  async consume(id) {
    const payload = this.store.get(id);
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    this.store.delete(id);
  }

  async revokeByGrantId(grantId) {
    for (const store of stores.values()) {
      for (const [id, payload] of store) {
        if (payload.grantId === grantId) store.delete(id);
      }
    }
  }
}

// Whatever email is typed at the login form is the account; `sub` is stable per email.
function subFor(email) {
  return `sub-${createHash('sha256').update(email.trim().toLowerCase()).digest('hex').slice(0, 24)}`;
}

function nameFor(email) {
  const local = email.split('@')[0].replace(/[._-]+/g, ' ').trim();
  return local.replace(/\b\w/g, (letter) => letter.toUpperCase()) || email;
}

// The provider keeps the typed email as the account id; the `sub` it hands out comes from
// pairwiseIdentifier below (every client is "pairwise"), so it is the same for every client.
async function findAccount(ctx, id) {
  return {
    accountId: id,
    async claims() {
      return { sub: id, email: id, email_verified: true, name: nameFor(id) };
    },
  };
}

async function pairwiseIdentifier(ctx, accountId) {
  return subFor(accountId);
}

// No consent screen: the requested scopes and claims are granted at once, so a login is
// app -> login form -> submit -> back to the app's redirect_uri.
async function loadExistingGrant(ctx) {
  const grantId =
    ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
  if (grantId) {
    const existing = await ctx.oidc.provider.Grant.find(grantId);
    if (existing) return existing;
  }
  const grant = new ctx.oidc.provider.Grant({
    clientId: ctx.oidc.client.clientId,
    accountId: ctx.oidc.session.accountId,
  });
  grant.addOIDCScope([...ctx.oidc.requestParamScopes].join(' '));
  grant.addOIDCClaims([...ctx.oidc.requestParamClaims]);
  await grant.save();
  return grant;
}

const issuer = `http://${HOST}`; // completed with the port once listening
const configuration = {
  adapter: MapAdapter,
  clients: [],
  findAccount,
  pairwiseIdentifier,
  subjectTypes: ['public', 'pairwise'],
  loadExistingGrant,
  // The id_token itself carries email and name (authlib reads them there), not only userinfo.
  conformIdTokenClaims: false,
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  scopes: ['openid', 'email', 'profile'],
  responseTypes: ['code'],
  features: { devInteractions: { enabled: true } },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  clientDefaults: {
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'RS256',
  },
};

function b64url(value) {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

// Re-signs the id_token with the provider's own key and kid: the signature stays valid, so
// only the claim a test chose is wrong. In `old_key`, signs it with the key the last rotation
// dropped (and its kid): claims right, key no longer in the JWKS. With an `amr` set, adds it.
function tamper(idToken) {
  const [header, payload] = idToken.split('.').slice(0, 2).map((part) => {
    return JSON.parse(Buffer.from(part, 'base64url').toString());
  });
  if (amr) payload.amr = amr;
  if (mode === 'wrong_aud') payload.aud = WRONG_AUDIENCE;
  if (mode === 'expired') {
    const now = Math.floor(Date.now() / 1000);
    payload.iat = now - 7200;
    payload.exp = now - 3600;
    if (payload.auth_time) payload.auth_time = now - 7200;
  }
  const key = mode === 'old_key' ? droppedKey : signingKey;
  header.kid = key.jwk.kid;
  const signingInput = `${b64url(header)}.${b64url(payload)}`;
  const signature = sign('sha256', Buffer.from(signingInput), key.privateKey);
  return `${signingInput}.${signature.toString('base64url')}`;
}

async function readJson(ctx) {
  const chunks = [];
  for await (const chunk of ctx.req) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString() || '{}';
  return JSON.parse(text);
}

function reply(ctx, status, body) {
  ctx.status = status;
  ctx.body = body;
}

async function control(ctx) {
  const route = `${ctx.method} ${ctx.path}`;
  if (route === 'GET /__test__/stats') return reply(ctx, 200, stats);
  if (route === 'POST /__test__/reset') {
    mode = 'normal';
    amr = null;
    stats = { jwks_requests: 0, discovery_requests: 0, token_requests: 0 };
    return reply(ctx, 200, { mode, ...stats });
  }
  if (route === 'POST /__test__/rotate_keys') {
    droppedKey = signingKey;
    signingKey = newSigningKey();
    current = build(signingKey);
    return reply(ctx, 200, { kid: signingKey.jwk.kid, dropped: droppedKey.jwk.kid });
  }
  let body;
  try {
    body = await readJson(ctx);
  } catch (error) {
    return reply(ctx, 400, { error: `invalid JSON: ${error.message}` });
  }
  if (route === 'POST /__test__/amr') {
    const strings = Array.isArray(body.amr) && body.amr.every((m) => typeof m === 'string');
    const ok = body.amr === null || strings;
    if (!ok) return reply(ctx, 400, { error: 'amr must be a list of strings, or null' });
    amr = body.amr;
    return reply(ctx, 200, { amr });
  }
  if (route === 'POST /__test__/mode') {
    if (!MODES.has(body.mode)) return reply(ctx, 400, { error: `mode must be one of ${[...MODES]}` });
    if (body.mode === 'old_key' && !droppedKey) {
      return reply(ctx, 400, { error: 'mode old_key needs a rotate_keys first' });
    }
    mode = body.mode;
    return reply(ctx, 200, { mode });
  }
  if (route === 'POST /__test__/clients') {
    const { client_id: clientId, client_secret: secret, redirect_uris: redirectUris } = body;
    if (!clientId || !secret || !Array.isArray(redirectUris) || redirectUris.length === 0) {
      return reply(ctx, 400, { error: 'client_id, client_secret and redirect_uris are required' });
    }
    clients.set(clientId, {
      client_id: clientId,
      client_secret: secret,
      redirect_uris: redirectUris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: body.token_endpoint_auth_method ?? 'client_secret_basic',
      subject_type: 'pairwise',
      post_logout_redirect_uris: body.post_logout_redirect_uris ?? [],
    });
    return reply(ctx, 201, { client_id: clientId });
  }
  return reply(ctx, 404, { error: `no control endpoint ${route}` });
}

// One Provider per signing key: a rotation builds a new one with the new key alone (the JWKS
// then lists only it). Clients, grants and sessions live in the module's Maps (MapAdapter)
// and the cookie keys stay, so a browser's provider session survives the rotation.
let fullIssuer = '';
let current = null;

async function hooks(ctx, next) {
  if (ctx.path.startsWith('/__test__/')) return control(ctx);
  if (ctx.path === '/.well-known/openid-configuration') stats.discovery_requests += 1;
  if (ctx.path === '/jwks') stats.jwks_requests += 1;
  const isToken = ctx.path === '/token';
  if (isToken) stats.token_requests += 1;
  await next();
  if (isToken && (mode !== 'normal' || amr) && ctx.body?.id_token) {
    ctx.body = { ...ctx.body, id_token: tamper(ctx.body.id_token) };
  }
  // The dev login page imports a web font from Google: the tests run offline.
  if (typeof ctx.body === 'string' && ctx.body.includes('fonts.googleapis.com')) {
    ctx.body = ctx.body.replace(/@import url\(https:\/\/fonts\.googleapis\.com[^)]*\);/g, '');
  }
}

function build(key) {
  const provider = new Provider(fullIssuer, { ...configuration, jwks: { keys: [key.jwk] } });
  provider.use(hooks);
  return { provider, handle: provider.callback() };
}

const server = createServer();
server.listen(port, HOST, () => {
  fullIssuer = `${issuer}:${server.address().port}`;
  current = build(signingKey);
  server.on('request', (req, res) => current.handle(req, res));
  console.log(`ready ${fullIssuer}`);
});

// Under pytest: stdin is a pipe from the test process, so a killed test run ends us too.
if (flags.includes('--exit-with-stdin')) {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
