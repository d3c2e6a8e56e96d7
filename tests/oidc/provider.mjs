// A real OpenID Connect provider for the test suite, built on oidc-provider.
//
// Started by tests/oidc_provider.py as `node tests/oidc/provider.mjs`, configured through the
// OIDC_TEST_CONFIG environment variable (JSON: port, clients, accounts). It listens on 127.0.0.1,
// prints one line `{"ready": true, "issuer": "http://127.0.0.1:<port>"}` to stdout and serves until
// SIGTERM. Everything else (oidc-provider's notices, errors) goes to stderr.
//
// The login page is our own, not oidc-provider's devInteractions: the login result we hand back
// carries the account's `amr` and `acr`, which end up in the ID token. Consent needs no page.
import * as crypto from 'node:crypto';
import * as http from 'node:http';

import Provider, { errors } from 'oidc-provider';

// oidc-provider prints its notices with console.info; stdout is reserved for the ready line.
console.info = console.error;

const config = JSON.parse(process.env.OIDC_TEST_CONFIG ?? '{}');
const clients = config.clients ?? [];

// Logins are e-mail addresses, matched case-insensitively; the provider knows accounts by `sub`.
const accountsByLogin = new Map(
  Object.entries(config.accounts ?? {}).map(([login, account]) => [login.toLowerCase(), account]),
);
const accountsBySub = new Map([...accountsByLogin.values()].map((account) => [account.sub, account]));

// Advertised as acr_values_supported, so a relying party may also ask for them with acr_values.
const acrValues = [...new Set([...accountsBySub.values()].map((account) => account.acr).filter(Boolean))];

function htmlEscape(value) {
  return String(value).replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);
}

function sendHtml(res, status, body) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(body);
}

function page(title, content) {
  return `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>${htmlEscape(title)}</title></head>
<body>
<h1>${htmlEscape(title)}</h1>
${content}
</body>
</html>`;
}

function loginPage(uid, { login = '', error = '' } = {}) {
  const errorMessage = error ? `<p role="alert" class="error">${htmlEscape(error)}</p>` : '';
  return page('Sign in', `${errorMessage}
<form method="post" action="/interaction/${encodeURIComponent(uid)}/login">
  <label for="login">E-mail</label>
  <input id="login" name="login" type="email" value="${htmlEscape(login)}" autofocus required>
  <button type="submit">Sign in</button>
</form>`);
}

// A page that posts a form on load; without JavaScript the button does the same.
function autoSubmittingForm(title, action, fields, buttonLabel) {
  const inputs = Object.entries(fields)
    .map(([name, value]) => `<input type="hidden" name="${htmlEscape(name)}" value="${htmlEscape(value)}">`)
    .join('\n  ');
  return page(title, `<form method="post" action="${htmlEscape(action)}">
  ${inputs}
  <button type="submit">${htmlEscape(buttonLabel)}</button>
</form>
<script>document.forms[0].submit();</script>`);
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function accountClaims(account) {
  // amr and acr describe one authentication, not the account: they come from the login result.
  const { amr, acr, ...claims } = account;
  return claims;
}

async function listen(server, port) {
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return server.address().port;
}

const server = http.createServer();
const port = await listen(server, config.port ?? 0);
const issuer = `http://127.0.0.1:${port}`;

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });

