//! What a plugin file holds, read from its ELF headers without loading it.
//!
//! `dlopen` runs a library's load-time code and maps its segments before
//! anything can be checked: a truncated copy then dies of `SIGBUS` on the
//! first touch of a page past the end of the file, a constructor may print
//! to stdout or exit, and a library built for another architecture comes
//! back as a baffling "No such file or directory". Reading the headers
//! first turns each of these into one sentence, and lets the parent learn
//! the ABI version without ever running plugin code: only workers load it.
//!
//! The `object` crate does the parsing (it is what the standard library's
//! backtraces use, well fuzzed), so this module only states the rules.

use std::path::{Path, PathBuf};

use object::elf::{ET_DYN, ET_EXEC, ET_REL};
use object::read::elf::{ElfFile64, FileHeader, ProgramHeader};
use object::{Architecture, Endianness, FileKind, Object, ObjectSymbol};

use gorgon_plugin_api::abi::{SYMBOL_ABI_VERSION, SYMBOL_OPERATION, SYMBOL_THREAD_START};
use gorgon_plugin_api::{ABI_VERSION, OLDEST_ABI_VERSION};

/// Why a file cannot be a plugin for this machine, in one sentence each.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("plugin {0} does not exist")]
    Missing(PathBuf),
    #[error("plugin {0} is not a file")]
    NotAFile(PathBuf),
    #[error("cannot read plugin {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("plugin {path} is not a shared library ({what})")]
    NotALibrary { path: PathBuf, what: String },
    #[error(
        "plugin {path} was built for {found} but this machine is {host}: build it for {host} \
         (cargo build --release on this machine, or --target)"
    )]
    WrongArchitecture {
        path: PathBuf,
        found: String,
        host: String,
    },
    #[error(
        "plugin {path} is truncated: its headers say it is {needed} bytes long but the file \
         has {len} (an interrupted copy or build?); rebuild or copy it again"
    )]
    Truncated {
        path: PathBuf,
        needed: u64,
        len: u64,
    },
    #[error(
        "plugin {0} has no `operation` symbol: export your function with \
         gorgon_plugin_api::export!(operation)"
    )]
    NoOperation(PathBuf),
    #[error(
        "plugin {0} has no `gorgon_abi_version` symbol: build it with the \
         gorgon_plugin_api::export! macro"
    )]
    NoAbiVersion(PathBuf),
    #[error(
        "plugin {path} was built for plugin ABI {found} but this gorgon speaks ABI {oldest} to \
         {newest}: rebuild it against gorgon-plugin-api {version}"
    )]
    AbiMismatch {
        path: PathBuf,
        found: u32,
        oldest: u32,
        newest: u32,
        version: &'static str,
    },
}

/// What the parent needs to know about a plugin before starting workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginFile {
    /// The canonical path, so `dlopen` loads exactly this file.
    pub path: PathBuf,
    /// The `gorgon_abi_version` the plugin was built with.
    pub abi_version: u32,
    /// Whether it exports a thread setup (`export!(op, setup = …)`).
    pub has_setup: bool,
}

/// Reads and checks `path` as a plugin for `host` (this machine's
/// architecture unless a cluster node needs another).
pub fn inspect(path: &Path, host: Architecture) -> Result<PluginFile, FileError> {
    let metadata = std::fs::metadata(path).map_err(|_| FileError::Missing(path.into()))?;
    if !metadata.is_file() {
        return Err(FileError::NotAFile(path.into()));
    }
    let path = std::fs::canonicalize(path).map_err(|_| FileError::Missing(path.into()))?;
    let data = std::fs::read(&path).map_err(|error| FileError::Unreadable {
        path: path.clone(),
        reason: error.to_string(),
    })?;
    let (abi_version, has_setup) = read_plugin(&data, host).map_err(|fault| fault.at(&path))?;
    // A plugin built for an older ABI reads only the part of the host's
    // vtable that ABI had, which is still there, unchanged.
    if !(OLDEST_ABI_VERSION..=ABI_VERSION).contains(&abi_version) {
        return Err(FileError::AbiMismatch {
            path,
            found: abi_version,
            oldest: OLDEST_ABI_VERSION,
            newest: ABI_VERSION,
            version: env!("CARGO_PKG_VERSION"),
        });
    }
    Ok(PluginFile {
        path,
        abi_version,
        has_setup,
    })
}

/// This machine's architecture, as `object` names it.
pub fn this_machine() -> Architecture {
    match std::env::consts::ARCH {
        "x86_64" => Architecture::X86_64,
        "aarch64" => Architecture::Aarch64,
        "x86" => Architecture::I386,
        "arm" => Architecture::Arm,
        "riscv64" => Architecture::Riscv64,
        "powerpc64" => Architecture::PowerPc64,
        "s390x" => Architecture::S390x,
        "loongarch64" => Architecture::LoongArch64,
        _ => Architecture::Unknown,
    }
}

