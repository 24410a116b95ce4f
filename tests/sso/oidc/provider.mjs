// A real OpenID Connect provider (the certified `oidc-provider`) on loopback for the single
// sign-on tests. Usage: node provider.mjs <port> <config.json>; config: {issuer, clients,
// jwks}. Prints "ready <issuer>" once it listens.
//
// Its login and consent are one step here: GET /interaction/<uid> signs in the account the
// test chose last (POST /test/next {"accountId", "claims", "amr"}) and grants the scopes asked
// for, so a plain HTTP client follows redirects from /auth to the relying party's callback.
import fs from 'node:fs';
import Provider from 'oidc-provider';

const [port, configPath] = process.argv.slice(2);
const config = JSON.parse(fs.readFileSync(configPath, 'utf8'));
const accounts = new Map();
let next = null;

const provider = new Provider(config.issuer, {
  clients: config.clients,
  jwks: config.jwks,
  cookies: { keys: ['offboard-test-cookie-key'] },
  pkce: { required: () => true },
  conformIdTokenClaims: false,
  claims: {
    openid: ['sub', 'amr'],
    email: ['email', 'email_verified'],
    profile: ['groups', 'given_name', 'family_name', 'roles'],
  },
  features: { devInteractions: { enabled: false } },
  ttl: { IdToken: 600, AccessToken: 600, AuthorizationCode: 60, Session: 600, Interaction: 600, Grant: 600 },
  async findAccount(ctx, id) {
    const claims = accounts.get(id);
    if (!claims) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...claims }; } };
  },
});

function readJson(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => { try { resolve(JSON.parse(body || '{}')); } catch (e) { reject(e); } });
  });
}

provider.use(async (ctx, nextMiddleware) => {
  if (ctx.path === '/test/next' && ctx.method === 'POST') {
    const body = await readJson(ctx.req);
    accounts.set(body.accountId, body.claims || {});
    next = { accountId: body.accountId, amr: body.amr };
    ctx.body = { ok: true };
    return;
  }
  if (ctx.path.startsWith('/interaction/') && ctx.method === 'GET') {
    if (!next) { ctx.status = 409; ctx.body = 'no account chosen: POST /test/next first'; return; }
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const grant = new provider.Grant({ accountId: next.accountId, clientId: details.params.client_id });
    grant.addOIDCScope(details.params.scope);
    const grantId = await grant.save();
    const login = { accountId: next.accountId };
    if (next.amr) login.amr = next.amr;
    ctx.respond = false;
    await provider.interactionFinished(ctx.req, ctx.res, { login, consent: { grantId } }, { mergeWithLastSubmission: false });
    return;
  }
  await nextMiddleware();
});

provider.listen(Number(port), '127.0.0.1', () => {
  process.stdout.write(`ready ${config.issuer}\n`);
});
