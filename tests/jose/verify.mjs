// Usage: node verify.mjs <issuer> <access token>
// What docs/resource-servers.md tells a Node API to do: discover the metadata, then verify the token against the JWKS
// it names, with the issuer, audience, algorithm and type it names. Prints the payload; exits 1 when refused.
import { createRemoteJWKSet, jwtVerify } from "jose";

const [issuer, token] = process.argv.slice(2);
const metadata = await (await fetch(`${issuer}/.well-known/oauth-authorization-server`)).json();
const keys = createRemoteJWKSet(new URL(metadata.jwks_uri));
try {
  const { payload } = await jwtVerify(token, keys, {
    issuer: metadata.issuer,
    audience: metadata.access_token_audience,
    algorithms: metadata.access_token_signing_alg_values_supported,
    typ: "at+jwt",
  });
  console.log(JSON.stringify(payload));
} catch (error) {
  console.error(`${error.code ?? "ERROR"}: ${error.message}`);
  process.exit(1);
}
