//! Hashing short secrets we must check later but never read back (verification codes,
//! tokens): argon2id with the argon2 crate's default parameters, stored as PHC strings
//! (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) that carry their own salt and parameters.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};

/// Hashes `secret` with a fresh random salt; the PHC string to store.
pub fn hash_secret(secret: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(secret.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| format!("cannot hash the secret: {e}"))
}

/// Whether `secret` matches `stored` (a PHC string from [`hash_secret`]); `false` when
/// `stored` cannot be read as one.
pub fn verify_secret(secret: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(secret.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hashed_secret_verifies_and_a_wrong_one_does_not() {
        let stored = hash_secret("123456").expect("hashing works");
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        assert!(verify_secret("123456", &stored));
        assert!(!verify_secret("123457", &stored));
        assert!(!verify_secret("", &stored));
    }

    #[test]
    fn the_same_secret_hashes_differently_each_time() {
        let a = hash_secret("123456").expect("hashing works");
        let b = hash_secret("123456").expect("hashing works");
        assert_ne!(a, b);
        assert!(verify_secret("123456", &a) && verify_secret("123456", &b));
    }

    #[test]
    fn a_garbage_stored_value_never_verifies() {
        for stored in ["", "123456", "$argon2id$garbage", "$2b$12$notanargonhash"] {
            assert!(!verify_secret("123456", stored), "{stored:?}");
        }
    }
}
