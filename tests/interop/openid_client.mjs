// openid-client 6 against Tessera: RFC 8414 discovery (algorithm 'oauth2': Tessera is no OpenID
// provider), the token-exchange grant through genericGrantRequest with a client secret and with
// private_key_jwt, DPoP-bound exchanges with ES256 and Ed25519 keys, then introspection and
// revocation of what was minted.
import * as client from 'openid-client'
import { importPKCS8, calculateJwkThumbprint, exportJWK, decodeJwt } from 'jose'
import { readFileSync } from 'node:fs'

const url = process.env.TESSERA_URL
const subjectToken = process.env.SUBJECT_TOKEN
const clientId = process.env.CLIENT_ID
const clientSecret = process.env.CLIENT_SECRET
const keyedClientId = process.env.KEYED_CLIENT_ID

function expect(condition, context) {
  if (!condition) throw new Error(`unexpected: ${JSON.stringify(context)}`)
}
const jtis = []

const config = await client.discovery(new URL(url), clientId, clientSecret, undefined, {
  algorithm: 'oauth2',
  execute: [client.allowInsecureRequests], // plain http on loopback only
})
const exchange = {
  subject_token: subjectToken,
  subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
  audience: 'inventory-api',
}
const answer = await client.genericGrantRequest(
  config,
  'urn:ietf:params:oauth:grant-type:token-exchange',
  exchange,
)
const accessToken = answer.access_token

expect(config.serverMetadata().issuer === url, config.serverMetadata())
expect(config.serverMetadata().token_endpoint === `${url}/token`, config.serverMetadata())
expect(answer.token_type === 'bearer', answer)
expect(answer.issued_token_type === 'urn:ietf:params:oauth:token-type:access_token', answer)
jtis.push(decodeJwt(accessToken).jti)

// DPoP (RFC 9449): the minted token is bound to the proof's key, whatever its algorithm.
for (const alg of ['ES256', 'Ed25519']) {
  const keyPair = await client.randomDPoPKeyPair(alg)
  const bound = await client.genericGrantRequest(
    config,
    'urn:ietf:params:oauth:grant-type:token-exchange',
    exchange,
    { DPoP: client.getDPoPHandle(config, keyPair) },
  )
  expect(bound.token_type === 'dpop', { alg, bound })
  const claims = decodeJwt(bound.access_token)
  const thumbprint = await calculateJwkThumbprint(await exportJWK(keyPair.publicKey))
  expect(claims.cnf?.jkt === thumbprint, { alg, claims, thumbprint })
  jtis.push(claims.jti)
}

// private_key_jwt (RFC 7523), once per key type; Ed25519 assertions say `Ed25519` (RFC 9864).
for (const { alg, kid, pem_file } of JSON.parse(process.env.CLIENT_KEYS)) {
  const privateKey = await importPKCS8(readFileSync(pem_file, 'ascii'), alg === 'EdDSA' ? 'Ed25519' : alg)
  const keyed = await client.discovery(
    new URL(url),
    keyedClientId,
    undefined,
    client.PrivateKeyJwt({ key: privateKey, kid }),
    { algorithm: 'oauth2', execute: [client.allowInsecureRequests] },
  )
  const answer = await client.genericGrantRequest(
    keyed,
    'urn:ietf:params:oauth:grant-type:token-exchange',
    exchange,
  )
  const claims = decodeJwt(answer.access_token)
  expect(claims.client_id === keyedClientId, { kid, claims })
  jtis.push(claims.jti)
}

// RFC 7662 and RFC 7009, as the client the token was minted for.
const introspected = await client.tokenIntrospection(config, accessToken)
expect(introspected.active === true && introspected.jti === jtis[0], introspected)
expect(introspected.client_id === clientId && introspected.sub === 'alice', introspected)
await client.tokenRevocation(config, accessToken)
const afterwards = await client.tokenIntrospection(config, accessToken)
expect(afterwards.active === false, afterwards)

console.log(JSON.stringify({ jtis, revoked: jtis[0] }))
