// jose's createRemoteJWKSet + jwtVerify, as a resource server validates a token Tessera minted:
// key by kid from /jwks.json, signature, issuer, audience, lifetime and typ at+jwt (RFC 9068).
import { createRemoteJWKSet, jwtVerify, errors } from 'jose'

const accessToken = process.env.TOKEN
const url = process.env.ISSUER

const keys = createRemoteJWKSet(new URL(`${url}/jwks.json`))
const { payload, protectedHeader } = await jwtVerify(accessToken, keys, {
  issuer: url,
  audience: 'inventory-api',
  typ: 'at+jwt',
})

const tampered = accessToken.slice(0, -4) + (accessToken.endsWith('AAAA') ? 'BBBB' : 'AAAA')
try {
  await jwtVerify(tampered, keys, { issuer: url, audience: 'inventory-api' })
  throw new Error('a tampered signature verified')
} catch (e) {
  if (!(e instanceof errors.JWSSignatureVerificationFailed)) throw e
}
try {
  await jwtVerify(accessToken, keys, { issuer: url, audience: 'another-api' })
  throw new Error('a token for another audience verified')
} catch (e) {
  if (!(e instanceof errors.JWTClaimValidationFailed) || e.claim !== 'aud') throw e
}
console.log(JSON.stringify({ claims: payload, alg: protectedHeader.alg }))
