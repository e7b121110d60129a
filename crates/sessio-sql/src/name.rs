//! Table and schema names: validated once, then quoted, never taken from a request.

use crate::SqlStoreError;

/// The longest name accepted: PostgreSQL's limit (63 bytes), which MySQL's (64) and
/// SQLite's (none) allow too.
const MAX_LEN: usize = 63;

/// A table (or schema) name that is safe to put between identifier quotes in every
/// dialect: ASCII letters, digits and `_`, not starting with a digit, at most 63 bytes.
///
/// Anything else — quotes, dots, spaces, semicolons, non-ASCII — is refused rather than
/// escaped, so no name can break out of its quoting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ident(String);

impl Ident {
    pub(crate) fn parse(what: &'static str, name: &str) -> Result<Self, SqlStoreError> {
        let valid = !name.is_empty()
            && name.len() <= MAX_LEN
            && !name.as_bytes()[0].is_ascii_digit()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if valid {
            Ok(Self(name.to_owned()))
        } else {
            Err(SqlStoreError::InvalidName {
                what,
                name: name.to_owned(),
            })
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The name between the dialect's identifier quotes (`"` or `` ` ``).
    pub(crate) fn quoted(&self, quote: char) -> String {
        format!("{quote}{}{quote}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_pass_and_everything_else_is_refused() {
        for good in ["sessions", "Sessions_2", "_x", &"a".repeat(63)] {
            assert!(Ident::parse("table", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "1st",
            "a b",
            "x\"; DROP TABLE users; --",
            "x`y",
            "public.sessions",
            "séance",
            "a\0b",
            &"a".repeat(64),
        ] {
            let error = Ident::parse("table", bad).unwrap_err();
            assert!(error.to_string().contains("table name"), "{error}");
        }
    }
}
