//! Where a URL that a remote party chose may lead (SPEC §5): a `jwks_uri` read from a discovery
//! document is fetched only if it cannot reach this server's own network, unless it is on the
//! issuer's own host or the issuer's configured URL is itself inside (by its form: an internal
//! address or `localhost`, never by what the issuer's DNS answers). Literal addresses are judged before the request; names are judged as
//! they resolve (a resolver that drops internal addresses), so a name that resolves inward,
//! now or after a rebinding, is never connected to.

use std::net::{IpAddr, SocketAddr};

use reqwest::Url;

/// Every address that is not plainly public: loopback, private, link-local, unique-local,
/// site-local, unspecified, shared (CGNAT), benchmarking, IETF protocol, reserved, multicast and
/// broadcast ranges, and IPv4 reached through IPv6 (mapped, NAT64) forms of them.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let s = v6.segments();
            // NAT64 (64:ff9b::/96, 64:ff9b:1::/48) reaches IPv4 addresses, internal ones too.
            if s[0] == 0x64 && s[1] == 0xff9b {
                return true;
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0
        }
    }
}

/// Whether the URL's host is internal by its form alone: an internal address, or `localhost`.
/// A name that merely resolves inward is caught by `PublicOnly` when it is resolved.
pub fn names_internal_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => is_internal(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => is_internal(IpAddr::V6(ip)),
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        None => true,
    }
}

/// A resolver that never hands out an internal address.
pub struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let public: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| !is_internal(a.ip()))
                .collect();
            if public.is_empty() {
                return Err(format!(
                    "{host} resolves only to internal addresses, where a discovered URL may not lead"
                )
                .into());
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "fec0::1",
            "198.18.0.1",
            "240.0.0.1",
            "224.0.0.1",
            "192.0.0.8",
        ] {
            assert!(is_internal(ip.parse().expect("an address")), "{ip}");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "100.128.0.1"] {
            assert!(!is_internal(ip.parse().expect("an address")), "{ip}");
        }
    }

    #[tokio::test]
    async fn the_resolver_never_hands_out_an_internal_address() {
        use reqwest::dns::Resolve;
        for name in ["localhost", "127.0.0.1"] {
            let name: reqwest::dns::Name = name.parse().expect("a name");
            let resolved = PublicOnly.resolve(name).await;
            assert!(resolved.is_err(), "resolved inward");
        }
    }

    #[test]
    fn hosts_internal_by_their_form() {
        for url in [
            "http://127.0.0.1:9090/metrics",
            "https://localhost/jwks",
            "https://api.localhost/jwks",
            "https://[::1]/jwks",
            "https://169.254.169.254/latest",
        ] {
            assert!(
                names_internal_host(&Url::parse(url).expect("a URL")),
                "{url}"
            );
        }
        assert!(!names_internal_host(
            &Url::parse("https://idp.example.com/jwks").expect("a URL")
        ));
    }
}
