//! Agent passwords: argon2id with the crate's default (OWASP-recommended) parameters,
//! stored as PHC strings.

use frontdesk_router::secret_hash::{hash_secret, verify_secret};

/// The shortest password accepted for an agent.
pub const MIN_LENGTH: usize = 10;

pub fn hash(password: &str) -> anyhow::Result<String> {
    if password.chars().count() < MIN_LENGTH {
        anyhow::bail!("the password must have at least {MIN_LENGTH} characters");
    }
    hash_secret(password).map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))
}

pub fn verify(password: &str, stored: &str) -> bool {
    verify_secret(password, stored)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_hashed_password_verifies_and_a_wrong_one_does_not() {
        let stored = super::hash("correct horse battery").unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(super::verify("correct horse battery", &stored));
        assert!(!super::verify("correct horse battery!", &stored));
        assert!(super::hash("short").is_err());
    }
}