/// An architecture as people write it (`x86_64`, `aarch64`), not as the
/// enum spells it.
fn arch_name(arch: Architecture) -> String {
    match arch {
        Architecture::X86_64 => "x86_64".into(),
        Architecture::X86_64_X32 => "x86_64 (x32)".into(),
        Architecture::Aarch64 => "aarch64".into(),
        Architecture::I386 => "32-bit x86".into(),
        Architecture::Arm => "32-bit arm".into(),
        Architecture::Riscv64 => "riscv64".into(),
        Architecture::PowerPc64 => "powerpc64".into(),
        Architecture::S390x => "s390x".into(),
        Architecture::LoongArch64 => "loongarch64".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// A fault found in the bytes, before the path is known to the message.
#[derive(Debug, PartialEq, Eq)]
enum Fault {
    NotALibrary(String),
    WrongArchitecture(String, String),
    Truncated(u64, u64),
    NoOperation,
    NoAbiVersion,
}

impl Fault {
    fn at(self, path: &Path) -> FileError {
        let path = path.to_path_buf();
        match self {
            Fault::NotALibrary(what) => FileError::NotALibrary { path, what },
            Fault::WrongArchitecture(found, host) => {
                FileError::WrongArchitecture { path, found, host }
            }
            Fault::Truncated(needed, len) => FileError::Truncated { path, needed, len },
            Fault::NoOperation => FileError::NoOperation(path),
            Fault::NoAbiVersion => FileError::NoAbiVersion(path),
        }
    }
}

/// The checks, on the file's bytes: an ELF shared library for `host`,
/// whole, exporting `operation` and a readable `gorgon_abi_version`.
fn read_plugin(data: &[u8], host: Architecture) -> Result<(u32, bool), Fault> {
    match FileKind::parse(data) {
        Ok(FileKind::Elf64) => {}
        Ok(FileKind::Elf32) => return Err(wrong_class(data, host)),
        Ok(kind) => return Err(Fault::NotALibrary(format!("a {kind:?} file"))),
        Err(_) if data.starts_with(b"\x7fELF") => {
            return Err(Fault::Truncated(64, data.len() as u64))
        }
        Err(_) => return Err(Fault::NotALibrary("not an ELF file".into())),
    }
    check_extent(data)?;
    let file = ElfFile64::<Endianness>::parse(data)
        .map_err(|error| Fault::NotALibrary(format!("unreadable ELF headers: {error}")))?;
    let found = file.architecture();
    if found != host {
        let found = match found {
            Architecture::Unknown => {
                let machine = file.elf_header().e_machine(file.endian());
                format!("machine type {}", machine.0)
            }
            known => arch_name(known),
        };
        return Err(Fault::WrongArchitecture(found, arch_name(host)));
    }
    match file.elf_header().e_type(file.endian()) {
        ET_DYN => {}
        ET_EXEC => return Err(Fault::NotALibrary("an executable".into())),
        ET_REL => return Err(Fault::NotALibrary("an object file, not linked".into())),
        other => return Err(Fault::NotALibrary(format!("ELF type {}", other.0))),
    }
    let symbol = |name: &[u8]| {
        let name = &name[..name.len() - 1]; // without the NUL for dlsym
        file.dynamic_symbols()
            .find(|s| s.is_definition() && s.name_bytes() == Ok(name))
    };
    symbol(SYMBOL_OPERATION).ok_or(Fault::NoOperation)?;
    let version = symbol(SYMBOL_ABI_VERSION).ok_or(Fault::NoAbiVersion)?;
    let abi_version = read_u32(&file, &version).ok_or(Fault::NoAbiVersion)?;
    Ok((abi_version, symbol(SYMBOL_THREAD_START).is_some()))
}

/// A 32-bit ELF: the same message as any other architecture mismatch.
fn wrong_class(data: &[u8], host: Architecture) -> Fault {
    let found = match object::read::elf::ElfFile32::<Endianness>::parse(data) {
        Ok(file) => arch_name(file.architecture()),
        Err(_) => "a 32-bit machine".into(),
    };
    Fault::WrongArchitecture(found, arch_name(host))
}

/// Every byte the loader will map or read must be in the file: the
/// program headers and every segment's file-backed part, and the section
/// headers. A segment that runs past the end is what makes `dlopen` of a
/// truncated copy die of `SIGBUS` rather than fail.
fn check_extent(data: &[u8]) -> Result<(), Fault> {
    let len = data.len() as u64;
    let header = object::elf::FileHeader64::<Endianness>::parse(data)
        .map_err(|_| Fault::Truncated(64, len))?;
    let endian = header
        .endian()
        .map_err(|_| Fault::NotALibrary("an ELF file of unknown byte order".into()))?;
    let table_end = |offset: u64, count: u64, size: u64| offset.saturating_add(count * size);
    let mut needed = table_end(
        header.e_phoff(endian),
        u64::from(header.e_phnum(endian)),
        u64::from(header.e_phentsize(endian)),
    );
    needed = needed.max(table_end(
        header.e_shoff(endian),
        u64::from(header.e_shnum(endian)),
        u64::from(header.e_shentsize(endian)),
    ));
    if needed > len {
        return Err(Fault::Truncated(needed, len));
    }
    let segments = header
        .program_headers(endian, data)
        .map_err(|_| Fault::Truncated(needed, len))?;
    for segment in segments {
        let end = segment
            .p_offset(endian)
            .saturating_add(segment.p_filesz(endian));
        needed = needed.max(end);
    }
    if needed > len {
        return Err(Fault::Truncated(needed, len));
    }
    Ok(())
}

/// The `u32` a data symbol points at, read through the loadable segment
/// that maps it, as the loader would (section headers may be stripped).
fn read_u32<'data>(
    file: &ElfFile64<'data, Endianness>,
    symbol: &impl ObjectSymbol<'data>,
) -> Option<u32> {
    let endian = file.endian();
    let bytes = file.elf_program_headers().iter().find_map(|segment| {
        segment
            .data_range(endian, file.data(), symbol.address(), 4)
            .ok()
            .flatten()
    })?;
    let bytes: [u8; 4] = bytes.try_into().ok()?;
    Some(match endian {
        Endianness::Little => u32::from_le_bytes(bytes),
        Endianness::Big => u32::from_be_bytes(bytes),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The library this test binary's own build made of the no-op plugin
    /// would do, but unit tests must not depend on build order: these
    /// craft the bytes instead, and the end-to-end tests use real files.
    fn elf64_header(machine: u16, e_type: u16) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2; // 64-bit
        h[5] = 1; // little endian
        h[6] = 1; // version
        h[16..18].copy_from_slice(&e_type.to_le_bytes());
        h[18..20].copy_from_slice(&machine.to_le_bytes());
        h[20..24].copy_from_slice(&1u32.to_le_bytes());
        h[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
        h[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        h[58..60].copy_from_slice(&64u16.to_le_bytes()); // e_shentsize
        h
    }

    #[test]
    fn text_is_not_a_library() {
        let fault = read_plugin(b"#!/bin/sh\necho hi\n", Architecture::X86_64).unwrap_err();
        assert_eq!(fault, Fault::NotALibrary("not an ELF file".into()));
    }

    #[test]
    fn a_cut_header_is_truncated() {
        let fault = read_plugin(b"\x7fELF\x02\x01", Architecture::X86_64).unwrap_err();
        assert!(matches!(fault, Fault::Truncated(_, 6)), "{fault:?}");
    }

    #[test]
    fn another_architecture_names_both() {
        let header = elf64_header(object::elf::EM_AARCH64.0, ET_DYN.0);
        let fault = read_plugin(&header, Architecture::X86_64).unwrap_err();
        assert_eq!(
            fault,
            Fault::WrongArchitecture("aarch64".into(), "x86_64".into())
        );
    }

    #[test]
    fn headers_past_the_end_are_truncated() {
        let mut header = elf64_header(object::elf::EM_X86_64.0, ET_DYN.0);
        header[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        header[56..58].copy_from_slice(&3u16.to_le_bytes()); // e_phnum
        let fault = read_plugin(&header, Architecture::X86_64).unwrap_err();
        assert_eq!(fault, Fault::Truncated(64 + 3 * 56, 64));
    }

    #[test]
    fn an_executable_is_not_a_library() {
        let header = elf64_header(object::elf::EM_X86_64.0, ET_EXEC.0);
        let fault = read_plugin(&header, Architecture::X86_64).unwrap_err();
        assert_eq!(fault, Fault::NotALibrary("an executable".into()));
    }

    #[test]
    fn messages_are_one_sentence_naming_the_file() {
        let error =
            Fault::WrongArchitecture("aarch64".into(), "x86_64".into()).at(Path::new("/p/libx.so"));
        let text = error.to_string();
        assert!(text.starts_with("plugin /p/libx.so was built for aarch64"));
        assert!(text.contains("this machine is x86_64"));
        assert!(!text.contains('\n'));
    }
}
