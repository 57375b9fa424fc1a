//! Can a library built here run there? A plugin (and this `gorgon`) is
//! machine code for one architecture; a node reports its own with
//! `uname -m`. Both are reduced to one family name to compare.

use std::io::Read;
use std::path::Path;

/// The architecture family of an ELF file, read from its header
/// (`e_machine`); `None` when it is not ELF or the machine is unknown.
pub fn of_elf(path: &Path) -> Option<&'static str> {
    let mut header = [0u8; 20];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .ok()?;
    if &header[..4] != b"\x7fELF" {
        return None;
    }
    let machine = match header[5] {
        1 => u16::from_le_bytes([header[18], header[19]]),
        2 => u16::from_be_bytes([header[18], header[19]]),
        _ => return None,
    };
    let is_64 = header[4] == 2;
    Some(match (machine, is_64) {
        (0x3e, _) => "x86_64",
        (0x03, _) => "x86",
        (0xb7, _) => "aarch64",
        (0x28, _) => "arm",
        (0xf3, true) => "riscv64",
        (0x15, true) => "powerpc64",
        (0x16, true) => "s390x",
        (0x102, _) => "loongarch64",
        _ => return None,
    })
}

/// The family of a `uname -m` answer (or of Rust's `std::env::consts::ARCH`).
pub fn family(machine: &str) -> &str {
    match machine {
        "x86_64" | "amd64" => "x86_64",
        "i386" | "i486" | "i586" | "i686" | "x86" => "x86",
        "aarch64" | "arm64" | "aarch64_be" => "aarch64",
        m if m.starts_with("armv") || m == "arm" => "arm",
        "ppc64le" | "ppc64" | "powerpc64" => "powerpc64",
        other => other,
    }
}

/// The architecture this gorgon was built for.
pub fn this_gorgon() -> &'static str {
    std::env::consts::ARCH
}

/// Whether code for `local` (a family) runs on a node that reported
/// `os` and `machine`: same family, and Linux (gorgon's libraries are ELF
/// shared objects for Linux).
pub fn runs_on(local: &str, os: &str, machine: &str) -> bool {
    os.eq_ignore_ascii_case(std::env::consts::OS) && family(machine) == family(local)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_executable_is_elf_of_our_arch() {
        let exe = std::env::current_exe().unwrap();
        assert_eq!(of_elf(&exe), Some(family(this_gorgon())));
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("text");
        std::fs::write(&text, "not an ELF file at all").unwrap();
        assert_eq!(of_elf(&text), None);
    }

    #[test]
    fn uname_answers_map_to_families() {
        assert!(runs_on("x86_64", "Linux", "x86_64"));
        assert!(!runs_on("x86_64", "Linux", "aarch64"));
        assert!(!runs_on("x86_64", "Darwin", "x86_64"));
        assert_eq!(family("armv7l"), "arm");
        assert_eq!(family("arm64"), "aarch64");
    }
}
