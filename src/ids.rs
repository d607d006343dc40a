//! Identifiers Tessera makes: record ids (also request ids) and minted tokens' `jti`s. Both put
//! the time first, so indexes on them append at their end, and randomness after it, so several
//! instances never collide.

use crate::clock::UnixTime;

/// A sortable, unique id: 48 bits of milliseconds then 80 random bits, in Crockford base32
/// (the ULID layout), so ids of records written by several instances never collide.
pub fn record_id(at: UnixTime) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut random = [0u8; 10];
    // A failing system RNG leaves zeros; uniqueness then rests on the chain's (chain, seq) key.
    let _ = aws_lc_rs::rand::fill(&mut random);
    let millis = at.millis().max(0) as u128 & ((1 << 48) - 1);
    let value = random
        .iter()
        .fold(millis, |acc, b| (acc << 8) | u128::from(*b));
    (0..26)
        .rev()
        .map(|i| char::from(ALPHABET[((value >> (i * 5)) & 31) as usize]))
        .collect()
}

/// The system's random generator gave nothing: no id can be made.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the random generator failed")]
pub struct RandomFailed;

/// 256 random bits, base64url (43 characters): what no one can guess, for the console's
/// sessions, forms and sign-ins (no time in it: it orders nothing).
pub fn secret() -> Result<String, RandomFailed> {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| RandomFailed)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// 128 bits in lowercase hex: the time in milliseconds (48 bits), then 80 random bits. Never
/// starts with `-`, so `tessera audit --jti` takes it as it is, and needs no escaping in URLs
/// or filters. Time first keeps the audit trail's unique `token_jti` index appending at its
/// end instead of rewriting a random page of it in every commit.
pub fn jti(at: UnixTime) -> Result<String, RandomFailed> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes[6..]).map_err(|_| RandomFailed)?;
    let millis = at.millis().max(0) as u64;
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    Ok(crate::hex(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_ids_sort_by_time_and_differ() {
        let a = record_id(UnixTime::from_micros(1_700_000_000_000_000));
        let b = record_id(UnixTime::from_micros(1_700_000_000_001_000));
        assert_eq!(a.len(), 26);
        assert!(a < b);
        let t = UnixTime::from_micros(5);
        assert_ne!(record_id(t), record_id(t));
    }
}

/// A transaction identifier (`txn`, RFC 8417 §2.2) in the UUID form the draft's examples use:
/// a version 7 UUID, the time in milliseconds then 74 random bits, so the audit index on it
/// appends at its end too.
pub fn txn(at: UnixTime) -> Result<String, RandomFailed> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes[6..]).map_err(|_| RandomFailed)?;
    let millis = at.millis().max(0) as u64;
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    bytes[6] = 0x70 | (bytes[6] & 0x0f);
    bytes[8] = 0x80 | (bytes[8] & 0x3f);
    let hex = crate::hex(&bytes);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

#[cfg(test)]
mod txn_tests {
    use super::*;

    #[test]
    fn txns_are_unique_version_7_uuids() {
        let now = crate::clock::now();
        let a = txn(now).expect("txn");
        assert_eq!(a.len(), 36);
        let groups: Vec<&str> = a.split('-').collect();
        assert_eq!(
            groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(groups[2].starts_with('7'), "{a}");
        assert!(
            matches!(groups[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'),
            "{a}"
        );
        assert_ne!(a, txn(now).expect("txn"));
    }
}
