//! Credentials on an HTTP request, the ways InfluxDB clients send them:
//! `Authorization: Basic` (v1 clients), `Authorization: Token user:password`
//! (v2 clients against InfluxDB 1.8's compatibility API, and Telegraf's
//! `token`), `Bearer` likewise, or the v1 query parameters `u` and `p`.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hyper::header::AUTHORIZATION;
use hyper::http::request::Parts;

use crate::pg::{Authenticated, Users};

/// The user a request's credentials name, checked against the configured
/// users; otherwise why not (answered 401).
pub(crate) async fn authenticate(
    parts: &Parts,
    query: &[(String, String)],
    users: &Arc<Users>,
) -> Result<Authenticated, String> {
    let presented = presented(parts, query)?;
    let users = users.clone();
    // Checking a SCRAM verifier hashes thousands of rounds: off the async threads.
    tokio::task::spawn_blocking(move || users.check_password(&presented.user, &presented.password))
        .await
        .ok()
        .flatten()
        .ok_or_else(|| "authorization failed: unknown user or wrong password".to_string())
}

/// The query string's parameters, decoded.
pub(crate) fn query_pairs(parts: &Parts) -> Vec<(String, String)> {
    parts
        .uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

/// A user name and password as presented.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Presented {
    pub(crate) user: String,
    pub(crate) password: String,
}

/// The credentials of a request; `Err` says what is wrong with them.
pub(crate) fn presented(parts: &Parts, query: &[(String, String)]) -> Result<Presented, String> {
    if let Some(value) = parts.headers.get(AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| "the Authorization header is not text".to_string())?;
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        let rest = rest.trim();
        let pair = match scheme.to_ascii_lowercase().as_str() {
            "basic" => {
                let decoded = STANDARD
                    .decode(rest)
                    .map_err(|_| "the Basic credentials are not base64".to_string())?;
                String::from_utf8(decoded)
                    .map_err(|_| "the Basic credentials are not UTF-8".to_string())?
            }
            "token" | "bearer" => rest.to_string(),
            other => {
                return Err(format!(
                    "Authorization scheme \"{other}\" is not supported: use Basic, or Token user:password"
                ));
            }
        };
        let (user, password) = pair.split_once(':').ok_or_else(|| {
            "the token must be user:password (Tidemark's users are the PostgreSQL users)"
                .to_string()
        })?;
        return Ok(Presented {
            user: user.to_string(),
            password: password.to_string(),
        });
    }
    let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    match (get("u"), get("p")) {
        (Some(user), Some(password)) => Ok(Presented { user, password }),
        _ => Err(
            "credentials required: Authorization: Basic or Token user:password, or u and p".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use hyper::Request;

    use super::*;

    fn parts(auth: Option<&str>) -> Parts {
        let mut b = Request::builder().uri("/write");
        if let Some(a) = auth {
            b = b.header(AUTHORIZATION, a);
        }
        b.body(()).expect("request").into_parts().0
    }

    fn pair(user: &str, password: &str) -> Presented {
        Presented {
            user: user.into(),
            password: password.into(),
        }
    }

    #[test]
    fn every_way_clients_send_credentials() {
        let basic = format!("Basic {}", STANDARD.encode("admin:qu:est"));
        assert_eq!(
            presented(&parts(Some(&basic)), &[]),
            Ok(pair("admin", "qu:est"))
        );
        assert_eq!(
            presented(&parts(Some("Token admin:quest")), &[]),
            Ok(pair("admin", "quest"))
        );
        assert_eq!(
            presented(&parts(Some("Bearer admin:quest")), &[]),
            Ok(pair("admin", "quest"))
        );
        let query = [
            ("u".to_string(), "admin".to_string()),
            ("p".to_string(), "quest".to_string()),
        ];
        assert_eq!(presented(&parts(None), &query), Ok(pair("admin", "quest")));
    }

    #[test]
    fn what_is_wrong_with_credentials_is_said() {
        assert!(presented(&parts(None), &[]).is_err());
        assert!(presented(&parts(Some("Token justatoken")), &[]).is_err());
        assert!(presented(&parts(Some("Digest x")), &[]).is_err());
        assert!(presented(&parts(Some("Basic !!!")), &[]).is_err());
    }
}
