//! Endpoint URL rules: what a brand may register as the target of its deliveries.
//!
//! Hookline makes requests on a brand's behalf from inside our network, so an endpoint is a
//! server-side request forgery vector. Two checks share one address rule,
//! [`is_forbidden_ip`]:
//!
//! 1. here, at registration: the URL is parsed with the WHATWG URL parser (the `url` crate), which
//!    normalises the IPv4 spellings that fool naive checks (`0x7f.1`, `2130706433` and
//!    `0177.0.0.1` all become `127.0.0.1`), then a literal IP host or a `localhost` name is
//!    refused;
//! 2. in the worker, at connect time, on every resolved address, because a host name can resolve
//!    to anything (`127.0.0.1.nip.io`, DNS rebinding, `metadata.google.internal`). Names are
//!    therefore not judged here beyond the `localhost` family, which RFC 6761 §6.3 reserves for
//!    loopback; `.local` (mDNS) and internal cloud names are left to the connect-time check.
//!
//! [`UrlPolicy`] relaxes both rules for development and tests, where receivers run on
//! `http://127.0.0.1:PORT` (`HOOKLINE__DELIVERY__ALLOW_HTTP`, `…__ALLOW_PRIVATE_TARGETS`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Serialize, Serializer};
use url::{Host, Url};

/// Longest endpoint accepted, in bytes. 2048 is the de-facto URL limit of browsers and many
/// proxies; a longer URL is more likely a mistake or abuse than a real receiver.
pub const MAX_ENDPOINT_LEN: usize = 2048;

/// Which otherwise-refused endpoints a deployment allows. Both default to `false`, the
/// production setting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    /// Allow `http://` as well as `https://`.
    pub allow_http: bool,
    /// Allow loopback, private and other non-public addresses (see [`is_forbidden_ip`]).
    pub allow_private: bool,
}

/// Why an endpoint was refused. Messages are written for the brand's engineer who sent it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("endpoint must not be empty")]
    Empty,
    #[error("endpoint must be at most {MAX_ENDPOINT_LEN} characters")]
    TooLong,
    #[error("endpoint is not a valid absolute URL (such as https://example.com/webhook): {0}")]
    Invalid(String),
    #[error("endpoint must use https, not `{0}`")]
    Scheme(String),
    #[error("endpoint must use https; plain http is not allowed")]
    HttpNotAllowed,
    #[error("endpoint must have a host name")]
    NoHost,
    #[error("endpoint must not contain a user name or password; authenticate deliveries with the webhook secret instead")]
    UserInfo,
    #[error("endpoint must not contain a #fragment: fragments are never sent to the server")]
    Fragment,
    #[error("endpoint host `{0}` is a loopback, private or reserved address; it must be reachable on the public internet")]
    ForbiddenAddress(String),
}

impl EndpointError {
    /// The catalogue code: a missing endpoint is the FDX spec's "Callback URL missing", any
    /// other refusal is "Input data validation failed".
    pub fn error_code(&self) -> crate::ErrorCode {
        match self {
            Self::Empty => crate::ErrorCode::Whk0003,
            Self::TooLong
            | Self::Invalid(_)
            | Self::Scheme(_)
            | Self::HttpNotAllowed
            | Self::NoHost
            | Self::UserInfo
            | Self::Fragment
            | Self::ForbiddenAddress(_) => crate::ErrorCode::Cmr0001,
        }
    }
}

/// An endpoint that passed the rules of [`EndpointUrl::parse`], in the `url` crate's normalised
/// serialisation (lower-case scheme and host, default port dropped, `/` path when empty).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EndpointUrl(Url);

