//! What the configuration holds for a user's password: the password itself, or a
//! SCRAM-SHA-256 verifier in PostgreSQL's format
//! (`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, base64 parts), the
//! same string `pg_authid.rolpassword` holds, so a password never has to be written
//! down in clear. `tidemark hash-password` prints one.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pgwire::api::auth::sasl::scram::{ScramSecret, gen_salted_password};

/// Iterations for verifiers Tidemark derives itself (PostgreSQL's default).
pub(crate) const SCRAM_ITERATIONS: usize = 4096;
const PREFIX: &str = "SCRAM-SHA-256$";

/// What SCRAM checks a login against: PostgreSQL's verifier, without the password.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ScramKeys {
    salt: Vec<u8>,
    iterations: usize,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
}

impl ScramKeys {
    /// The keys of `password` with `salt`.
    fn derive(password: &str, salt: &[u8], iterations: usize) -> ScramKeys {
        let salted = gen_salted_password(password, salt, iterations);
        match ScramSecret::verifier_from_salted_password(salt.to_vec(), salted, iterations) {
            ScramSecret::Verifier {
                salt,
                iterations,
                stored_key,
                server_key,
            } => ScramKeys {
                salt,
                iterations,
                stored_key,
                server_key,
            },
            // Not what pgwire returns; empty keys match nothing.
            ScramSecret::SaltedPassword { salt, .. } => ScramKeys {
                salt,
                iterations,
                stored_key: Vec::new(),
                server_key: Vec::new(),
            },
        }
    }

    /// pgwire's form of the keys, for one login.
    pub(crate) fn secret(&self) -> ScramSecret {
        ScramSecret::Verifier {
            salt: self.salt.clone(),
            iterations: self.iterations,
            stored_key: self.stored_key.clone(),
            server_key: self.server_key.clone(),
        }
    }
}

/// A user's password as configured.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Credential {
    Clear(String),
    Verifier(ScramKeys),
}

impl Credential {
    /// Reads a configured password: a verifier when it starts with `SCRAM-SHA-256$`,
    /// else the password itself. The error says what is wrong with a verifier.
    pub(crate) fn parse(text: &str) -> Result<Credential, String> {
        let Some(rest) = text.strip_prefix(PREFIX) else {
            return Ok(Credential::Clear(text.to_string()));
        };
        let expected = "expected SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>";
        let (params, keys) = rest.split_once('$').ok_or(expected)?;
        let (iterations, salt) = params.split_once(':').ok_or(expected)?;
        let (stored_key, server_key) = keys.split_once(':').ok_or(expected)?;
        let iterations: usize =
            iterations.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                format!("iteration count \"{iterations}\" is not a positive integer")
            })?;
        let decode = |what: &str, b64: &str| {
            STANDARD
                .decode(b64)
                .map_err(|e| format!("{what} is not base64: {e}"))
        };
        let (salt, stored_key, server_key) = (
            decode("the salt", salt)?,
            decode("StoredKey", stored_key)?,
            decode("ServerKey", server_key)?,
        );
        if stored_key.len() != 32 || server_key.len() != 32 {
            return Err("StoredKey and ServerKey must be 32 bytes (SHA-256)".into());
        }
        Ok(Credential::Verifier(ScramKeys {
            salt,
            iterations,
            stored_key,
            server_key,
        }))
    }

    /// The verifier for `password` with `salt`, as `parse` reads it.
    pub(crate) fn verifier(password: &str, salt: &[u8], iterations: usize) -> String {
        let keys = ScramKeys::derive(password, salt, iterations);
        format!(
            "{PREFIX}{iterations}:{}${}:{}",
            STANDARD.encode(salt),
            STANDARD.encode(keys.stored_key),
            STANDARD.encode(keys.server_key)
        )
    }

    /// What SCRAM authentication checks against; a clear password is salted with
    /// `salt` (once per user, at start: PBKDF2 is slow on purpose).
    pub(crate) fn scram_keys(&self, salt: &[u8]) -> ScramKeys {
        match self {
            Credential::Clear(password) => ScramKeys::derive(password, salt, SCRAM_ITERATIONS),
            Credential::Verifier(keys) => keys.clone(),
        }
    }

    /// Whether `presented` (a cleartext login) is this password.
    pub(crate) fn matches(&self, presented: &str) -> bool {
        match self {
            Credential::Clear(password) => {
                constant_time_eq(password.as_bytes(), presented.as_bytes())
            }
            Credential::Verifier(keys) => constant_time_eq(
                &ScramKeys::derive(presented, &keys.salt, keys.iterations).stored_key,
                &keys.stored_key,
            ),
        }
    }
}

/// Equality whose time does not depend on where the inputs differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Computed independently (Python hashlib/hmac) for password "quest", salt 0..16.
    const QUEST: &str = "SCRAM-SHA-256$4096:AAECAwQFBgcICQoLDA0ODw==$AWKrN5u7EFQ5MjpYuHujltNSpd0oIFfgPBiywS2/lic=:kuFgG8g3h3tJzE49XF/uv4Aww31QHv0K4NnqjKpVJHk=";

    #[test]
    fn verifier_matches_postgresql_format() {
        let salt: Vec<u8> = (0..16).collect();
        assert_eq!(Credential::verifier("quest", &salt, 4096), QUEST);
        let parsed = Credential::parse(QUEST).expect("valid verifier");
        assert!(parsed.matches("quest"));
        assert!(!parsed.matches("Quest"));
        assert!(!parsed.matches(""));
    }

    #[test]
    fn clear_passwords_and_bad_verifiers() {
        let clear = Credential::parse("s3cret").expect("clear");
        assert!(clear.matches("s3cret") && !clear.matches("s3cret "));
        for (bad, says) in [
            ("SCRAM-SHA-256$4096:AAAA", "expected"),
            ("SCRAM-SHA-256$lots:AAAA$AAAA:AAAA", "iteration count"),
            ("SCRAM-SHA-256$4096:!!$AAAA:AAAA", "salt is not base64"),
            ("SCRAM-SHA-256$4096:AAAA$AAAA:AAAA", "32 bytes"),
        ] {
            let err = Credential::parse(bad).expect_err("must fail");
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