const provider = new Provider(issuer, {
  clients,
  async findAccount(_ctx, sub) {
    const account = accountsBySub.get(sub);
    if (!account) return undefined;
    return { accountId: sub, claims: async () => accountClaims(account) };
  },
  claims: {
    // oidc-provider puts acr/amr in an ID token only when they are requested, by a scope or by the
    // relying party (acr_values, claims parameter), which allauth does not do. Claims of the openid
    // scope are always requested. Their values come from the login result; userinfo has none.
    openid: ['sub', 'acr', 'amr'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name'],
  },
  acrValues,
  // The relying party reads the e-mail and name from the ID token as well as from userinfo.
  conformIdTokenClaims: false,
  interactions: {
    url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
  },
  features: {
    devInteractions: { enabled: false },
    userinfo: { enabled: true },
    rpInitiatedLogout: {
      enabled: true,
      // Sign out without asking: the test relying party's logout lands on post_logout_redirect_uri.
      async logoutSource(ctx) {
        ctx.type = 'html';
        ctx.body = autoSubmittingForm(
          'Signing out',
          ctx.oidc.urlFor('end_session_confirm'),
          { xsrf: ctx.oidc.session.state.secret, logout: 'yes' },
          'Sign out',
        );
      },
    },
  },
  // allauth may or may not send PKCE; both must work. A PKCE request is still checked (S256 only).
  pkce: { required: () => false },
  // Relying parties talk to this provider from their servers, never from browser JavaScript.
  clientBasedCORS: () => false,
  // Explicit lifetimes (seconds), so oidc-provider does not log a notice for each default it uses.
  ttl: { AuthorizationCode: 60, AccessToken: 3600, IdToken: 3600, Interaction: 600, Session: 86400, Grant: 86400 },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  jwks: { keys: [{ ...privateKey.export({ format: 'jwk' }), use: 'sig' }] },
});

// oidc-provider checks static clients when first used; a mistake in a test's client should fail the start.
for (const { client_id: clientId } of clients) {
  try {
    await provider.Client.find(clientId);
  } catch (error) {
    throw new Error(`client ${clientId}: ${error.message} (${error.error_description})`, { cause: error });
  }
}

provider.on('server_error', (_ctx, error) => console.error('oidc-provider server_error:', error));
for (const event of ['authorization.error', 'grant.error', 'userinfo.error', 'end_session.error']) {
  provider.on(event, (_ctx, error) => console.error(`oidc-provider ${event}: ${error.message} ${error.error_description ?? ''}`));
}

async function showInteraction(req, res) {
  const { uid, prompt, params, grantId, session } = await provider.interactionDetails(req, res);
  if (prompt.name === 'login') {
    sendHtml(res, 200, loginPage(uid));
    return;
  }
  // Consent: grant what was asked, without a page (see the Grant example in oidc-provider's docs).
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
  if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
  if (prompt.details.missingResourceScopes) {
    for (const [indicator, scopes] of Object.entries(prompt.details.missingResourceScopes)) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
  }
  const savedGrantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId: savedGrantId } }, { mergeWithLastSubmission: true });
}

async function submitLogin(req, res) {
  const { uid, prompt } = await provider.interactionDetails(req, res);
  if (prompt.name !== 'login') {
    sendHtml(res, 400, page('Sign in', '<p role="alert">This sign-in request does not expect a login.</p>'));
    return;
  }
  const login = (await readForm(req)).get('login') ?? '';
  const account = accountsByLogin.get(login.trim().toLowerCase());
  if (!account) {
    sendHtml(res, 400, loginPage(uid, { login, error: 'Unknown user' }));
    return;
  }
  const result = { login: { accountId: account.sub, amr: account.amr, acr: account.acr } };
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
}

async function handleInteraction(req, res, path) {
  try {
    if (req.method === 'GET' && /^\/interaction\/[^/]+$/.test(path)) {
      await showInteraction(req, res);
    } else if (req.method === 'POST' && /^\/interaction\/[^/]+\/login$/.test(path)) {
      await submitLogin(req, res);
    } else {
      sendHtml(res, 404, page('Not found', ''));
    }
  } catch (error) {
    if (error instanceof errors.SessionNotFound) {
      sendHtml(res, 400, page('Sign-in expired', '<p role="alert">This sign-in request is no longer valid.</p>'));
      return;
    }
    console.error('interaction failed:', error);
    if (!res.headersSent) sendHtml(res, 500, page('Error', '<p role="alert">The sign-in failed.</p>'));
  }
}

const handleProviderRequest = provider.callback();

server.on('request', (req, res) => {
  const path = new URL(req.url, issuer).pathname;
  if (path === '/test/health') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
  } else if (path.startsWith('/interaction/')) {
    handleInteraction(req, res, path);
  } else {
    handleProviderRequest(req, res);
  }
});

process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});

process.stdout.write(`${JSON.stringify({ ready: true, issuer })}\n`);
