//! Brand ids: the tenant key of every route (`/v1/{brandId}/…`), token and row.
//!
//! A brand id is whatever the platform names its brands (`acme`, `brand-42`, a UUID…): Hookline
//! imposes no alphabet, only what it must to store and compare it safely. Postgres `text`
//! cannot hold U+0000 (a `%00` in the path was once a 500 from the query), and an empty id
//! cannot be routed. Everything that takes a brand from a request goes through
//! [`BrandId::parse`], so those rules live here once.

use std::{fmt, ops::Deref};

/// A validated brand id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BrandId(String);

/// Why a brand id was refused. The messages are the API's validation messages for `brandId`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BrandIdError {
    #[error("brandId must not be empty")]
    Empty,
    #[error("brandId must not contain the NUL character")]
    Nul,
}

impl BrandId {
    pub fn parse(raw: impl Into<String>) -> Result<BrandId, BrandIdError> {
        let raw = raw.into();
        if raw.is_empty() {
            return Err(BrandIdError::Empty);
        }
        if raw.contains('\0') {
            return Err(BrandIdError::Nul);
        }
        Ok(BrandId(raw))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl Deref for BrandId {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for BrandId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BrandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_alphabet_is_a_brand_but_nul_and_empty() {
        for ok in ["acme", "brand-42", "Ünïcode brand", "a/b", "%00"] {
            assert_eq!(BrandId::parse(ok).expect(ok).as_str(), ok);
        }
        assert_eq!(BrandId::parse(""), Err(BrandIdError::Empty));
        assert_eq!(BrandId::parse("ac\0me"), Err(BrandIdError::Nul));
        assert_eq!(
            BrandIdError::Nul.to_string(),
            "brandId must not contain the NUL character"
        );
    }
}
