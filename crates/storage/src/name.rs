//! Table and column names: what users may type, and the safe file-system names
//! they map to.
//!
//! Rules (documented in docs/storage-format.md):
//! - 1 to 127 bytes of UTF-8 after trimming nothing (names are taken as given);
//! - no NUL or other control characters, no `/` or `\`, not `.` or `..`,
//!   and no leading or trailing whitespace;
//! - names compare case-insensitively (Unicode lowercase), as unquoted
//!   identifiers do in PostgreSQL and QuestDB; the original spelling is kept
//!   for display.
//!
//! The directory or file name derived from a name keeps ASCII letters, digits,
//! `_` and `-` (lowercased) and writes every other byte as `%XX`, so no name can
//! escape its directory, collide with `~`, `.` separators, or differ only in case
//! on a case-insensitive file system. The numeric id appended by the caller makes
//! it unique.

use crate::error::{Result, StorageError};

pub const MAX_NAME_BYTES: usize = 127;
/// Longest encoded prefix put into a file name before the id (file systems allow 255).
const MAX_FS_PREFIX: usize = 96;

/// Checks that `name` may name a table or column.
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |reason: &str| {
        Err(StorageError::InvalidName {
            name: printable(name),
            reason: reason.to_string(),
        })
    };
    if name.is_empty() {
        return bad("a name cannot be empty");
    }
    if name.len() > MAX_NAME_BYTES {
        return bad(&format!(
            "a name is at most {MAX_NAME_BYTES} bytes, this one has {}",
            name.len()
        ));
    }
    if name == "." || name == ".." {
        return bad("'.' and '..' are reserved");
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return bad(&format!(
            "control character U+{:04X} is not allowed",
            c as u32
        ));
    }
    if name.contains('/') || name.contains('\\') {
        return bad("'/' and '\\' are not allowed");
    }
    if name.starts_with(char::is_whitespace) || name.ends_with(char::is_whitespace) {
        return bad("leading or trailing whitespace is not allowed");
    }
    Ok(())
}

/// The key names are compared by.
pub fn name_key(name: &str) -> String {
    name.to_lowercase()
}

/// Whether `a` and `b` name the same object (`name_key(a) == name_key(b)`),
/// without allocating for the usual ASCII names.
pub fn same_name(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        a.eq_ignore_ascii_case(b)
    } else {
        name_key(a) == name_key(b)
    }
}

/// A file-system-safe rendering of `name` (see the module docs).
pub fn fs_name(name: &str) -> String {
    let mut out = String::new();
    for b in name.to_lowercase().bytes() {
        let piece = if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            (b as char).to_string()
        } else {
            format!("%{b:02X}")
        };
        if out.len() + piece.len() > MAX_FS_PREFIX {
            break;
        }
        out.push_str(&piece);
    }
    out
}

/// A name made safe for an error message (control characters escaped, length capped).
fn printable(name: &str) -> String {
    let mut s: String = name
        .chars()
        .take(64)
        .flat_map(|c| c.escape_debug())
        .collect();
    if name.chars().count() > 64 {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_name_agrees_with_name_keys() {
        for (a, b) in [
            ("Price", "price"),
            ("ÄBC", "äbc"),
            ("a", "b"),
            ("ß", "SS"),
            ("x", "X "),
        ] {
            assert_eq!(same_name(a, b), name_key(a) == name_key(b), "{a} {b}");
        }
    }
    use proptest::prelude::*;

    #[test]
    fn hostile_names_are_refused_with_a_reason() {
        for (n, why) in [
            ("", "empty"),
            ("..", "reserved"),
            ("a/b", "'/'"),
            ("a\\b", "'\\'"),
            ("a\0b", "U+0000"),
            ("tab\there", "U+0009"),
            (" x", "whitespace"),
        ] {
            let e = validate_name(n).expect_err(n);
            assert!(e.to_string().contains(why), "{n:?}: {e}");
        }
        assert!(validate_name(&"x".repeat(128)).is_err());
        assert!(validate_name(&"x".repeat(127)).is_ok());
        assert!(validate_name("trades 2026 ✓ \"quoted\"").is_ok());
    }

    #[test]
    fn fs_names_are_case_folded_and_escaped() {
        assert_eq!(fs_name("Trades"), "trades");
        assert_eq!(fs_name("a.b/c"), "a%2Eb%2Fc");
        assert_eq!(fs_name("ü"), "%C3%BC");
    }

    proptest! {
        #[test]
        fn any_valid_name_maps_to_one_safe_path_component(name in "\\PC{1,60}") {
            prop_assume!(validate_name(&name).is_ok());
            let f = fs_name(&name);
            prop_assert!(f.len() <= MAX_FS_PREFIX);
            prop_assert!(f.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'%'));
            prop_assert!(f != "." && f != "..");
        }
    }
}
