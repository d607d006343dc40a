// A real OpenID provider on loopback for the console's browser tests: panva's oidc-provider with
// one client (the console), three accounts and minimal sign-in and consent pages of its own.
//
//   PROVIDER_PORT=0 REDIRECT_URI=http://127.0.0.1:9999/console/callback node provider.mjs
//
// prints `ready http://localhost:<port>` (the issuer) on stdout once listening, and nothing else
// there (the library's notices go to stderr). The issuer is `localhost`, not 127.0.0.1, so that
// the provider is another site than Tessera: cookies cross as they would in production.
//
// Node resolves `oidc-provider` from this file's folder: run a copy placed in the folder
// install.sh fills (DIR/node), as the tests do.
//
// The pages, for a browser:
//   sign-in  (/interaction/<uid>): input[name=login], input[name=password], button#sign-in;
//            a login other than alice, olga or mallory (any non-empty password) shows
//            p#error "unknown account" and the form again.
//   consent  (/interaction/<uid>, once signed in): button#consent; it grants what was asked.
//   either page: button#cancel ends the flow with error=access_denied at the redirect URI.
//   Both pages carry h1#prompt with the prompt's name (`login` or `consent`).
// Within one browser profile the provider's session and grant are remembered: a second
// authorization request goes straight back to the redirect URI (unless it asks prompt=login).

import * as crypto from 'node:crypto';
import * as http from 'node:http';

import Provider from 'oidc-provider';

// The library prints its development notices with console.info: keep stdout for `ready`.
console.info = console.error;

const redirectUri = process.env.REDIRECT_URI;
if (!redirectUri) {
  console.error('provider.mjs: REDIRECT_URI is required');
  process.exit(2);
}
const wantedPort = Number(process.env.PROVIDER_PORT ?? '0');

const accounts = {
  alice: { email: 'alice@example.com', name: 'Alice Auditor', groups: ['tessera-auditors'] },
  olga: { email: 'olga@example.com', name: 'Olga Operator', groups: ['tessera-operators'] },
  mallory: { email: 'mallory@example.com', name: 'Mallory', groups: [] },
};

function findAccount(_ctx, id) {
  const account = accounts[id];
  if (!account) return undefined;
  return {
    accountId: id,
    async claims() {
      return {
        sub: id,
        email: account.email,
        email_verified: true,
        name: account.name,
        groups: account.groups,
      };
    },
  };
}

// A fresh RS256 key per run rather than the library's published development key.
const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = {
  ...privateKey.export({ format: 'jwk' }),
  alg: 'RS256',
  use: 'sig',
  kid: `provider-${crypto.randomBytes(6).toString('hex')}`,
};

const configuration = {
  clients: [{
    client_id: 'tessera-console',
    client_secret: 'console-secret',
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: [redirectUri],
  }],
  responseTypes: ['code'],
  // By default a confidential client may leave PKCE out; the console must not.
  pkce: { methods: ['S256'], required: () => true },
  jwks: { keys: [signingKey] },
  scopes: ['openid', 'email', 'profile', 'groups'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
    profile: ['name'],
  },
  // By default the claims of scopes go to userinfo only when an access token is issued; the
  // console reads roles from the ID token.
  conformIdTokenClaims: false,
  findAccount,
  // Explicit, which also quiets the library's notices about defaults.
  ttl: {
    AccessToken: 3600,
    AuthorizationCode: 60,
    Grant: 3600,
    IdToken: 3600,
    Interaction: 3600,
    Session: 3600,
  },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  cookies: {
    keys: [crypto.randomBytes(32).toString('base64url')],
    // The library marks its session cookie SameSite=None, which a browser refuses without
    // Secure, that is over plain http (it would live on only as its `.legacy` twin). Lax is
    // what a top-level sign-in needs. Cookies are Secure only when the request is (ctx.secure):
    // http on loopback needs no `proxy` setting.
    long: { httpOnly: true, sameSite: 'lax' },
  },
};

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(prompt, uid, body) {
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Test provider: ${escape(prompt)}</title></head>
<body>
<h1 id="prompt">${escape(prompt)}</h1>
${body}
<form method="post" action="/interaction/${escape(uid)}/abort">
  <button type="submit" id="cancel">Cancel</button>
</form>
</body></html>`;
}

function loginPage(uid, params, error) {
  return page('login', uid, `${error ? `<p id="error">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login" autocomplete="off">
  <label>Login <input type="text" name="login" required value="${escape(params.login_hint ?? '')}"></label>
  <label>Password <input type="password" name="password" required></label>
  <button type="submit" id="sign-in">Sign-in</button>
</form>`);
}

