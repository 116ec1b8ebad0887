// Better Auth with its JWT plugin on loopback, for the real-issuer tests: signs a
// user up, then prints `issuer <URL>`, `jwks <URL>` and `token <JWT>` (the plugin's
// token for that user's session) and keeps serving the JWK Set.
import { createServer } from 'node:http';
import { betterAuth } from 'better-auth';
import { memoryAdapter } from 'better-auth/adapters/memory';
import { toNodeHandler } from 'better-auth/node';
import { jwt } from 'better-auth/plugins';

const server = createServer();
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const base = `http://127.0.0.1:${server.address().port}`;

const auth = betterAuth({
  baseURL: base,
  secret: 'test-only-better-auth-secret-of-32+-bytes',
  database: memoryAdapter({ user: [], session: [], account: [], verification: [], jwks: [] }),
  emailAndPassword: { enabled: true },
  plugins: [jwt({ jwt: { audience: 'api', definePayload: ({ user }) => ({ ...user, role: 'admin,user' }) } })],
});
server.on('request', toNodeHandler(auth));

const signed = await auth.api.signUpEmail({
  body: { email: 'ada@example.com', password: 'correct horse battery staple', name: 'Ada' },
  returnHeaders: true,
});
const cookie = signed.headers.get('set-cookie').split(';')[0];
const { token } = await auth.api.getToken({ headers: new Headers({ cookie }) });
console.log(`issuer ${base}`);
console.log(`jwks ${base}/api/auth/jwks`);
console.log(`token ${token}`);
