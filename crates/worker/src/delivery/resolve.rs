//! The SSRF guard at connect time.
//!
//! The API checks an endpoint when it is registered, but a name can resolve to anything later
//! (DNS rebinding, or a record changed after registration). So the worker resolves names itself
//! and refuses a name when any of its addresses is forbidden ([`is_forbidden_ip`]): connecting
//! only to the allowed ones would still let an attacker steer some requests inside by adding a
//! public address beside a private one. Literal-IP URLs never reach a resolver, so
//! [`forbidden_literal`] checks those before sending.

use std::net::{IpAddr, SocketAddr};

use hookline_domain::is_forbidden_ip;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::Host;

/// Why a connection was refused. Its text becomes the attempt's error, so it names the
/// address but never anything else of the request.
#[derive(Debug, thiserror::Error)]
#[error("forbidden address: `{host}` resolves to {addr}, a loopback, private or reserved address")]
pub struct ForbiddenAddress {
    pub host: String,
    pub addr: IpAddr,
}

/// A name that could not be resolved; its own type so the attempt's error says `dns`.
#[derive(Debug, thiserror::Error)]
#[error("dns: cannot resolve `{host}`: {reason}")]
pub struct DnsFailure {
    pub host: String,
    pub reason: String,
}

/// The worker's resolver: the system's (through `tokio::net::lookup_host`), refusing names
/// that resolve to forbidden addresses unless `allow_private` (the
/// `delivery.allow_private_targets` switch, for tests and closed networks).
#[derive(Debug, Default, Clone, Copy)]
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let allow_private = self.allow_private;
        Box::pin(async move {
            // Port 0: reqwest replaces it with the URL's port.
            let looked_up = tokio::net::lookup_host((host.clone(), 0)).await;
            let addrs: Vec<SocketAddr> = match looked_up {
                Ok(addrs) => addrs.collect(),
                Err(e) => {
                    return Err(Box::new(DnsFailure {
                        host,
                        reason: e.to_string(),
                    })
                        as Box<dyn std::error::Error + Send + Sync>)
                }
            };
            if addrs.is_empty() {
                return Err(Box::new(DnsFailure {
                    host,
                    reason: "no addresses".to_owned(),
                }));
            }
            if allow_private {
                return Ok(Box::new(addrs.into_iter()) as Addrs);
            }
            if let Some(bad) = addrs.iter().find(|a| is_forbidden_ip(a.ip())) {
                return Err(Box::new(ForbiddenAddress {
                    host,
                    addr: bad.ip(),
                })
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The refusal for a URL whose host is a forbidden literal IP, if it is one.
pub fn forbidden_literal(url: &url::Url) -> Option<ForbiddenAddress> {
    let ip = match url.host()? {
        Host::Ipv4(ip) => IpAddr::V4(ip),
        Host::Ipv6(ip) => IpAddr::V6(ip),
        Host::Domain(_) => return None,
    };
    is_forbidden_ip(ip).then(|| ForbiddenAddress {
        host: ip.to_string(),
        addr: ip,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_literals_are_caught_and_names_left_to_the_resolver() {
        let url = |s: &str| url::Url::parse(s).expect("url");
        assert!(forbidden_literal(&url("http://127.0.0.1:8080/")).is_some());
        assert!(forbidden_literal(&url("http://[::1]/")).is_some());
        assert!(forbidden_literal(&url("http://10.1.2.3/")).is_some());
        assert!(forbidden_literal(&url("https://93.184.215.14/")).is_none());
        assert!(forbidden_literal(&url("https://localhost/")).is_none());
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused() {
        let name: Name = "localhost".parse().expect("name");
        let resolver = GuardedResolver {
            allow_private: false,
        };
        let err = match resolver.resolve(name).await {
            Ok(_) => panic!("localhost must be refused"),
            Err(e) => e,
        };
        assert!(err.to_string().contains("forbidden address"), "{err}");
    }

    #[tokio::test]
    async fn private_names_resolve_when_allowed() {
        let name: Name = "localhost".parse().expect("name");
        let resolver = GuardedResolver {
            allow_private: true,
        };
        let addrs: Vec<SocketAddr> = match resolver.resolve(name).await {
            Ok(addrs) => addrs.collect(),
            Err(e) => panic!("localhost must resolve when allowed: {e}"),
        };
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    }
}
