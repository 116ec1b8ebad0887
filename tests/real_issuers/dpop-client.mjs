// A DPoP client made with npm's `dpop` (panva/dpop): an ES256 key pair, a DPoP-bound
// client-credentials access token from oidc-provider (ISSUER), then proofs for
// `GET <base>/whoami` with that token, for each base URL in BASES (space-separated).
// Prints `token_type`, `token`, and `proof <base> <n> <proof>` lines, then `done`.
import { generateKeyPair, generateProof } from 'dpop';

const { ISSUER, BASES, CLIENT_SECRET } = process.env;
const keypair = await generateKeyPair('ES256');
const tokenUrl = `${ISSUER}/token`;
const response = await fetch(tokenUrl, {
  method: 'POST',
  headers: {
    authorization: `Basic ${btoa(`machine:${CLIENT_SECRET}`)}`,
    'content-type': 'application/x-www-form-urlencoded',
    dpop: await generateProof(keypair, tokenUrl, 'POST'),
  },
  body: 'grant_type=client_credentials&scope=read&resource=urn:jwt',
});
const body = await response.json();
if (!response.ok) {
  throw new Error(`token endpoint answered ${response.status}: ${JSON.stringify(body)}`);
}
console.log(`token_type ${body.token_type}`);
console.log(`token ${body.access_token}`);
for (const base of BASES.split(' ')) {
  for (const n of [0, 1]) {
    const proof = await generateProof(keypair, `${base}/whoami`, 'GET', undefined, body.access_token);
    console.log(`proof ${base} ${n} ${proof}`);
  }
}
console.log('done');
