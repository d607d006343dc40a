//! Who sent a request (SPEC §6): the TCP peer, unless the peer is a proxy the configuration
//! trusts (`server.trusted_proxies`); then the nearest hop that `Forwarded` (RFC 7239) or
//! `X-Forwarded-For` names and that is not itself a trusted proxy. Those headers from anyone
//! else are ignored: a client cannot choose the address its requests are counted and recorded
//! under.

use std::net::IpAddr;

use actix_web::HttpRequest;

use crate::net::{Cidr, canonical};

/// The address a request counts as coming from.
pub fn of(req: &HttpRequest, trusted: &[Cidr]) -> Option<IpAddr> {
    let peer = canonical(req.peer_addr()?.ip());
    if !trusted.iter().any(|c| c.contains(peer)) {
        return Some(peer);
    }
    let headers = req.headers();
    let forwarded: Vec<&str> = headers
        .get_all("forwarded")
        .filter_map(|v| v.to_str().ok())
        .collect();
    let hops: Option<Vec<IpAddr>> = if forwarded.is_empty() {
        headers
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|hop| parse_hop(hop.trim()))
            .collect()
    } else {
        forwarded
            .iter()
            .flat_map(|v| v.split(','))
            .map(|element| {
                element
                    .split(';')
                    .filter_map(|pair| pair.trim().split_once('='))
                    .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
                    .and_then(|(_, value)| parse_hop(value.trim().trim_matches('"')))
            })
            .collect()
    };
    // No header, or one that cannot be read whole: the proxy is all that is known.
    let Some(hops) = hops.filter(|h| !h.is_empty()) else {
        return Some(peer);
    };
    // From the nearest hop outwards, the first one that is not a trusted proxy; when every hop is
    // trusted, the farthest.
    let nearest_untrusted = hops
        .iter()
        .rev()
        .map(|ip| canonical(*ip))
        .find(|ip| !trusted.iter().any(|c| c.contains(*ip)));
    nearest_untrusted.or_else(|| hops.first().copied().map(canonical))
}

/// One hop: an address, with or without a port (`1.2.3.4:80`, `[2001:db8::1]:80`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    hop.rsplit_once(':')?.0.parse().ok()
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let trusted = [Cidr::parse("10.0.0.0/8").expect("a block")];
        let from = |peer: &str, headers: &[(&str, &str)]| {
            let mut req =
                TestRequest::default().peer_addr(format!("{peer}:5000").parse().expect("peer"));
            for (name, value) in headers {
                req = req.insert_header((*name, *value));
            }
            of(&req.to_http_request(), &trusted)
        };
        // A client's own header is ignored.
        assert_eq!(
            from("203.0.113.9", &[("x-forwarded-for", "1.1.1.1")]),
            Some(ip("203.0.113.9"))
        );
        // Behind a trusted proxy: the nearest untrusted hop, not the client's claim before it.
        assert_eq!(
            from(
                "10.0.0.2",
                &[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.0.0.5")]
            ),
            Some(ip("198.51.100.7"))
        );
        assert_eq!(
            from(
                "10.0.0.2",
                &[(
                    "forwarded",
                    "for=6.6.6.6, for=\"[2001:db8::7]:4711\";proto=https"
                )]
            ),
            Some(ip("2001:db8::7"))
        );
        assert_eq!(
            from("10.0.0.2", &[]),
            Some(ip("10.0.0.2")),
            "no header: the proxy itself"
        );
        assert_eq!(
            from("10.0.0.2", &[("x-forwarded-for", "garbage")]),
            Some(ip("10.0.0.2")),
            "an unreadable header: the proxy itself"
        );
        assert_eq!(
            from("10.0.0.2", &[("x-forwarded-for", "192.0.2.1:8080")]),
            Some(ip("192.0.2.1"))
        );
    }
}