function consentPage(uid, params, details) {
  const asked = [...(details.missingOIDCScope ?? []), ...(details.missingOIDCClaims ?? [])];
  return page('consent', uid, `<p>${escape(params.client_id)} asks for:</p>
<ul>${asked.map((item) => `<li>${escape(item)}</li>`).join('')}</ul>
<form method="post" action="/interaction/${escape(uid)}/confirm">
  <button type="submit" id="consent">Continue</button>
</form>`);
}

async function form(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function html(res, status, body) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(body);
}

async function interaction(provider, req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) {
    html(res, 400, 'this interaction is not the one of this browser');
    return;
  }
  const { prompt, params } = details;
  if (req.method === 'GET' && !action) {
    html(res, 200, prompt.name === 'login'
      ? loginPage(uid, params)
      : consentPage(uid, params, prompt.details));
    return;
  }
  if (req.method !== 'POST') {
    html(res, 405, 'POST only');
    return;
  }
  if (action === 'abort') {
    await provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
    return;
  }
  if (action === 'login' && prompt.name === 'login') {
    const body = await form(req);
    const login = body.get('login') ?? '';
    if (!accounts[login] || !body.get('password')) {
      html(res, 200, loginPage(uid, { ...params, login_hint: login }, 'unknown account'));
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: login } }, {
      mergeWithLastSubmission: false,
    });
    return;
  }
  if (action === 'confirm' && prompt.name === 'consent') {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
    if (prompt.details.missingOIDCScope) {
      grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
    }
    if (prompt.details.missingOIDCClaims) {
      grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    }
    await provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, {
      mergeWithLastSubmission: true,
    });
    return;
  }
  html(res, 400, `no ${escape(action)} at the ${escape(prompt.name)} prompt`);
}

// `localhost` resolves to ::1 as well as 127.0.0.1: serve both, so that no other program on the
// other address answers in the provider's name.
function listen(server, port, host) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host }, () => {
      server.off('error', reject);
      resolve(server.address().port);
    });
  });
}

let handler;
const serve = (req, res) => handler(req, res);
let servers;
for (let attempt = 0; ; attempt += 1) {
  const v4 = http.createServer(serve);
  const port = await listen(v4, wantedPort, '127.0.0.1');
  const v6 = http.createServer(serve);
  try {
    await listen(v6, port, '::1');
    servers = [v4, v6];
  } catch (err) {
    if (err.code === 'EADDRNOTAVAIL' || err.code === 'EAFNOSUPPORT') {
      servers = [v4];
    } else if (err.code === 'EADDRINUSE' && wantedPort === 0 && attempt < 20) {
      v4.close();
      continue;
    } else {
      throw err;
    }
  }
  break;
}

const issuer = `http://localhost:${servers[0].address().port}`;
const provider = new Provider(issuer, configuration);
for (const event of ['server_error', 'authorization.error', 'grant.error', 'interaction.error']) {
  provider.on(event, (_ctx, err) => console.error(`provider ${event}: ${err?.stack ?? err}`));
}
const callback = provider.callback();
handler = (req, res) => {
  const match = new URL(req.url, issuer).pathname.match(/^\/interaction\/([^/]+)(?:\/(login|confirm|abort))?$/);
  if (!match) {
    callback(req, res);
    return;
  }
  interaction(provider, req, res, match[1], match[2]).catch((err) => {
    console.error(`provider interaction: ${err?.stack ?? err}`);
    if (!res.headersSent) html(res, err?.statusCode ?? 500, escape(err?.message ?? err));
  });
};

for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
process.stdout.write(`ready ${issuer}\n`);
