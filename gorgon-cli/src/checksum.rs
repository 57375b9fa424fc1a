//! SHA-256 of local files: the name of an uploaded plugin on a node, the
//! check a remote worker makes before it loads one, and how `cluster
//! setup` tells whether a node already has this very `gorgon`.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

/// The lowercase hex SHA-256 of a file's content (as `sha256sum` prints it).
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 1 << 16];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Checks `path` against `expected` before a worker loads it: one sentence
/// when it does not match.
pub fn verify(path: &Path, expected: &str) -> Result<(), String> {
    match sha256_file(path) {
        Ok(actual) if actual.eq_ignore_ascii_case(expected) => Ok(()),
        Ok(actual) => Err(format!(
            "the plugin {} does not match its checksum (SHA-256 {actual}, expected {expected}); \
             refusing to load it",
            path.display()
        )),
        Err(error) => Err(format!(
            "cannot read the plugin {}: {error}",
            path.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_sha256sum_and_refuses_a_changed_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        let known = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(sha256_file(&path).unwrap(), known);
        assert!(verify(&path, known).is_ok());
        std::fs::write(&path, b"abd").unwrap();
        assert!(verify(&path, known).unwrap_err().contains("does not match"));
    }
}
