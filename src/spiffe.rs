//! SPIFFE IDs (`spiffe://<trust domain><path>`), as far as a JWT-SVID's `sub` and a trust
//! domain issuer (`issuer = "spiffe://example.org"`) need them.

const SCHEME: &str = "spiffe://";

/// The trust domain's own ID (`spiffe://example.org`) of a SPIFFE ID with a path: the issuer a
/// JWT-SVID is attributed to, whatever its `iss` says.
pub fn trust_domain_id(id: &str) -> Option<&str> {
    let rest = id.strip_prefix(SCHEME)?;
    let slash = rest.find('/')?;
    (is_trust_domain_name(&rest[..slash]) && is_path(&rest[slash..]))
        .then(|| &id[..SCHEME.len() + slash])
}

/// The path of a SPIFFE ID (`/ns/payments/sa/api`); `None` for anything else.
pub fn path(id: &str) -> Option<&str> {
    let domain = trust_domain_id(id)?;
    Some(&id[domain.len()..])
}

/// Whether `issuer` names a trust domain: `spiffe://` and a trust domain name, nothing else.
pub fn is_trust_domain(issuer: &str) -> bool {
    issuer
        .strip_prefix(SCHEME)
        .is_some_and(is_trust_domain_name)
}

/// Whether `issuer` is meant as a trust domain, well formed or not.
pub fn names_trust_domain(issuer: &str) -> bool {
    issuer
        .get(..SCHEME.len())
        .is_some_and(|s| s.eq_ignore_ascii_case(SCHEME))
}

/// The SPIFFE ID specification's path: `/`-separated segments, none empty, `.` or `..`, each of
/// letters, digits, `.`, `-` and `_`; no trailing slash, query or fragment.
fn is_path(path: &str) -> bool {
    path.split('/').skip(1).all(|segment| {
        !segment.is_empty()
            && segment != "."
            && segment != ".."
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-_".contains(&b))
    })
}

/// The SPIFFE ID specification's trust domain name: lowercase letters, digits, `.`, `-`, `_`.
fn is_trust_domain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b".-_".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_split_into_trust_domain_and_path() {
        let id = "spiffe://example.org/ns/payments/sa/api";
        assert_eq!(trust_domain_id(id), Some("spiffe://example.org"));
        assert_eq!(path(id), Some("/ns/payments/sa/api"));
        for not_an_id in [
            "spiffe://example.org",
            "spiffe:///path",
            "spiffe://Example.org/x",
            "spiffe://ex:8443/x",
            "spiffe://user@ex/x",
            "spiffe://example.org/ns/payments/../billing",
            "spiffe://example.org/ns//x",
            "spiffe://example.org/ns/x/",
            "spiffe://example.org/ns/%2e%2e/x",
            "spiffe://example.org/ns/x?y",
            "spiffe://example.org/ns/x#y",
            "https://example.org/x",
            "system:serviceaccount:a:b",
        ] {
            assert_eq!(trust_domain_id(not_an_id), None, "{not_an_id}");
            assert_eq!(path(not_an_id), None, "{not_an_id}");
        }
    }

    #[test]
    fn trust_domains_are_checked() {
        assert!(is_trust_domain("spiffe://example.org"));
        assert!(is_trust_domain("spiffe://prod_cluster-1.example"));
        assert!(!is_trust_domain("spiffe://example.org/"));
        assert!(!is_trust_domain("spiffe://Example.org"));
        assert!(!is_trust_domain("spiffe://"));
        assert!(!is_trust_domain("https://example.org"));
        assert!(names_trust_domain("SPIFFE://Example.org/"));
        assert!(!names_trust_domain("https://example.org"));
    }
}