impl EndpointUrl {
    /// Parses and checks an endpoint; see the module docs for why each rule exists.
    ///
    /// Refused: empty; longer than [`MAX_ENDPOINT_LEN`]; whitespace or control characters
    /// anywhere (the WHATWG parser silently strips tabs and newlines, so `exa\nmple.com` would
    /// otherwise be stored as something the brand did not type); relative; a scheme other than
    /// https (http when the policy allows it); user info (credentials would be stored and logged
    /// with the URL, and `https://good.com@evil.example` reads as `good.com`); a fragment (never
    /// sent in an HTTP request, RFC 9110 §7.1, so it could only make two registrations of the
    /// same receiver look different); a forbidden address (unless the policy allows private
    /// targets).
    pub fn parse(s: &str, policy: &UrlPolicy) -> Result<EndpointUrl, EndpointError> {
        if s.is_empty() {
            return Err(EndpointError::Empty);
        }
        if s.len() > MAX_ENDPOINT_LEN {
            return Err(EndpointError::TooLong);
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(EndpointError::Invalid(
                "it must not contain spaces or control characters".to_owned(),
            ));
        }
        let url = Url::parse(s).map_err(|e| match e {
            url::ParseError::RelativeUrlWithoutBase => {
                EndpointError::Invalid("it has no scheme; start it with https://".to_owned())
            }
            other => EndpointError::Invalid(other.to_string()),
        })?;
        match url.scheme() {
            "https" => {}
            "http" if policy.allow_http => {}
            "http" => return Err(EndpointError::HttpNotAllowed),
            other => return Err(EndpointError::Scheme(other.to_owned())),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(EndpointError::UserInfo);
        }
        if url.fragment().is_some() {
            return Err(EndpointError::Fragment);
        }
        let host = url.host().ok_or(EndpointError::NoHost)?;
        if !policy.allow_private && is_forbidden_host(&host) {
            return Err(EndpointError::ForbiddenAddress(host.to_string()));
        }
        // Percent-encoding and IDNA can lengthen what was typed; the stored form is bounded.
        if url.as_str().len() > MAX_ENDPOINT_LEN {
            return Err(EndpointError::TooLong);
        }
        Ok(EndpointUrl(url))
    }

    /// The normalised URL as text, as stored and sent.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The parsed URL, for the HTTP client.
    pub fn url(&self) -> &Url {
        &self.0
    }
}

impl fmt::Display for EndpointUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl Serialize for EndpointUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.as_str())
    }
}

/// Parse-time host rule: literal IPs by [`is_forbidden_ip`], names only in the `localhost`
/// family (RFC 6761 §6.3), with or without the trailing root dot.
fn is_forbidden_host(host: &Host<&str>) -> bool {
    match host {
        Host::Ipv4(ip) => is_forbidden_ip(IpAddr::V4(*ip)),
        Host::Ipv6(ip) => is_forbidden_ip(IpAddr::V6(*ip)),
        Host::Domain(name) => {
            // The WHATWG parser lower-cases special-scheme hosts; lower-case again so this
            // function does not depend on that.
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
    }
}

/// Whether deliveries must never go to `ip`: anything that is not a public unicast address.
///
/// The worker calls this on every resolved address at connect time, so it is the real SSRF
/// guard. It uses std's stable helpers where they exist and explicit ranges (IANA
/// special-purpose registries, RFC 6890) where the helpers are still unstable. IPv6 addresses
/// that embed an IPv4 address (mapped, compatible, NAT64, 6to4, Teredo) are judged by that
/// IPv4 address, because the host may route them to it.
pub fn is_forbidden_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_forbidden_ipv4(v4),
        IpAddr::V6(v6) => is_forbidden_ipv6(v6),
    }
}

/// Whether `ip` lies in `net/prefix_len` (IPv4).
fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix_len: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix_len).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

/// Whether `ip` lies in `net/prefix_len` (IPv6).
fn in_v6(ip: Ipv6Addr, net: [u16; 8], prefix_len: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - prefix_len).unwrap_or(0);
    u128::from(ip) & mask == u128::from(Ipv6Addr::from(net)) & mask
}

fn is_forbidden_ipv4(ip: Ipv4Addr) -> bool {
    ip.is_loopback() // 127.0.0.0/8
        || ip.is_private() // 10/8, 172.16/12, 192.168/16 (RFC 1918)
        || ip.is_link_local() // 169.254/16 (RFC 3927): cloud metadata lives here
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast() // 224/4
        || ip.is_documentation() // 192.0.2/24, 198.51.100/24, 203.0.113/24 (RFC 5737)
        || in_v4(ip, [0, 0, 0, 0], 8) // "this network" (RFC 791); Linux connects it to localhost
        || in_v4(ip, [100, 64, 0, 0], 10) // carrier-grade NAT (RFC 6598)
        || in_v4(ip, [192, 0, 0, 0], 24) // IETF protocol assignments (RFC 6890)
        || in_v4(ip, [198, 18, 0, 0], 15) // benchmarking (RFC 2544)
        || in_v4(ip, [240, 0, 0, 0], 4) // reserved (RFC 1112), includes broadcast
}

