// An OpenID Provider (panva/oidc-provider) on loopback for the real-issuer tests:
// client credentials, JWT access tokens for resource `urn:jwt`, opaque ones for
// `urn:opaque`, and RFC 7662 introspection. Prints `issuer <URL>` when ready.
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const server = createServer();
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'machine',
      client_secret: 'machine-secret-machine-secret-32',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      scope: 'read write admin',
    },
    {
      client_id: 'resource-server',
      client_secret: 'resource-server-secret-32-bytes!',
      grant_types: [],
      redirect_uris: [],
      response_types: [],
    },
  ],
  scopes: ['read', 'write', 'admin'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true, allowedPolicy: async () => true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => 'urn:opaque',
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, resource) => ({
        scope: 'read write admin',
        audience: 'api',
        accessTokenTTL: 300,
        accessTokenFormat: resource === 'urn:jwt' ? 'jwt' : 'opaque',
      }),
    },
  },
});
provider.proxy = false;
server.on('request', provider.callback());
console.log(`issuer ${issuer}`);