fn is_forbidden_ipv6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_ipv4(ip) {
        return is_forbidden_ipv4(v4);
    }
    ip.is_loopback() // ::1
        || ip.is_unspecified() // ::
        || ip.is_multicast() // ff00::/8
        || ip.is_unique_local() // fc00::/7 (RFC 4193)
        || ip.is_unicast_link_local() // fe80::/10
        || in_v6(ip, [0xfec0, 0, 0, 0, 0, 0, 0, 0], 10) // site-local, deprecated (RFC 3879)
        || in_v6(ip, [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32) // documentation (RFC 3849)
        || in_v6(ip, [0x3fff, 0, 0, 0, 0, 0, 0, 0], 20) // documentation (RFC 9637)
        || in_v6(ip, [0x0100, 0, 0, 0, 0, 0, 0, 0], 64) // discard-only (RFC 6666)
        || in_v6(ip, [0x2001, 0x2, 0, 0, 0, 0, 0, 0], 48) // benchmarking (RFC 5180)
        || in_v6(ip, [0x64, 0xff9b, 0x1, 0, 0, 0, 0, 0], 48) // local-use NAT64 (RFC 8215)
}

/// The IPv4 address an IPv6 address stands for, if it is of a form that carries one.
fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    // The low 32 bits, truncation intended.
    let low32 = Ipv4Addr::from(bits as u32);
    if let Some(mapped) = ip.to_ipv4_mapped() {
        // ::ffff:0:0/96, IPv4-mapped (RFC 4291 §2.5.5.2).
        return Some(mapped);
    }
    if in_v6(ip, [0; 8], 96) {
        // ::/96, IPv4-compatible (RFC 4291 §2.5.5.1, deprecated); `::` and `::1` map to
        // 0.0.0.0 and 0.0.0.1, which are forbidden as "this network".
        return Some(low32);
    }
    if in_v6(ip, [0, 0, 0, 0, 0xffff, 0, 0, 0], 96) {
        // ::ffff:0:0:0/96, IPv4-translated (RFC 2765).
        return Some(low32);
    }
    if in_v6(ip, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96) {
        // 64:ff9b::/96, well-known NAT64 prefix (RFC 6052).
        return Some(low32);
    }
    if in_v6(ip, [0x2002, 0, 0, 0, 0, 0, 0, 0], 16) {
        // 2002::/16, 6to4 (RFC 3056): the IPv4 address is bits 16..48.
        return Some(Ipv4Addr::from((bits >> 80) as u32));
    }
    if in_v6(ip, [0x2001, 0, 0, 0, 0, 0, 0, 0], 32) {
        // 2001::/32, Teredo (RFC 4380): the client's IPv4 address is the low 32 bits, inverted.
        return Some(Ipv4Addr::from(!(bits as u32)));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: UrlPolicy = UrlPolicy {
        allow_http: false,
        allow_private: false,
    };
    const HTTP_ONLY: UrlPolicy = UrlPolicy {
        allow_http: true,
        allow_private: false,
    };
    const DEV: UrlPolicy = UrlPolicy {
        allow_http: true,
        allow_private: true,
    };

    fn forbidden(s: &str, policy: &UrlPolicy) -> String {
        match EndpointUrl::parse(s, policy) {
            Err(EndpointError::ForbiddenAddress(host)) => host,
            other => panic!("{s}: expected ForbiddenAddress, got {other:?}"),
        }
    }

    fn ok(s: &str, policy: &UrlPolicy) -> String {
        match EndpointUrl::parse(s, policy) {
            Ok(url) => url.to_string(),
            Err(e) => panic!("{s}: expected Ok, got {e:?}"),
        }
    }

    #[test]
    fn good_endpoints_are_accepted_in_normalised_form() {
        assert_eq!(
            ok("https://example.com/hook?x=1", &STRICT),
            "https://example.com/hook?x=1"
        );
        assert_eq!(
            ok("https://example.com:8443/a", &STRICT),
            "https://example.com:8443/a"
        );
        assert_eq!(ok("HTTPS://Example.COM", &STRICT), "https://example.com/");
        assert_eq!(
            ok("https://example.com:443/a", &STRICT),
            "https://example.com/a"
        );
        assert_eq!(ok("https://8.8.8.8/a", &STRICT), "https://8.8.8.8/a");
        assert_eq!(
            ok("https://[2606:4700::1111]/", &STRICT),
            "https://[2606:4700::1111]/"
        );
        let url = EndpointUrl::parse("https://example.com/a", &STRICT).expect("valid");
        assert_eq!(url.url().host_str(), Some("example.com"));
        assert_eq!(url.as_str(), "https://example.com/a");
        assert_eq!(
            serde_json::to_string(&url).expect("serialize"),
            "\"https://example.com/a\""
        );
    }

    #[test]
    fn whatwg_parsing_normalises_obfuscated_ipv4_loopback_before_the_check() {
        for s in [
            "http://0x7f.1/",
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://127.1/",
        ] {
            assert_eq!(forbidden(s, &HTTP_ONLY), "127.0.0.1", "{s}");
        }
    }

    #[test]
    fn ipv4_inside_ipv6_is_checked() {
        for s in ["http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/"] {
            assert_eq!(forbidden(s, &HTTP_ONLY), "[::ffff:7f00:1]", "{s}");
        }
        forbidden("https://[64:ff9b::a9fe:a9fe]/", &STRICT);
        forbidden("https://[2002:a00:1::]/", &STRICT);
    }

    #[test]
    fn metadata_link_local_loopback_and_unspecified_hosts_are_refused() {
        assert_eq!(
            forbidden("http://169.254.169.254/latest/meta-data", &HTTP_ONLY),
            "169.254.169.254"
        );
        forbidden("http://[fe80::1]/", &HTTP_ONLY);
        forbidden("http://[::]/", &HTTP_ONLY);
        forbidden("http://[::1]/", &HTTP_ONLY);
        forbidden("http://0.0.0.0/", &HTTP_ONLY);
        forbidden("http://0/", &HTTP_ONLY);
        forbidden("https://10.1.2.3/", &STRICT);
        forbidden("https://192.168.0.1:8443/x", &STRICT);
    }

    #[test]
    fn localhost_names_are_refused_in_any_case_and_with_a_trailing_dot() {
        for s in [
            "https://localhost/",
            "https://LOCALHOST./",
            "https://foo.localhost/",
            "https://a.b.LocalHost/",
            "https://localhost:8443/",
        ] {
            forbidden(s, &STRICT);
        }
        // Only the name `localhost` and its subdomains; a name merely containing it is public.
        ok("https://localhost.example.com/", &STRICT);
        ok("https://mylocalhost.com/", &STRICT);
    }

    #[test]
    fn names_resolving_to_private_addresses_pass_here_and_are_rechecked_by_the_worker_at_connect_time(
    ) {
        ok("https://127.0.0.1.nip.io/", &STRICT);
        ok("https://printer.local/", &STRICT);
        ok("https://metadata.google.internal/", &STRICT);
    }

    #[test]
    fn allow_private_lets_loopback_through_for_development() {
        for s in [
            "http://127.0.0.1:8080/hook",
            "http://localhost:3000/",
            "http://[::1]/",
            "http://0x7f.1/",
            "http://169.254.169.254/",
        ] {
            ok(s, &DEV);
        }
        // allow_private does not imply allow_http.
        let private_https_only = UrlPolicy {
            allow_http: false,
            allow_private: true,
        };
        assert_eq!(
            EndpointUrl::parse("http://127.0.0.1/", &private_https_only),
            Err(EndpointError::HttpNotAllowed)
        );
        ok("https://127.0.0.1/", &private_https_only);
    }

    #[test]
    fn http_is_refused_unless_allowed() {
        assert_eq!(
            EndpointUrl::parse("http://example.com/", &STRICT),
            Err(EndpointError::HttpNotAllowed)
        );
        ok("http://example.com/", &HTTP_ONLY);
        assert_eq!(
            EndpointError::HttpNotAllowed.to_string(),
            "endpoint must use https; plain http is not allowed"
        );
    }

    #[test]
    fn other_schemes_are_refused_even_with_every_flag_on() {
        for (s, scheme) in [
            ("ftp://example.com", "ftp"),
            ("javascript:alert(1)", "javascript"),
            ("file:///etc/passwd", "file"),
            ("data:text/plain,hi", "data"),
            ("ws://example.com/", "ws"),
            ("example.com:8080/path", "example.com"),
        ] {
            for policy in [STRICT, DEV] {
                assert_eq!(
                    EndpointUrl::parse(s, &policy),
                    Err(EndpointError::Scheme(scheme.to_owned())),
                    "{s}"
                );
            }
        }
    }

    #[test]
    fn relative_and_schemeless_urls_are_invalid() {
        for s in ["//example.com", "example.com/path", "/hook", "example.com"] {
            for policy in [STRICT, DEV] {
                assert!(
                    matches!(
                        EndpointUrl::parse(s, &policy),
                        Err(EndpointError::Invalid(_))
                    ),
                    "{s}"
                );
            }
        }
        assert!(matches!(
            EndpointUrl::parse("https://", &STRICT),
            Err(EndpointError::Invalid(_))
        ));
        assert!(matches!(
            EndpointUrl::parse("https://exa mple.com/", &STRICT),
            Err(EndpointError::Invalid(_))
        ));
    }

    #[test]
    fn whitespace_and_control_characters_are_refused_not_silently_stripped() {
        for s in [
            " https://example.com/",
            "https://example.com/ ",
            "https://exa\nmple.com/",
            "https://example.com/\ta",
        ] {
            assert!(
                matches!(EndpointUrl::parse(s, &DEV), Err(EndpointError::Invalid(_))),
                "{s:?}"
            );
        }
    }

    #[test]
    fn user_info_is_refused_before_the_host_is_judged() {
        for s in [
            "https://user:pass@example.com/",
            "https://user@example.com/",
            "https://:pass@example.com/",
            "https://example.com@127.0.0.1/",
        ] {
            for policy in [STRICT, DEV] {
                assert_eq!(
                    EndpointUrl::parse(s, &policy),
                    Err(EndpointError::UserInfo),
                    "{s}"
                );
            }
        }
    }

    #[test]
    fn fragments_are_refused() {
        for s in ["https://example.com/a#b", "https://example.com/#"] {
            assert_eq!(
                EndpointUrl::parse(s, &STRICT),
                Err(EndpointError::Fragment),
                "{s}"
            );
        }
    }

    #[test]
    fn empty_and_too_long_are_refused() {
        assert_eq!(EndpointUrl::parse("", &STRICT), Err(EndpointError::Empty));
        let prefix = "https://example.com/";
        let at_limit = format!("{prefix}{}", "a".repeat(MAX_ENDPOINT_LEN - prefix.len()));
        ok(&at_limit, &STRICT);
        let over = format!("{at_limit}a");
        assert_eq!(
            EndpointUrl::parse(&over, &STRICT),
            Err(EndpointError::TooLong)
        );
        // Percent-encoding can push the stored form over the bound.
        let expands = format!("{prefix}{}", "\"".repeat(MAX_ENDPOINT_LEN - prefix.len()));
        assert_eq!(
            EndpointUrl::parse(&expands, &STRICT),
            Err(EndpointError::TooLong)
        );
    }

    #[test]
    fn error_codes_follow_the_fdx_catalogue() {
        assert_eq!(EndpointError::Empty.error_code(), crate::ErrorCode::Whk0003);
        assert_eq!(
            EndpointError::UserInfo.error_code(),
            crate::ErrorCode::Cmr0001
        );
    }

    fn v4(s: &str) -> IpAddr {
        IpAddr::V4(s.parse().expect("ipv4 literal"))
    }

    fn v6(s: &str) -> IpAddr {
        IpAddr::V6(s.parse().expect("ipv6 literal"))
    }

    #[test]
    fn forbidden_ipv4_ranges() {
        for s in [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "10.255.255.255",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.170",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(is_forbidden_ip(v4(s)), "{s} should be forbidden");
        }
    }

    #[test]
    fn public_ipv4_addresses_next_to_forbidden_ranges_are_allowed() {
        for s in [
            "1.1.1.1",
            "8.8.8.8",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.1",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
        ] {
            assert!(!is_forbidden_ip(v4(s)), "{s} should be allowed");
        }
    }

    #[test]
    fn forbidden_ipv6_ranges() {
        for s in [
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "3fff::1",
            "100::1",
            "2001:2::1",
            "64:ff9b:1::1",
            // IPv4-mapped, -compatible, -translated, NAT64, 6to4, Teredo with bad IPv4 inside.
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "::ffff:0:127.0.0.1",
            "64:ff9b::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "2001:0:4136:e378:8000:63bf:80ff:fffe", // Teredo client 127.0.0.1
        ] {
            assert!(is_forbidden_ip(v6(s)), "{s} should be forbidden");
        }
    }

    #[test]
    fn public_ipv6_and_embedded_public_ipv4_are_allowed() {
        for s in [
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2001:0:4136:e378:8000:63bf:f7f7:f7f7", // Teredo client 8.8.8.8
            "2001:db9::1",
            "fbff::1",
        ] {
            assert!(!is_forbidden_ip(v6(s)), "{s} should be allowed");
        }
    }
}
